//! The kubelet client-certificate approver for workers that join with the workers' bootstrap
//! token. Kubernetes' own approver approves a bootstrapper's request for *any* node name, so
//! anyone holding a worker's disk could obtain a controller's node identity and, through the
//! Node authorizer, the Secrets of the control-plane pods bound to it. The controllers' token
//! keeps Kubernetes' approver; the workers' token has only this one, which approves a request
//! for a node that is not a controller and denies, with its reason, one that names a controller.
//!
//! A controller is a node carrying the control-plane label (which a kubelet cannot set on
//! itself) or a name in the ConfigMap the provider writes before any controller joins, so a
//! name cannot be claimed before its controller registers.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// The signer of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The organization every node identity carries.
const NODES_GROUP: &str = "system:nodes";
/// The prefix of a node identity's common name.
const NODE_PREFIX: &str = "system:node:";
/// The ConfigMap key listing controller names, one a line.
pub const CONTROLLER_NAMES_KEY: &str = "names";

/// What the approver is told by its pod's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverParams {
    /// The group the workers' bootstrap token adds (`auth-extra-groups`): only requests made
    /// with it are decided here.
    pub workers_group: String,
    /// The node label that marks a controller.
    pub controller_label: String,
    /// `namespace/name` of the ConfigMap listing controller names.
    pub controller_names: (String, String),
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not ours to decide: another signer, another requester, or already decided.
    Skip,
    /// A worker's request for a node that is not a controller.
    Approve {
        /// The node the certificate is for.
        node: String,
    },
    /// A request from the workers' token that must never be granted.
    Deny {
        /// Why, for the CSR's condition and the log.
        reason: String,
    },
}

/// The facts of a request that the decision reads.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// `spec.signerName`.
    pub signer: &'a str,
    /// `spec.groups` of the requester.
    pub groups: &'a [String],
    /// `spec.usages`.
    pub usages: &'a [String],
    /// `spec.request`: the PEM certificate request.
    pub pem: &'a [u8],
    /// Whether the request already has an Approved, Denied or Failed condition.
    pub decided: bool,
}

impl<'a> Request<'a> {
    /// The facts of `csr`.
    pub fn of(csr: &'a CertificateSigningRequest) -> Self {
        let decided = csr
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| matches!(c.type_.as_str(), "Approved" | "Denied" | "Failed"))
            });
        Request {
            signer: &csr.spec.signer_name,
            groups: csr.spec.groups.as_deref().unwrap_or_default(),
            usages: csr.spec.usages.as_deref().unwrap_or_default(),
            pem: &csr.spec.request.0,
            decided,
        }
    }
}

/// The decision for `req` given the controllers' names. Pure: the tests call it with requests
/// made by rcgen, as a kubelet or an attacker would make them.
pub fn decide(req: &Request<'_>, params: &ApproverParams, controllers: &BTreeSet<String>) -> Decision {
    if !is_ours(req, params) {
        return Decision::Skip;
    }
    let deny = |reason: String| Decision::Deny { reason };
    let node = match node_of(req) {
        Ok(node) => node,
        Err(reason) => return deny(reason),
    };
    if controllers.contains(&node) {
        return deny(format!(
            "{NODE_PREFIX}{node} is a controller: the workers' bootstrap token cannot obtain a controller's identity"
        ));
    }
    Decision::Approve { node }
}

/// Whether `req` is an undecided kubelet client request made with the workers' token.
fn is_ours(req: &Request<'_>, params: &ApproverParams) -> bool {
    !req.decided && req.signer == KUBELET_CLIENT_SIGNER && req.groups.contains(&params.workers_group)
}

