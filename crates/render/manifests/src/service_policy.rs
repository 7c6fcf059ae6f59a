//! An admission policy that refuses to empty the `default/kubernetes` Service.
//!
//! An apiserver that stops removes its address from that Service, even when it is the last
//! one (upstream's rule, so that clients try another apiserver). On a self-hosted control
//! plane the address is still served at that moment: by the new apiserver of a hand-over
//! beside the old one, or, after a clean reboot of the only controller, by its recovery
//! apiserver, which never writes the list. An empty list makes kube-proxy refuse every
//! in-cluster client of the Service IP. The policy turns that last removal into a refused
//! write: the apiserver logs that it could not remove its address, and the list keeps it
//! until an apiserver writes a list that is not empty. Every other write goes through: an
//! address leaving while another stays, the first address of a new cluster, a controller's
//! address replaced by another's.
//!
//! `ValidatingAdmissionPolicy` is `admissionregistration.k8s.io/v1` from Kubernetes 1.30;
//! older minors go without (the provider's hand-over keeps the list itself as well).

use serde_json::{json, Value};

use crate::object::meta;
use crate::params::ManifestParams;

/// Name of the policy and of its binding.
pub const NAME: &str = "selfhosted-kubernetes-service-keeps-an-address";

/// Whether a list of `EndpointSubset`s in CEL holds an address.
const HOLDS_AN_ADDRESS: &str = "subsets.exists(s, has(s.addresses) && size(s.addresses) > 0)";

/// The policy and its binding, on minors that have the v1 API.
pub fn objects(p: &ManifestParams) -> Vec<Value> {
    if !p.row().validating_admission_policy {
        return Vec::new();
    }
    // Refused only when the old list held an address and the new one holds none.
    let expression = format!(
        "!(has(oldObject.subsets) && oldObject.{HOLDS_AN_ADDRESS}) || (has(object.subsets) && object.{HOLDS_AN_ADDRESS})"
    );
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": meta(NAME, None, &[]),
        "spec": {
            // A policy that cannot be evaluated must never stop the apiservers' own writes.
            "failurePolicy": "Ignore",
            "matchConstraints": {
                "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "default" } },
                "resourceRules": [{
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["UPDATE"],
                    "resources": ["endpoints"],
                    "resourceNames": ["kubernetes"]
                }]
            },
            "validations": [{
                "expression": expression,
                "reason": "Forbidden",
                "message": "the kubernetes Service keeps its last address: an apiserver still serves there (the new one of a hand-over, or a controller's recovery apiserver); it goes when an apiserver writes another address"
            }]
        }
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": meta(NAME, None, &[]),
        "spec": { "policyName": NAME, "validationActions": ["Deny"] }
    });
    vec![policy, binding]
}
