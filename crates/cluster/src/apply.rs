//! Server-side apply of the rendered `manifests/` with one field manager.
//!
//! Files are applied in the order their `NN-` prefix gives (`manifests/NN-kind-namespace-name.yaml`;
//! then by path), each document in file order. The API resource of each kind is discovered once
//! and cached. Objects whose kind is defined by a CRD applied earlier in the same set wait until
//! that CRD is Established. Apply is forced with field manager [`FIELD_MANAGER`], so a rerun
//! converges (no `AlreadyExists`) and fields another manager took over are taken back.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use kube::api::{Patch, PatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client};
use sha2::{Digest, Sha256};

use selfhosted_manifests::object::sorted;

use crate::retry::{self, Backoff};
use crate::wait::{WaitError, Waiter};

/// The one field manager of every object the provider applies.
pub const FIELD_MANAGER: &str = "terraform-provider-selfhosted";

/// Why applying the manifests failed; each names the file and the object.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A document is not YAML.
    #[error("{file}: document {doc} is not valid YAML: {source}")]
    ParseYaml {
        /// The manifest path.
        file: String,
        /// The document's index in the file (0-based).
        doc: usize,
        /// The parse error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A document is not a Kubernetes object (no apiVersion/kind/metadata.name).
    #[error("{file}: document {doc} is not a Kubernetes object: {reason}")]
    NotAnObject {
        /// The manifest path.
        file: String,
        /// The document's index in the file (0-based).
        doc: usize,
        /// What is missing.
        reason: String,
    },
    /// Discovering the API resource of a kind failed.
    #[error("{file}: {object}: the API does not serve this kind: {message}")]
    Discover {
        /// The manifest path.
        file: String,
        /// `Kind namespace/name`.
        object: String,
        /// The API's message.
        message: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Reading the current object (to report what changed) failed.
    #[error("{file}: {object}: reading the current object failed: {message}")]
    Read {
        /// The manifest path.
        file: String,
        /// `Kind namespace/name`.
        object: String,
        /// The API's message.
        message: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API refused the apply.
    #[error("{file}: {object}: server-side apply failed: {message}")]
    Apply {
        /// The manifest path.
        file: String,
        /// `Kind namespace/name`.
        object: String,
        /// The API's message.
        message: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Waiting for a CRD applied earlier to be Established failed.
    #[error("{file}: {object}: waiting for CRD {crd} to be Established: {source}")]
    WaitCrd {
        /// The manifest path of the object that needs the CRD.
        file: String,
        /// `Kind namespace/name`.
        object: String,
        /// The CRD's name.
        crd: String,
        /// The wait's error.
        #[source]
        source: Box<WaitError>,
    },
}

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Configured,
    /// It existed and the apply changed nothing (same resourceVersion).
    Unchanged,
}

/// One applied object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedObject {
    /// The manifest path it came from.
    pub file: String,
    /// `group/version` or `version`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// The namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
    /// What the apply did.
    pub outcome: Outcome,
}

impl fmt::Display for AppliedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {:?} ({})",
            self.kind,
            object_ref(self.namespace.as_deref(), &self.name),
            self.outcome,
            self.file
        )
    }
}

/// What an apply did, and a digest of what was applied.
#[derive(Debug, Clone)]
pub struct ApplySummary {
    /// Every object, in apply order.
    pub objects: Vec<AppliedObject>,
    /// `sha256:` of the applied documents (paths and canonical JSON), independent of the cluster:
    /// equal inputs give equal digests.
    pub digest: String,
}

impl ApplySummary {
    /// How many objects had each outcome: (created, configured, unchanged).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |o| self.objects.iter().filter(|a| a.outcome == o).count();
        (n(Outcome::Created), n(Outcome::Configured), n(Outcome::Unchanged))
    }
}

/// One document of a manifest file, parsed.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest path.
    pub file: String,
    /// The object.
    pub object: DynamicObject,
    /// Its group, version and kind.
    pub gvk: GroupVersionKind,
}

impl Manifest {
    /// `Kind namespace/name` (or `Kind name`), for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {}",
            self.gvk.kind,
            object_ref(self.object.metadata.namespace.as_deref(), self.name())
        )
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }

    /// The object's label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.object.metadata.labels.as_ref()?.get(key).map(String::as_str)
    }
}

fn object_ref(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// Split `apiVersion` into group and version (`v1` is the core group `""`).
pub fn parse_api_version(api_version: &str) -> Option<(String, String)> {
    match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [v] if !v.is_empty() => Some((String::new(), (*v).to_owned())),
        [g, v] if !g.is_empty() && !v.is_empty() => Some(((*g).to_owned(), (*v).to_owned())),
        _ => None,
    }
}

/// The apply order of a manifest path: its numeric `NN-` file-name prefix, then the path.
fn order_key(path: &str) -> (u64, &str) {
    let file = path.rsplit('/').next().unwrap_or(path);
    let digits: String = file.chars().take_while(char::is_ascii_digit).collect();
    (digits.parse().unwrap_or(u64::MAX), path)
}

