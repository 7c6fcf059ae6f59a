//! Waits: watch until a predicate from [`crate::conditions`] holds.
//!
//! A wait has no timeout of its own. The caller takes its deadline once (from the `timeouts`
//! block) and wraps the wait with [`Waiter::until`], which also stops on the cancellation token
//! and, on either, reports what was awaited and the last thing observed — never just "timed out".
//! Watch errors known to be transient are retried with back-off; others end the wait.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::watcher::{self, watch_object, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::conditions::{self, Condition, LeaseHeld};
use crate::retry::{self, Backoff};

/// Why a wait ended without its condition.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The caller's deadline passed first.
    #[error("timed out waiting for {what}; last observed: {last}")]
    DeadlineExceeded {
        /// What was awaited.
        what: String,
        /// The last observation (object status or error) before the deadline.
        last: String,
    },
    /// The cancellation token fired (StopProvider, Shutdown).
    #[error("cancelled while waiting for {what}; last observed: {last}")]
    Cancelled {
        /// What was awaited.
        what: String,
        /// The last observation.
        last: String,
    },
    /// Watching failed with an error that will not go away by retrying (e.g. 403).
    #[error("watching {what} failed: {source}")]
    Watch {
        /// What was watched.
        what: String,
        /// The watcher's error.
        #[source]
        source: watcher::Error,
    },
    /// A probe request failed with an error that will not go away by retrying.
    #[error("probing {what} failed: {message}")]
    Probe {
        /// What was probed.
        what: String,
        /// The API's message.
        message: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The watch stream ended (it should not).
    #[error("the watch of {what} ended unexpectedly")]
    StreamEnded {
        /// What was watched.
        what: String,
    },
}

fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

/// The last observation of the running wait, shared so that a caller that stopped the wait
/// can still say how far it got.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<String>>);

impl Progress {
    /// Record an observation.
    pub fn set(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::debug!(observed = %line, "wait progress");
        if let Ok(mut g) = self.0.lock() {
            *g = line;
        }
    }

    /// The last observation ("nothing observed yet" before the first).
    pub fn last(&self) -> String {
        match self.0.lock() {
            Ok(g) if !g.is_empty() => g.clone(),
            _ => "nothing observed yet".to_owned(),
        }
    }
}

/// Runs waits against one API, with one cancellation token and one progress record.
#[derive(Clone)]
pub struct Waiter {
    client: Client,
    cancel: CancellationToken,
    progress: Progress,
}