/// The node name a well-formed kubelet client request asks for, as Kubernetes' own
/// approver recognises one: organization exactly `system:nodes`, common name
/// `system:node:<name>`, no alternative names, client-auth usages only, a valid signature.
fn node_of(req: &Request<'_>) -> Result<String, String> {
    let allowed = ["digital signature", "key encipherment", "client auth"];
    if !req.usages.iter().any(|u| u == "client auth") || req.usages.iter().any(|u| !allowed.contains(&u.as_str())) {
        return Err(format!(
            "usages {:?} are not a kubelet client certificate's",
            req.usages
        ));
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(req.pem).map_err(|e| format!("the request is not PEM: {e}"))?;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
        .map_err(|e| format!("the request is not a PKCS#10 request: {e}"))?;
    csr.verify_signature()
        .map_err(|e| format!("the request's signature does not verify: {e}"))?;
    let subject = &csr.certification_request_info.subject;
    let organizations = strings(subject, X509Name::iter_organization);
    if organizations != [NODES_GROUP] {
        return Err(format!("organization {organizations:?} is not [{NODES_GROUP:?}]"));
    }
    let names = strings(subject, X509Name::iter_common_name);
    let node = match names.as_slice() {
        [cn] => cn.strip_prefix(NODE_PREFIX).filter(|n| !n.is_empty()),
        _ => None,
    }
    .ok_or_else(|| format!("common name {names:?} is not {NODE_PREFIX}<node>"))?;
    let has_alt_names = csr
        .requested_extensions()
        .into_iter()
        .flatten()
        .any(|e| matches!(e, ParsedExtension::SubjectAlternativeName(san) if !san.general_names.is_empty()));
    if has_alt_names {
        return Err("a kubelet client certificate has no alternative names".into());
    }
    Ok(node.to_owned())
}

fn strings<'a, I>(name: &'a X509Name<'a>, attrs: impl Fn(&'a X509Name<'a>) -> I) -> Vec<String>
where
    I: Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
{
    attrs(name)
        .map(|a| a.as_str().map_or_else(|_| "<not a string>".to_owned(), str::to_owned))
        .collect()
}

/// Why the approver stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApproverError {
    /// The watch of certificate signing requests ended.
    #[error("watching certificate signing requests: {0}")]
    Watch(#[source] watcher::Error),
}

/// Watches every certificate signing request and decides those made with the workers' token.
/// A failed decision (the API unreachable for a moment) is logged; the request is decided
/// again when the watch next lists it.
///
/// # Errors
/// Only when the watch itself ends.
pub async fn run(client: Client, params: &ApproverParams) -> Result<(), ApproverError> {
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let stream = watcher(csrs.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    while let Some(csr) = stream.try_next().await.map_err(ApproverError::Watch)? {
        let request = Request::of(&csr);
        if !is_ours(&request, params) {
            continue;
        }
        let name = csr.metadata.name.clone().unwrap_or_default();
        let controllers = match controllers(&client, params).await {
            Ok(c) => c,
            Err(e) => {
                println!("selfhosted-agent: {name}: cannot read the controllers, not decided yet: {e}");
                continue;
            }
        };
        let (kind, reason, message) = match decide(&request, params, &controllers) {
            Decision::Skip => continue,
            Decision::Approve { node } => (
                "Approved",
                "SelfhostedWorkerNodeClient",
                format!("a worker's kubelet client certificate for node {node}"),
            ),
            Decision::Deny { reason } => ("Denied", "SelfhostedNotAWorkerNodeClient", reason),
        };
        let patch = serde_json::json!({ "status": { "conditions": [
            { "type": kind, "status": "True", "reason": reason, "message": message }
        ] } });
        match csrs
            .patch_approval(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => println!("selfhosted-agent: {name}: {kind}: {message}"),
            Err(e) => println!("selfhosted-agent: {name}: {kind} not recorded: {e}"),
        }
    }
    Ok(())
}

/// The controllers' names: nodes with the controller label and the provider's list.
async fn controllers(client: &Client, params: &ApproverParams) -> Result<BTreeSet<String>, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let labelled = nodes
        .list_metadata(&ListParams::default().labels(&params.controller_label))
        .await?;
    let mut names: BTreeSet<String> = labelled.items.into_iter().filter_map(|n| n.metadata.name).collect();
    let (namespace, name) = &params.controller_names;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    if let Some(map) = maps.get_opt(name).await? {
        let listed = map
            .data
            .unwrap_or_default()
            .remove(CONTROLLER_NAMES_KEY)
            .unwrap_or_default();
        names.extend(
            listed
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    Ok(names)
}