/// Parse manifest files into objects, in apply order. Empty documents are skipped.
pub fn parse_manifests(files: &BTreeMap<String, String>) -> Result<Vec<Manifest>, ApplyError> {
    use serde::Deserialize;
    let mut paths: Vec<&String> = files.keys().collect();
    paths.sort_by_key(|p| order_key(p));
    let mut out = Vec::new();
    for path in paths {
        for (doc, de) in serde_yaml_ng::Deserializer::from_str(&files[path]).enumerate() {
            let value = serde_json::Value::deserialize(de).map_err(|source| ApplyError::ParseYaml {
                file: path.clone(),
                doc,
                source,
            })?;
            if value.is_null() {
                continue;
            }
            let not_object = |reason: &str| ApplyError::NotAnObject {
                file: path.clone(),
                doc,
                reason: reason.to_owned(),
            };
            let object: DynamicObject = serde_json::from_value(value).map_err(|e| not_object(&e.to_string()))?;
            let types = object.types.clone().ok_or_else(|| not_object("no apiVersion/kind"))?;
            let (group, version) = parse_api_version(&types.api_version)
                .ok_or_else(|| not_object(&format!("bad apiVersion {:?}", types.api_version)))?;
            if object.metadata.name.as_deref().unwrap_or_default().is_empty() {
                return Err(not_object("no metadata.name"));
            }
            out.push(Manifest {
                file: path.clone(),
                gvk: GroupVersionKind::gvk(&group, &version, &types.kind),
                object,
            });
        }
    }
    Ok(out)
}

