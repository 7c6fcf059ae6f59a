//! The approver's decisions on requests made as a kubelet or an attacker would make them.

use std::collections::BTreeSet;

use rcgen::{CertificateParams, DnType, KeyPair, SanType};
use selfhosted_agent::approver::{decide, ApproverParams, Decision, Request, KUBELET_CLIENT_SIGNER};

const WORKERS: &str = "system:bootstrappers:selfhosted:workers";

fn params() -> ApproverParams {
    ApproverParams {
        workers_group: WORKERS.into(),
        controller_label: "node-role.kubernetes.io/control-plane".into(),
        controller_names: ("kube-system".into(), "selfhosted-controllers".into()),
    }
}

fn csr(cn: &str, orgs: &[&str], sans: Vec<SanType>) -> String {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        p.distinguished_name.push(DnType::OrganizationName, *o);
    }
    p.subject_alt_names = sans;
    let key = KeyPair::generate().unwrap();
    p.serialize_request(&key).unwrap().pem().unwrap()
}

fn usages() -> Vec<String> {
    ["digital signature", "client auth"].map(String::from).to_vec()
}

fn groups(extra: &str) -> Vec<String> {
    vec![
        "system:bootstrappers".into(),
        extra.into(),
        "system:authenticated".into(),
    ]
}

fn controllers() -> BTreeSet<String> {
    BTreeSet::from(["c0".to_owned(), "c1".to_owned()])
}

fn run(pem: &str, groups: &[String], usages: &[String]) -> Decision {
    let req = Request {
        signer: KUBELET_CLIENT_SIGNER,
        groups,
        usages,
        pem: pem.as_bytes(),
        decided: false,
    };
    decide(&req, &params(), &controllers())
}

#[test]
fn a_worker_gets_its_own_name() {
    let pem = csr("system:node:w0", &["system:nodes"], vec![]);
    assert_eq!(
        run(&pem, &groups(WORKERS), &usages()),
        Decision::Approve { node: "w0".into() }
    );
}

#[test]
fn a_controller_name_from_the_workers_token_is_denied_with_its_reason() {
    let pem = csr("system:node:c1", &["system:nodes"], vec![]);
    match run(&pem, &groups(WORKERS), &usages()) {
        Decision::Deny { reason } => assert!(reason.contains("system:node:c1 is a controller"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn requests_that_are_not_a_node_client_certificate_are_denied() {
    let g = groups(WORKERS);
    let cases = [
        (
            csr("system:node:w0", &["system:masters"], vec![]),
            usages(),
            "organization",
        ),
        (
            csr("system:node:w0", &["system:nodes", "system:masters"], vec![]),
            usages(),
            "organization",
        ),
        (csr("admin", &["system:nodes"], vec![]), usages(), "common name"),
        (csr("system:node:", &["system:nodes"], vec![]), usages(), "common name"),
        (
            csr(
                "system:node:w0",
                &["system:nodes"],
                vec![SanType::DnsName("w0".try_into().unwrap())],
            ),
            usages(),
            "alternative names",
        ),
        (
            csr("system:node:w0", &["system:nodes"], vec![]),
            ["digital signature", "server auth"].map(String::from).to_vec(),
            "usages",
        ),
        ("not a request".to_owned(), usages(), "not PEM"),
    ];
    for (pem, usages, why) in cases {
        match run(&pem, &g, &usages) {
            Decision::Deny { reason } => assert!(reason.contains(why), "{why}: {reason}"),
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[test]
fn a_tampered_request_does_not_verify() {
    let pem = csr("system:node:w0", &["system:nodes"], vec![]);
    let parsed = pem::parse(&pem).unwrap();
    let mut der = parsed.contents().to_vec();
    // Change the name inside the signed part, keeping the DER well-formed.
    let at = der.windows(2).position(|w| w == b"w0").unwrap();
    der[at + 1] = b'1';
    let tampered = pem::encode(&pem::Pem::new(parsed.tag(), der));
    match run(&tampered, &groups(WORKERS), &usages()) {
        Decision::Deny { reason } => assert!(reason.contains("signature"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn others_requests_are_left_to_kubernetes() {
    let pem = csr("system:node:c0", &["system:nodes"], vec![]);
    // The controllers' token (Kubernetes' approver decides), a node renewing itself, a plain
    // user: not ours.
    for g in [
        groups("system:bootstrappers:selfhosted:controllers"),
        vec!["system:nodes".into()],
        vec!["system:authenticated".into()],
    ] {
        assert_eq!(run(&pem, &g, &usages()), Decision::Skip, "{g:?}");
    }
    let g = groups(WORKERS);
    let u = usages();
    let other_signer = Request {
        signer: "kubernetes.io/kube-apiserver-client",
        groups: &g,
        usages: &u,
        pem: pem.as_bytes(),
        decided: false,
    };
    assert_eq!(decide(&other_signer, &params(), &controllers()), Decision::Skip);
    let decided = Request {
        decided: true,
        signer: KUBELET_CLIENT_SIGNER,
        ..other_signer
    };
    assert_eq!(decide(&decided, &params(), &controllers()), Decision::Skip);
}
