//! Plan and issue semantics: kept material is byte-identical, changes
//! re-issue exactly the items they concern, renewal inside the window.

mod common;

use common::*;
use selfhosted_pki::{issue, plan, Action, Reason};
use std::collections::BTreeSet;

fn changed(a: &selfhosted_pki::Assets, b: &selfhosted_pki::Assets) -> BTreeSet<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn second_issue_with_same_params_is_byte_identical() {
    let p = default_params();
    let first = issue(&p, None, now()).unwrap();
    assert_eq!(first.len(), 35, "{:?}", first.keys().collect::<Vec<_>>());
    let plan2 = plan(&p, Some(&first), now()).unwrap();
    assert!(plan2.is_noop(), "{plan2:#?}");
    let second = issue(&p, Some(&first), now() + time::Duration::days(30)).unwrap();
    assert_eq!(first, second);
}

#[test]
fn fresh_plan_issues_everything() {
    let p = default_params();
    let pl = plan(&p, None, now()).unwrap();
    assert!(pl.items.iter().all(|i| matches!(
        i.action,
        Action::Issue {
            reason: Reason::Missing,
            ..
        }
    )));
    let all = issue(&p, None, now()).unwrap();
    assert_eq!(pl.changed_paths(), all.keys().cloned().collect());
}

const APISERVER: [&str; 4] = [
    "tls/apiserver.crt",
    "tls/apiserver.key",
    "tls/bootstrap-apiserver.crt",
    "tls/bootstrap-apiserver.key",
];

#[test]
fn adding_an_api_server_reissues_only_the_apiserver_certs() {
    let p1 = default_params();
    let a1 = issue(&p1, None, now()).unwrap();
    let p2 = params(
        &["api.demo.example", "10.0.0.5", "api2.demo.example"],
        &["127.0.0.11", "127.0.0.12", "127.0.0.13"],
    );
    let pl = plan(&p2, Some(&a1), now()).unwrap();
    assert_eq!(pl.issued(), vec!["apiserver", "bootstrap-apiserver"]);
    assert!(matches!(
        &pl.get("apiserver").unwrap().action,
        Action::Issue {
            reason: Reason::NamesChanged { .. },
            new_key: true
        }
    ));
    let a2 = issue(&p2, Some(&a1), now()).unwrap();
    assert_eq!(changed(&a1, &a2), set(&APISERVER));
    assert_eq!(pl.changed_paths(), set(&APISERVER));
}