/// `sha256:<hex>` over the manifests' paths and canonical JSON, in apply order.
pub fn digest(manifests: &[Manifest]) -> String {
    let mut h = Sha256::new();
    for m in manifests {
        let json = sorted(&serde_json::to_value(&m.object).unwrap_or_default()).to_string();
        h.update(m.file.as_bytes());
        h.update([0]);
        h.update(json.as_bytes());
        h.update([0]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The CRD a kind is defined by, when the CRD is in the same set: `(group, kind)` → CRD name.
fn crds_in(manifests: &[Manifest]) -> HashMap<(String, String), String> {
    let mut out = HashMap::new();
    for m in manifests {
        if m.gvk.group == "apiextensions.k8s.io" && m.gvk.kind == "CustomResourceDefinition" {
            let spec = m.object.data.get("spec");
            let group = spec.and_then(|s| s.get("group")).and_then(|g| g.as_str());
            let kind = spec
                .and_then(|s| s.get("names"))
                .and_then(|n| n.get("kind"))
                .and_then(|k| k.as_str());
            if let (Some(g), Some(k)) = (group, kind) {
                out.insert((g.to_owned(), k.to_owned()), m.name().to_owned());
            }
        }
    }
    out
}

/// Server-side apply every manifest in `files` (path → YAML) in order, as [`FIELD_MANAGER`],
/// forced. CRDs in the set are awaited (Established) before objects of their kinds; that wait
/// uses `waiter` (its cancellation token and progress). No deadline of its own.
pub async fn apply_manifests(waiter: &Waiter, files: &BTreeMap<String, String>) -> Result<ApplySummary, ApplyError> {
    let manifests = parse_manifests(files)?;
    let digest = digest(&manifests);
    let objects = apply_parsed(waiter, &manifests).await?;
    Ok(ApplySummary { objects, digest })
}

/// Server-side apply already parsed manifests in the order given, as [`apply_manifests`] does;
/// lets a caller apply a set in steps (an upgrade waits for each workload's rollout).
pub async fn apply_parsed(waiter: &Waiter, manifests: &[Manifest]) -> Result<Vec<AppliedObject>, ApplyError> {
    let client = waiter.client().clone();
    let crds = crds_in(manifests);
    let mut established: HashMap<String, bool> = HashMap::new();
    let mut cache: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)> = HashMap::new();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut objects = Vec::with_capacity(manifests.len());
    for m in manifests {
        let object = m.describe();
        let crd = crds.get(&(m.gvk.group.clone(), m.gvk.kind.clone()));
        if let Some(crd) = crd {
            if !established.get(crd).copied().unwrap_or(false) {
                waiter
                    .progress()
                    .set(format!("waiting for CRD {crd} to be Established before {object}"));
                waiter
                    .crd_established(crd)
                    .await
                    .map_err(|source| ApplyError::WaitCrd {
                        file: m.file.clone(),
                        object: object.clone(),
                        crd: crd.clone(),
                        source: Box::new(source),
                    })?;
                established.insert(crd.clone(), true);
            }
        }
        let (ar, caps) = match cache.get(&m.gvk) {
            Some(found) => found.clone(),
            None => {
                let found = discover(&client, &m.gvk, crd.is_some(), waiter)
                    .await
                    .map_err(|source| ApplyError::Discover {
                        file: m.file.clone(),
                        object: object.clone(),
                        message: retry::api_message(&source),
                        source: Box::new(source),
                    })?;
                cache.insert(m.gvk.clone(), found.clone());
                found
            }
        };
        let namespace = match caps.scope {
            Scope::Namespaced => Some(
                m.object
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
            ),
            Scope::Cluster => None,
        };
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let before = api.get_opt(m.name()).await.map_err(|source| ApplyError::Read {
            file: m.file.clone(),
            object: object.clone(),
            message: retry::api_message(&source),
            source: Box::new(source),
        })?;
        let mut body = m.object.clone();
        body.metadata.namespace.clone_from(&namespace);
        let after = api
            .patch(m.name(), &params, &Patch::Apply(&body))
            .await
            .map_err(|source| ApplyError::Apply {
                file: m.file.clone(),
                object: object.clone(),
                message: retry::api_message(&source),
                source: Box::new(source),
            })?;
        let outcome = match before {
            None => Outcome::Created,
            Some(b) if b.metadata.resource_version == after.metadata.resource_version => Outcome::Unchanged,
            Some(_) => Outcome::Configured,
        };
        tracing::debug!(file = %m.file, %object, ?outcome, "applied");
        objects.push(AppliedObject {
            file: m.file.clone(),
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace,
            name: m.name().to_owned(),
            outcome,
        });
    }
    Ok(objects)
}

/// Discover the API resource of `gvk`. For kinds of a CRD just Established the discovery
/// document may lag a moment: those are retried a few times with back-off.
async fn discover(
    client: &Client,
    gvk: &GroupVersionKind,
    from_new_crd: bool,
    waiter: &Waiter,
) -> Result<(ApiResource, ApiCapabilities), kube::Error> {
    let mut backoff = Backoff::probe();
    let mut tries = 0;
    loop {
        match kube::discovery::pinned_kind(client, gvk).await {
            Ok(found) => return Ok(found),
            Err(e) if (from_new_crd && tries < 12) || retry::is_retryable(&e) => {
                tries += 1;
                waiter
                    .progress()
                    .set(format!("discovering {}/{} {}: {e}", gvk.group, gvk.version, gvk.kind));
                if waiter.pause(backoff.next_delay(), "API discovery").await.is_err() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(parse_api_version("v1"), Some((String::new(), "v1".into())));
        assert_eq!(parse_api_version("apps/v1"), Some(("apps".into(), "v1".into())));
        assert_eq!(parse_api_version("a/b/c"), None);
        assert_eq!(parse_api_version(""), None);
        assert_eq!(parse_api_version("/v1"), None);
    }

    #[test]
    fn manifests_in_prefix_order_then_document_order() {
        let f = files(&[
            ("manifests/100-late.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: x}\n"),
            ("manifests/30-configmap-x-a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: x}\n"),
            ("manifests/00-namespace-x.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"),
            ("manifests/10-crd-foos.yaml", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: foos.example.com}\nspec: {group: example.com, names: {kind: Foo, plural: foos}}\n"),
        ]);
        let m = parse_manifests(&f).unwrap();
        let names: Vec<String> = m.iter().map(Manifest::describe).collect();
        assert_eq!(
            names,
            [
                "Namespace x",
                "CustomResourceDefinition foos.example.com",
                "ConfigMap x/a",
                "ConfigMap x/b",
                "ConfigMap x/late"
            ]
        );
        assert_eq!(m[1].gvk.group, "apiextensions.k8s.io");
        let crds = crds_in(&m);
        assert_eq!(
            crds.get(&("example.com".into(), "Foo".into())).map(String::as_str),
            Some("foos.example.com")
        );
    }

    #[test]
    fn bad_documents_name_the_file() {
        let e = parse_manifests(&files(&[("manifests/01-x.yaml", "kind: [unclosed")])).unwrap_err();
        assert!(e.to_string().starts_with("manifests/01-x.yaml: document 0"), "{e}");
        let e = parse_manifests(&files(&[(
            "manifests/02-y.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
        )]))
        .unwrap_err();
        assert!(
            e.to_string().contains("manifests/02-y.yaml") && e.to_string().contains("metadata.name"),
            "{e}"
        );
        let e = parse_manifests(&files(&[(
            "manifests/03-z.yaml",
            "apiVersion: a/b/c\nkind: X\nmetadata: {name: n}\n",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("bad apiVersion"), "{e}");
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = files(&[(
            "manifests/00-ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {a: '1', b: '2'}}\n",
        )]);
        let reordered = files(&[(
            "manifests/00-ns.yaml",
            "kind: Namespace\napiVersion: v1\nmetadata: {labels: {b: '2', a: '1'}, name: x}\n",
        )]);
        let changed = files(&[(
            "manifests/00-ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: y}\n",
        )]);
        let d = |f| digest(&parse_manifests(f).unwrap());
        assert_eq!(d(&a), d(&reordered));
        assert_ne!(d(&a), d(&changed));
        assert!(d(&a).starts_with("sha256:") && d(&a).len() == 7 + 64);
    }
}