impl Waiter {
    /// A waiter for `client`, never cancelled unless [`Waiter::with_cancel`] is used.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cancel: CancellationToken::new(),
            progress: Progress::default(),
        }
    }

    /// Stop waits when `token` fires.
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The client waits use.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The cancellation token waits stop on.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The progress record of this waiter's waits.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Run `wait` until it ends, `deadline` passes or the token fires; the errors name `what`
    /// and the last observation.
    pub async fn until<T>(
        &self,
        deadline: Instant,
        what: &str,
        wait: impl Future<Output = Result<T, WaitError>>,
    ) -> Result<T, WaitError> {
        tokio::select! {
            r = wait => r,
            _ = tokio::time::sleep_until(deadline) => Err(WaitError::DeadlineExceeded { what: what.to_owned(), last: self.progress.last() }),
            _ = self.cancel.cancelled() => Err(WaitError::Cancelled { what: what.to_owned(), last: self.progress.last() }),
        }
    }

    /// Wait until `GET /readyz` answers `ok`. Connection failures and `5xx` (an apiserver still
    /// starting) are retried with back-off; this is a probe, there is nothing to watch yet.
    pub async fn readyz(&self) -> Result<(), WaitError> {
        let what = "the API server's /readyz";
        let mut backoff = Backoff::probe();
        loop {
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(|e| WaitError::Probe {
                    what: what.into(),
                    message: e.to_string(),
                    source: kube::Error::HttpError(e),
                })?;
            match self.client.request_text(req).await {
                Ok(body) if body.trim() == "ok" => {
                    self.progress.set("/readyz: ok");
                    return Ok(());
                }
                Ok(body) => self.progress.set(format!("/readyz answered: {}", body.trim())),
                // 403 too: a starting apiserver forbids until its RBAC bootstrap roles exist.
                Err(e) if retry::is_retryable(&e) || is_forbidden(&e) => {
                    self.progress.set(format!("/readyz: {}", retry::api_message(&e)))
                }
                Err(e) => {
                    return Err(WaitError::Probe {
                        what: what.into(),
                        message: retry::api_message(&e),
                        source: e,
                    })
                }
            }
            self.pause(backoff.next_delay(), what).await?;
        }
    }

    /// Sleep between probes, but stop at once when cancelled.
    pub(crate) async fn pause(&self, d: std::time::Duration, what: &str) -> Result<(), WaitError> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.cancel.cancelled() => Err(WaitError::Cancelled { what: what.to_owned(), last: self.progress.last() }),
        }
    }

    /// Watch one object by name until `cond` holds; returns it (`None` if the condition holds
    /// for an absent object).
    pub async fn object<K>(
        &self,
        api: Api<K>,
        name: &str,
        cond: impl Condition<K>,
        describe: impl Fn(&K) -> String,
    ) -> Result<Option<K>, WaitError>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
        K::DynamicType: Default,
    {
        let what = format!("{} {name}", K::kind(&K::DynamicType::default()));
        let stream = watch_object(api, name).default_backoff();
        self.drive(stream, &what, |obj: Option<K>| {
            self.progress.set(match &obj {
                Some(o) => describe(o),
                None => format!("{what}: not found"),
            });
            cond.matches_object(obj.as_ref()).then_some(obj)
        })
        .await
    }

    /// Feed a watch stream to `step` until it returns `Some`; transient errors are recorded
    /// and the (backed-off) stream goes on, others end the wait.
    async fn drive<T, R>(
        &self,
        stream: impl Stream<Item = Result<T, watcher::Error>>,
        what: &str,
        mut step: impl FnMut(T) -> Option<R>,
    ) -> Result<R, WaitError> {
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = self.cancel.cancelled() => return Err(WaitError::Cancelled { what: what.to_owned(), last: self.progress.last() }),
            };
            match next {
                None => return Err(WaitError::StreamEnded { what: what.to_owned() }),
                Some(Ok(item)) => {
                    if let Some(r) = step(item) {
                        return Ok(r);
                    }
                }
                Some(Err(e)) if retry::is_watch_retryable(&e) => {
                    self.progress.set(format!("{what}: {}", retry::error_chain(&e)))
                }
                Some(Err(source)) => {
                    return Err(WaitError::Watch {
                        what: what.to_owned(),
                        source,
                    })
                }
            }
        }
    }

    /// Wait until at least `min` pods match `selector` in `namespace` and all of them are Ready.
    pub async fn pods_ready(&self, namespace: &str, selector: &str, min: usize) -> Result<Vec<Pod>, WaitError> {
        let what = format!("pods {selector:?} in {namespace} to be Ready");
        self.pods_until(namespace, selector, &what, |pods| conditions::pods_ready(pods, min))
            .await
    }

    /// Wait until no pod matches `selector` in `namespace` (deleted, not just terminating).
    pub async fn pods_gone(&self, namespace: &str, selector: &str) -> Result<(), WaitError> {
        let what = format!("pods {selector:?} in {namespace} to be gone");
        self.pods_until(namespace, selector, &what, |pods| pods.is_empty())
            .await
            .map(|_| ())
    }

    /// Watch the pods matching `selector` until `done` holds for the whole matching set;
    /// returns that set.
    async fn pods_until(
        &self,
        namespace: &str,
        selector: &str,
        what: &str,
        done: impl Fn(&[Pod]) -> bool,
    ) -> Result<Vec<Pod>, WaitError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let stream = watcher::watcher(api, watcher::Config::default().labels(selector)).default_backoff();
        let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
        let mut pending: BTreeMap<String, Pod> = BTreeMap::new();
        let mut listed = false;
        self.drive(stream, what, |ev| {
            let key = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
            match ev {
                Event::Init => pending.clear(),
                Event::InitApply(p) => {
                    pending.insert(key(&p), p);
                }
                Event::InitDone => {
                    pods = std::mem::take(&mut pending);
                    listed = true;
                }
                Event::Apply(p) => {
                    pods.insert(key(&p), p);
                }
                Event::Delete(p) => {
                    pods.remove(&key(&p));
                }
            }
            if !listed {
                return None;
            }
            let lines: Vec<String> = pods.values().map(conditions::describe_pod).collect();
            self.progress.set(if lines.is_empty() {
                format!("no pod matches {selector:?} in {namespace}")
            } else {
                lines.join(" | ")
            });
            let set: Vec<Pod> = pods.values().cloned().collect();
            done(&set).then_some(set)
        })
        .await
    }

    /// Wait until node `name` is registered and Ready.
    pub async fn node_ready(&self, name: &str) -> Result<Node, WaitError> {
        let api: Api<Node> = Api::all(self.client.clone());
        self.object(api, name, conditions::is_node_ready(), conditions::describe_node)
            .await?
            .ok_or_else(|| WaitError::StreamEnded {
                what: format!("node {name}"),
            })
    }

    /// Wait until node `name` is Ready with its kubelet at `version` (after the kubelet moved).
    pub async fn node_ready_at(&self, name: &str, version: &str) -> Result<Node, WaitError> {
        let api: Api<Node> = Api::all(self.client.clone());
        let cond = conditions::is_node_ready_at(version.to_owned());
        self.object(api, name, cond, conditions::describe_node)
            .await?
            .ok_or_else(|| WaitError::StreamEnded {
                what: format!("node {name}"),
            })
    }

    /// Wait until node `name` is registered (Ready or not).
    pub async fn node_registered(&self, name: &str) -> Result<Node, WaitError> {
        let api: Api<Node> = Api::all(self.client.clone());
        self.object(api, name, conditions::is_node_registered(), conditions::describe_node)
            .await?
            .ok_or_else(|| WaitError::StreamEnded {
                what: format!("node {name}"),
            })
    }

    /// Wait until CRD `name` (`plural.group`) is Established.
    pub async fn crd_established(&self, name: &str) -> Result<CustomResourceDefinition, WaitError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        self.object(api, name, conditions::is_crd_established(), conditions::describe_crd)
            .await?
            .ok_or_else(|| WaitError::StreamEnded {
                what: format!("crd {name}"),
            })
    }

    /// Wait until DaemonSet `namespace/name` is rolled out.
    pub async fn daemonset_rolled_out(&self, namespace: &str, name: &str) -> Result<DaemonSet, WaitError> {
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), namespace);
        self.object(
            api,
            name,
            conditions::is_daemonset_rolled_out(),
            conditions::describe_daemonset,
        )
        .await?
        .ok_or_else(|| WaitError::StreamEnded {
            what: format!("daemonset {namespace}/{name}"),
        })
    }

    /// Wait until Deployment `namespace/name` is rolled out.
    pub async fn deployment_rolled_out(&self, namespace: &str, name: &str) -> Result<Deployment, WaitError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        self.object(
            api,
            name,
            conditions::is_deployment_rolled_out(),
            conditions::describe_deployment,
        )
        .await?
        .ok_or_else(|| WaitError::StreamEnded {
            what: format!("deployment {namespace}/{name}"),
        })
    }

    /// The current holder of Lease `namespace/name` (`None` if absent or unheld): read before the
    /// teardown, it is the former holder a later [`Waiter::lease_held`] must not accept.
    pub async fn lease_holder(&self, namespace: &str, name: &str) -> Result<Option<String>, WaitError> {
        let lease = self.lease(namespace, name).await?;
        Ok(lease.as_ref().and_then(conditions::lease_holder).map(str::to_owned))
    }

    async fn lease(&self, namespace: &str, name: &str) -> Result<Option<Lease>, WaitError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(|source| WaitError::Probe {
            what: format!("lease {namespace}/{name}"),
            message: retry::api_message(&source),
            source,
        })
    }

    /// The last `renewTime` of Lease `namespace/name`, if it has one.
    pub async fn lease_renewed(&self, namespace: &str, name: &str) -> Result<Option<Timestamp>, WaitError> {
        let lease = self.lease(namespace, name).await?;
        Ok(lease.and_then(|l| l.spec?.renew_time).map(|t| t.0))
    }

    /// Wait until Lease `namespace/name` is held as `want` says (e.g. `kube-system/kube-scheduler`,
    /// not by the bootstrap scheduler).
    pub async fn lease_held(&self, namespace: &str, name: &str, want: LeaseHeld) -> Result<Lease, WaitError> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        self.object(api, name, conditions::is_lease_held(want), conditions::describe_lease)
            .await?
            .ok_or_else(|| WaitError::StreamEnded {
                what: format!("lease {namespace}/{name}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_keeps_the_last_line() {
        let p = Progress::default();
        assert_eq!(p.last(), "nothing observed yet");
        p.set("a");
        p.clone().set("b");
        assert_eq!(p.last(), "b");
    }
}