#[test]
fn changing_the_first_api_server_also_rerenders_public_kubeconfigs() {
    let p1 = default_params();
    let a1 = issue(&p1, None, now()).unwrap();
    let p2 = params(&["api.other.example"], &["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    let a2 = issue(&p2, Some(&a1), now()).unwrap();
    let mut want = set(&APISERVER);
    want.extend(set(&[
        "auth/admin.kubeconfig",
        "auth/kubelet-bootstrap.kubeconfig",
        "auth/controller-bootstrap.kubeconfig",
    ]));
    assert_eq!(changed(&a1, &a2), want);
    assert!(a2["auth/admin.kubeconfig"].contains("server: \"https://api.other.example:6443\""));
    assert_eq!(plan(&p2, Some(&a1), now()).unwrap().changed_paths(), want);
}

#[test]
fn changing_the_port_rerenders_only_kubeconfigs() {
    let p1 = default_params();
    let a1 = issue(&p1, None, now()).unwrap();
    let mut p2 = p1.clone();
    p2.api_server_port = 443;
    let a2 = issue(&p2, Some(&a1), now()).unwrap();
    assert_eq!(
        changed(&a1, &a2),
        set(&[
            "auth/admin.kubeconfig",
            "auth/controller-bootstrap.kubeconfig",
            "auth/controller-manager.kubeconfig",
            "auth/kubelet-bootstrap.kubeconfig",
            "auth/scheduler.kubeconfig"
        ])
    );
    assert!(a2["auth/scheduler.kubeconfig"].contains("https://127.0.0.1:443"));
}

#[test]
fn changing_etcd_servers_reissues_only_etcd_server_and_peer() {
    let p1 = default_params();
    let a1 = issue(&p1, None, now()).unwrap();
    let p2 = params(&["api.demo.example", "10.0.0.5"], &["127.0.0.11", "etcd2.demo.example"]);
    let a2 = issue(&p2, Some(&a1), now()).unwrap();
    let want = set(&[
        "tls/etcd/peer.crt",
        "tls/etcd/peer.key",
        "tls/etcd/server.crt",
        "tls/etcd/server.key",
    ]);
    assert_eq!(changed(&a1, &a2), want);
    assert_eq!(plan(&p2, Some(&a1), now()).unwrap().changed_paths(), want);
}

#[test]
fn leaves_inside_the_renewal_window_are_reissued_and_cas_kept() {
    let p = default_params();
    let a1 = issue(&p, None, now()).unwrap();
    let exp = selfhosted_pki::expiries(&a1).unwrap();
    let leaf_end = exp["apiserver"];
    // Just outside the window: nothing.
    let before = leaf_end - p.early_renewal - time::Duration::minutes(1);
    assert!(plan(&p, Some(&a1), before).unwrap().is_noop());
    assert!(!selfhosted_pki::is_ready_for_renewal(&p, &a1, before).unwrap());
    // Inside: every leaf.
    let inside = leaf_end - p.early_renewal + time::Duration::minutes(1);
    assert!(selfhosted_pki::is_ready_for_renewal(&p, &a1, inside).unwrap());
    assert_eq!(
        selfhosted_pki::next_renewal(&a1, p.early_renewal).unwrap(),
        Some(leaf_end - p.early_renewal)
    );
    let pl = plan(&p, Some(&a1), inside).unwrap();
    assert!(matches!(
        pl.get("etcd-peer").unwrap().action,
        Action::Issue {
            reason: Reason::Expiring { .. },
            ..
        }
    ));
    let a2 = issue(&p, Some(&a1), inside).unwrap();
    let ch = changed(&a1, &a2);
    for kept in [
        "tls/ca.crt",
        "tls/ca.key",
        "tls/etcd-ca.crt",
        "tls/front-proxy-ca.key",
        "tls/service-account.key",
        "auth/bootstrap-token",
        "auth/kubelet-bootstrap.kubeconfig",
    ] {
        assert!(!ch.contains(kept), "{kept} changed");
    }
    for renewed in [
        "tls/apiserver.crt",
        "tls/etcd/server.key",
        "tls/admin.crt",
        "auth/admin.kubeconfig",
    ] {
        assert!(ch.contains(renewed), "{renewed} kept");
    }
    assert!(selfhosted_pki::expiries(&a2).unwrap()["apiserver"] > leaf_end);
    // And the next plan at that time is empty again.
    assert!(plan(&p, Some(&a2), inside).unwrap().is_noop());
}

#[test]
fn a_ca_inside_its_window_is_resigned_with_its_own_key() {
    let mut r = raw(&["10.0.0.5"], &["127.0.0.11"]);
    r.ca_validity_hours = Some(24 * 400);
    let p = selfhosted_pki::parse(&r).unwrap();
    let a1 = issue(&p, None, now()).unwrap();
    let t = now() + time::Duration::days(380);
    let pl = plan(&p, Some(&a1), t).unwrap();
    assert!(matches!(
        pl.get("ca").unwrap().action,
        Action::Issue {
            reason: Reason::Expiring { .. },
            new_key: false
        }
    ));
    let a2 = issue(&p, Some(&a1), t).unwrap();
    assert_eq!(a1["tls/ca.key"], a2["tls/ca.key"]);
    assert_ne!(a1["tls/ca.crt"], a2["tls/ca.crt"]);
    assert_eq!(a1["tls/service-account.key"], a2["tls/service-account.key"]);
    assert_eq!(a1["auth/bootstrap-token"], a2["auth/bootstrap-token"]);
    assert!(plan(&p, Some(&a2), t).unwrap().is_noop());
}

#[test]
fn key_algorithm_change_reissues_leaves_but_keeps_cas_and_service_account() {
    let p1 = default_params();
    let a1 = issue(&p1, None, now()).unwrap();
    let mut p2 = p1.clone();
    p2.key_algorithm = selfhosted_pki::KeyAlgorithm::Rsa2048;
    let pl = plan(&p2, Some(&a1), now()).unwrap();
    assert!(matches!(
        pl.get("admin").unwrap().action,
        Action::Issue {
            reason: Reason::KeyAlgorithmChanged { .. },
            ..
        }
    ));
    for kept in ["ca", "etcd-ca", "front-proxy-ca", "service-account", "bootstrap-token"] {
        assert_eq!(pl.get(kept).unwrap().action, Action::Keep, "{kept}");
    }
    assert_eq!(pl.issued().len(), 10 + 3, "{:?}", pl.issued());
}

#[test]
fn admin_organization_change_reissues_admin_only() {
    let p1 = default_params();
    let a1 = issue(&p1, None, now()).unwrap();
    let mut p2 = p1.clone();
    p2.admin_organization = "cluster-admins".into();
    let pl = plan(&p2, Some(&a1), now()).unwrap();
    assert_eq!(pl.issued(), vec!["admin", "admin-kubeconfig"]);
    assert_eq!(
        pl.get("admin").unwrap().action,
        Action::Issue {
            reason: Reason::SubjectChanged {
                from: "O=system:masters, CN=admin".into(),
                to: "O=cluster-admins, CN=admin".into()
            },
            new_key: true
        }
    );
    assert_eq!(
        pl.to_string().lines().next(),
        Some("admin: subject changed from O=system:masters, CN=admin to O=cluster-admins, CN=admin")
    );
}

#[test]
fn damaged_prior_items_are_reissued() {
    let p = default_params();
    let mut a1 = issue(&p, None, now()).unwrap();
    a1.insert("tls/scheduler.crt".into(), "garbage".into());
    a1.insert("auth/bootstrap-token".into(), "ABC".into());
    let key = a1["tls/admin.key"].clone();
    a1.insert("tls/controller-manager.key".into(), key);
    let pl = plan(&p, Some(&a1), now()).unwrap();
    assert_eq!(
        pl.issued(),
        vec![
            "controller-manager",
            "scheduler",
            "bootstrap-token",
            "kubelet-bootstrap-kubeconfig",
            "controller-manager-kubeconfig",
            "scheduler-kubeconfig"
        ]
    );
    let a2 = issue(&p, Some(&a1), now()).unwrap();
    assert!(plan(&p, Some(&a2), now()).unwrap().is_noop());
}

#[test]
fn plan_display_and_secret_classification() {
    let p = default_params();
    let a1 = issue(&p, None, now()).unwrap();
    assert_eq!(plan(&p, Some(&a1), now()).unwrap().to_string(), "no changes");
    let p2 = params(&["api.demo.example"], &["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    let text = plan(&p2, Some(&a1), now()).unwrap().to_string();
    assert!(
        text.starts_with("apiserver: names changed from [api.demo.example, 10.0.0.5, "),
        "{text}"
    );
    for path in a1.keys() {
        let secret = selfhosted_pki::is_secret(path);
        let has_private = a1[path].contains("PRIVATE KEY")
            || a1[path].contains("client-key-data")
            || a1[path].contains("token:")
            || path.ends_with("bootstrap-token");
        assert_eq!(secret, has_private, "{path}");
    }
    let (id, secret) = selfhosted_pki::token::split(&a1["auth/bootstrap-token"]).unwrap();
    assert_eq!((id.len(), secret.len()), (6, 16));
    // The controllers' token is another token, in its own kubeconfig.
    let (cid, _) = selfhosted_pki::token::split(&a1["auth/controller-bootstrap-token"]).unwrap();
    assert_ne!(cid, id);
    assert!(a1["auth/controller-bootstrap.kubeconfig"].contains(&a1["auth/controller-bootstrap-token"]));
    assert!(!a1["auth/kubelet-bootstrap.kubeconfig"].contains(&a1["auth/controller-bootstrap-token"]));
}

#[test]
fn reordering_etcd_servers_changes_nothing() {
    let p1 = default_params();
    let a1 = issue(&p1, None, now()).unwrap();
    let p2 = params(
        &["api.demo.example", "10.0.0.5"],
        &["127.0.0.13", "127.0.0.11", "127.0.0.12"],
    );
    assert!(plan(&p2, Some(&a1), now()).unwrap().is_noop());
}

#[test]
fn a_state_of_the_previous_release_gains_the_controllers_token_and_keeps_the_rest() {
    let p = default_params();
    let mut a1 = issue(&p, None, now()).unwrap();
    a1.remove("auth/controller-bootstrap-token");
    a1.remove("auth/controller-bootstrap.kubeconfig");
    let pl = plan(&p, Some(&a1), now()).unwrap();
    assert_eq!(
        pl.issued(),
        vec!["controller-bootstrap-token", "controller-bootstrap-kubeconfig"]
    );
    let a2 = issue(&p, Some(&a1), now()).unwrap();
    assert_eq!(
        changed(&a1, &a2),
        set(&[
            "auth/controller-bootstrap-token",
            "auth/controller-bootstrap.kubeconfig"
        ])
    );
}
