//! Reaching the API during a pivot or an upgrade, and the checks both make
//! through it: an apiserver that answers by itself, controllers labelled,
//! leases held, the versions that run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use selfhosted_cluster::conditions::LeaseHeld;
use selfhosted_cluster::oneshot;
use selfhosted_cluster::recovery::{self, RecoveryPod};
use selfhosted_cluster::Manifest;
use selfhosted_cluster::{ApiCredentials, Dialer, Fingerprint, Timestamp, TlsProbe, Waiter};
use selfhosted_transport::{CancellationToken, Session};
use tokio::time::Instant;

use crate::inventory::Inventory;
use crate::phase::{chain, Phase, PivotError};
use crate::procedure::{host_pod_logs, ApiAccess, PivotParams};

/// Pause between the probes that confirm which apiserver answers.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// Pause between attempts to reach the API through the tunnel.
const TUNNEL_RETRY: Duration = Duration::from_secs(1);
/// The TLS name the apiserver certificates always carry.
const TLS_NAME: &str = "kubernetes";
/// The control-plane components whose versions the state reports.
pub(crate) const COMPONENTS: [&str; 3] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];
/// The leader-elected components' leases in kube-system.
const LEASES: [&str; 2] = ["kube-controller-manager", "kube-scheduler"];
/// Selects every self-hosted apiserver pod, of any generation.
pub(crate) const APISERVER_PODS: &str = "k8s-app=kube-apiserver";

/// How long the cut-over may take on a controller (a pod from an image the node holds).
const CUT_OVER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `verify` gives a controller's recovery apiserver to hand back before it fails the
/// apply: a rebooted controller's takes 15-36 s (measured, `docs/guides/disaster-recovery.md`);
/// one that serves past this never will by itself.
const HAND_BACK_GRACE: Duration = Duration::from_secs(120);
/// How long a failed update may spend looking for recovery apiservers to explain it.
const RECOVERY_EVIDENCE_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between looks at the recovery pods.
const RECOVERY_POLL: Duration = Duration::from_secs(2);

/// The cut-over container (`selfhosted-agent cut-over`), made from the `reuseport-gate` init
/// container of an apiserver workload: same image, port and bind address. `None` when the
/// workload has no gate (an apiserver whose image or flags the user replaced).
pub(crate) fn cut_over_container(apiserver: &Manifest) -> Option<serde_json::Value> {
    let inits = apiserver
        .object
        .data
        .pointer("/spec/template/spec/initContainers")?
        .as_array()?;
    let mut container = inits.iter().find(|c| c["name"] == "reuseport-gate")?.clone();
    container["name"] = "cut-over".into();
    let command = container["command"].as_array_mut()?;
    let at = command.iter().position(|a| a == "gate")?;
    command[at] = "cut-over".into();
    Some(container)
}

/// The self-hosted apiserver workload among `manifests`.
pub(crate) fn apiserver_workload(manifests: &[Manifest]) -> Option<&Manifest> {
    manifests
        .iter()
        .find(|m| m.gvk.kind == "DaemonSet" && m.label("k8s-app") == Some("kube-apiserver"))
}

/// Which apiserver the provider expects to find listening first.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// The pivot's temporary apiserver, from static pods.
    Bootstrap,
    /// An apiserver already self-hosted (an update).
    SelfHosted,
}

impl Expect {
    fn who(self) -> &'static str {
        match self {
            Expect::Bootstrap => "the bootstrap apiserver",
            Expect::SelfHosted => "the self-hosted apiserver",
        }
    }

    /// The pod-log prefix of that apiserver on the host.
    pub(crate) fn pod_prefix(self) -> &'static str {
        match self {
            Expect::Bootstrap => "bootstrap-kube-apiserver",
            Expect::SelfHosted => "kube-apiserver",
        }
    }
}

pub(crate) fn asset<'a>(assets: &'a BTreeMap<String, String>, phase: Phase, path: &str) -> Result<&'a str, PivotError> {
    assets.get(path).map(String::as_str).ok_or_else(|| {
        PivotError::new(
            phase,
            format!("the assets lack {path}; pass selfhosted_cluster_assets.<name>.assets"),
        )
    })
}

pub(crate) fn credentials(assets: &BTreeMap<String, String>, phase: Phase) -> Result<ApiCredentials, PivotError> {
    Ok(ApiCredentials {
        ca_pem: asset(assets, phase, "tls/ca.crt")?.to_owned(),
        client_cert_pem: asset(assets, phase, "tls/admin.crt")?.to_owned(),
        client_key_pem: asset(assets, phase, "tls/admin.key")?.to_owned(),
    })
}

/// The manifests among the assets.
pub(crate) fn manifests(assets: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    assets
        .iter()
        .filter(|(k, _)| k.starts_with("manifests/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The API, reached through a tunnel or directly, with a probe that tells which
/// certificate served each answer.
pub(crate) struct Api {
    pub(crate) waiter: Waiter,
    probe: TlsProbe,
    pub(crate) endpoint: String,
    cancel: CancellationToken,
}

impl Api {
    /// Opens the tunnel (retried until the apiserver listens) or dials directly.
    pub(crate) async fn connect(
        boot: &Session,
        params: &PivotParams,
        expect: Expect,
        cancel: &CancellationToken,
    ) -> Result<Api, PivotError> {
        let phase = Phase::WaitForApiserver;
        let creds = credentials(&params.assets, phase)?;
        let (client, probe, endpoint) = match &params.access {
            ApiAccess::Tunnel => {
                // The first channel fails until the apiserver listens.
                let dialer = match dialer_until(boot, &["127.0.0.1"], params.api_port, params.deadline, cancel).await {
                    Ok(d) => d,
                    Err(e) => {
                        return Err(PivotError::on(
                            phase,
                            boot.host(),
                            format!("{} never listened on 127.0.0.1:{}: {e}", expect.who(), params.api_port),
                        )
                        .with_evidence(host_pod_logs(boot, expect.pod_prefix()).await))
                    }
                };
                let client = tunnel_client(dialer.clone(), params.api_port, &creds);
                let probe = TlsProbe::through(&creds, dialer.clone(), TLS_NAME);
                (client, probe, dialer.what().to_owned())
            }
            ApiAccess::Direct { host } => {
                let server = format!("https://{host}:{}", params.api_port);
                let client = selfhosted_cluster::connect(&server, &creds, Some(TLS_NAME));
                let probe = TlsProbe::new(&creds, host, params.api_port, TLS_NAME);
                (client, probe, server)
            }
        };
        let client = client.map_err(|e| PivotError::new(phase, format!("API client: {}", chain(&e))))?;
        let probe = probe.map_err(|e| PivotError::new(phase, format!("TLS probe: {}", chain(&e))))?;
        Ok(Api {
            waiter: Waiter::new(client).with_cancel(cancel.clone()),
            probe,
            endpoint,
            cancel: cancel.clone(),
        })
    }

    /// `/readyz` answers `ok`; on failure, the apiserver's own log lines from `host`.
    pub(crate) async fn ready(&self, host: &Session, expect: Expect, deadline: Instant) -> Result<(), PivotError> {
        let what = format!("{}'s /readyz", expect.who());
        match self.waiter.until(deadline, &what, self.waiter.readyz()).await {
            Ok(()) => Ok(()),
            Err(e) => Err(PivotError::on(Phase::WaitForApiserver, host.host(), chain(&e))
                .with_evidence(host_pod_logs(host, expect.pod_prefix()).await)),
        }
    }

    /// Several good answers in a row, each on a fresh connection through `probe` served with
    /// `cert`'s key: the apiserver that holds it answers by itself.
    async fn answered_through(
        &self,
        probe: &TlsProbe,
        cert: Fingerprint,
        params: &PivotParams,
        what: &str,
    ) -> Result<(), String> {
        let served = self
            .waiter
            .served_by(probe, cert, params.consecutive_answers, PROBE_INTERVAL);
        self.waiter
            .until(params.deadline, what, served)
            .await
            .map(|_| ())
            .map_err(|e| chain(&e))
    }

    /// [`Api::answered_through`] the provider's own way to the API.
    pub(crate) async fn answered_by(&self, cert: Fingerprint, params: &PivotParams, what: &str) -> Result<(), String> {
        self.answered_through(&self.probe, cert, params, what).await
    }

    /// Good answers from `cert` while the restart count of the pods `selector` holds
    /// still: answers alone can come from a process about to exit (design notes section 3).
    pub(crate) async fn answered_steadily(
        &self,
        cert: Fingerprint,
        params: &PivotParams,
        selector: &str,
        pods: usize,
        phase: Phase,
        host: &str,
    ) -> Result<(), PivotError> {
        self.steadily(&self.probe, cert, params, selector, pods, phase, host)
            .await
    }

    /// [`Api::answered_steadily`] by the newest apiserver on `session`'s host: reached
    /// through the loopback address that the reuseport gate (`selfhosted-agent gate`) sends
    /// to the newest listener of the shared port, while every other client still reaches
    /// the oldest. This is how a new apiserver is confirmed before the old one leaves.
    pub(crate) async fn newest_answered_steadily(
        &self,
        session: &Session,
        cert: Fingerprint,
        params: &PivotParams,
        selector: &str,
        pods: usize,
        phase: Phase,
    ) -> Result<(), PivotError> {
        let dialer = match dialer_until(session, &NEWEST_VIA, params.api_port, params.deadline, &self.cancel).await {
            Ok(d) => d,
            Err(e) => {
                return Err(
                    PivotError::on(phase, session.host(), format!("no apiserver listens on loopback: {e}"))
                        .with_evidence(host_pod_logs(session, "kube-apiserver").await),
                )
            }
        };
        let creds = credentials(&params.assets, phase)?;
        let probe = TlsProbe::through(&creds, dialer, TLS_NAME)
            .map_err(|e| PivotError::new(phase, format!("TLS probe: {}", chain(&e))))?;
        self.steadily(&probe, cert, params, selector, pods, phase, session.host())
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn steadily(
        &self,
        probe: &TlsProbe,
        cert: Fingerprint,
        params: &PivotParams,
        selector: &str,
        pods: usize,
        phase: Phase,
        host: &str,
    ) -> Result<(), PivotError> {
        let restarts = || async {
            let what = format!("apiserver pods {selector:?} to be Ready");
            let ready = self
                .waiter
                .until(
                    params.deadline,
                    &what,
                    self.waiter.pods_ready("kube-system", selector, pods),
                )
                .await
                .map_err(|e| PivotError::on(phase, host, chain(&e)))?;
            Ok::<i32, PivotError>(ready.iter().map(selfhosted_cluster::conditions::restart_count).sum())
        };
        loop {
            let before = restarts().await?;
            self.answered_through(probe, cert, params, "the self-hosted apiserver to answer by itself")
                .await
                .map_err(|e| PivotError::on(phase, host, e))?;
            let after = restarts().await?;
            if after == before {
                return Ok(());
            }
            tracing::info!(
                before,
                after,
                "an apiserver restarted while it was confirmed; confirming again"
            );
        }
    }

    /// Records the controllers' names for the CSR approver, then labels every controller
    /// `node-role.kubernetes.io/control-plane` once its node registers.
    pub(crate) async fn label_controllers(&self, inventory: &Inventory, deadline: Instant) -> Result<(), PivotError> {
        let names: Vec<&str> = inventory.controllers().map(|h| h.name.as_str()).collect();
        selfhosted_cluster::labels::record_controllers(self.waiter.client(), &names)
            .await
            .map_err(|e| PivotError::new(Phase::LabelControllers, chain(&e)))?;
        for host in inventory.controllers() {
            let what = format!("node {} to register", host.name);
            self.waiter
                .until(deadline, &what, self.waiter.node_registered(&host.name))
                .await
                .map_err(|e| PivotError::on(Phase::LabelControllers, host.name.clone(), chain(&e)))?;
            selfhosted_cluster::labels::label_control_plane(self.waiter.client(), &host.name)
                .await
                .map_err(|e| PivotError::on(Phase::LabelControllers, host.name.clone(), chain(&e)))?;
        }
        Ok(())
    }

    /// Once the newest apiserver is confirmed on `nodes`, sends every new connection there to
    /// it (`selfhosted-agent cut-over` in a one-shot pod per node), so the oldest is stopped
    /// with no request in its hands: an apiserver built with a current Go drops, unanswered, a
    /// request it reads after its shutdown began. Never fails the procedure: without the
    /// cut-over the oldest keeps clients until it stops, as before, and the log says why.
    pub(crate) async fn cut_over(&self, container: Option<&serde_json::Value>, nodes: &[String], deadline: Instant) {
        let Some(container) = container else {
            tracing::warn!("no reuseport gate in the apiserver workload: no cut-over");
            return;
        };
        let deadline = deadline.min(Instant::now() + CUT_OVER_TIMEOUT);
        let client = self.waiter.client();
        let runs = nodes.iter().map(|node| async move {
            let name = format!("apiserver-cut-over-{node}");
            match oneshot::run_on_node(client, "kube-system", &name, node, container.clone(), deadline).await {
                Ok(done) if done.succeeded => tracing::info!(node, log = %done.log, "apiserver cut-over"),
                Ok(done) => tracing::warn!(node, log = %done.log, "apiserver cut-over failed"),
                Err(e) => tracing::warn!(node, error = %e, "apiserver cut-over not run"),
            }
        });
        futures::future::join_all(runs).await;
    }

    /// Deletes control-plane pods that ended (a kubelet's admission rejected them; their
    /// ReplicaSet made others), so `kubectl get pods` does not show them for months; best
    /// effort, as it changes nothing that runs.
    async fn remove_ended(&self, ended: &[String]) {
        for name in ended {
            if let Err(e) = selfhosted_cluster::workloads::delete_pod(self.waiter.client(), "kube-system", name).await {
                tracing::debug!(pod = name, error = %chain(&e), "removing an ended control-plane pod");
            }
        }
    }

    /// The image tags the Ready pods of each control-plane component run, by component.
    pub(crate) async fn versions(
        &self,
        deadline: Instant,
        controllers: usize,
        phase: Phase,
        evidence_host: &Session,
    ) -> Result<BTreeMap<String, String>, PivotError> {
        let mut versions = BTreeMap::new();
        for component in COMPONENTS {
            let selector = format!("k8s-app={component}");
            let min = if component == "kube-apiserver" { controllers } else { 1 };
            let what = format!("self-hosted {component} pods to be Ready");
            match self
                .waiter
                .until(deadline, &what, self.waiter.pods_ready("kube-system", &selector, min))
                .await
            {
                Ok(pods) => {
                    let (ended, pods): (Vec<_>, Vec<_>) =
                        pods.into_iter().partition(selfhosted_cluster::conditions::pod_terminal);
                    let ended: Vec<String> = ended.into_iter().filter_map(|p| p.metadata.name).collect();
                    self.remove_ended(&ended).await;
                    let images: BTreeSet<String> = pods
                        .iter()
                        .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
                        .map(|image| image.rsplit_once(':').map_or(image.clone(), |(_, tag)| tag.to_owned()))
                        .collect();
                    versions.insert(component.to_owned(), images.into_iter().collect::<Vec<_>>().join(","));
                }
                Err(e) => {
                    return Err(PivotError::new(phase, chain(&e))
                        .with_evidence(self.diagnose(&selector).await)
                        .with_evidence(host_pod_logs(evidence_host, component).await))
                }
            }
        }
        Ok(versions)
    }

    /// The API answers from the self-hosted apiserver and the controller-manager and
    /// scheduler hold their leases; records the version the apiserver reports of itself.
    ///
    /// `renewed_after`: per lease, a renewal time read when a former holder (the bootstrap
    /// controller-manager or scheduler) was already gone; only a later renewal counts, so a
    /// lease that holder renewed a moment before it left is never taken for the self-hosted
    /// one's.
    pub(crate) async fn verify(
        &self,
        self_hosted: Fingerprint,
        params: &PivotParams,
        host: &str,
        versions: &mut BTreeMap<String, String>,
        renewed_after: &BTreeMap<&'static str, Timestamp>,
    ) -> Result<(), PivotError> {
        self.answered_by(self_hosted, params, "the API to answer from the self-hosted apiserver")
            .await
            .map_err(|e| PivotError::on(Phase::Verify, host, e))?;
        if let Ok(info) = self.waiter.client().apiserver_version().await {
            versions.insert("kube-apiserver".to_owned(), info.git_version);
        }
        for lease in LEASES {
            let want = LeaseHeld {
                renewed_after: renewed_after.get(lease).copied(),
                ..LeaseHeld::default()
            };
            let what = match want.renewed_after {
                Some(t) => format!("the {lease} lease to be renewed after {t} (when the bootstrap one was gone)"),
                None => format!("the {lease} lease to be held"),
            };
            self.waiter
                .until(
                    params.deadline,
                    &what,
                    self.waiter.lease_held("kube-system", lease, want),
                )
                .await
                .map_err(|e| PivotError::new(Phase::Verify, chain(&e)))?;
        }
        Ok(())
    }

    /// The controllers that serve from their recovery apiserver (`selfhosted_cluster::recovery`),
    /// by node: one list call.
    async fn on_recovery(&self, inventory: &Inventory) -> Result<BTreeMap<String, RecoveryPod>, String> {
        let mut pods = recovery::recovery_pods(self.waiter.client())
            .await
            .map_err(|e| selfhosted_cluster::retry::api_message(&e))?;
        pods.retain(|node, pod| pod.state.is_serving() && inventory.controllers().any(|h| h.name == *node));
        Ok(pods)
    }

    /// What the recovery pods of `serving` show: the hand-back's log and the self-hosted
    /// apiserver pod of each node.
    async fn recovery_evidence(&self, serving: &BTreeMap<String, RecoveryPod>) -> Vec<String> {
        let mut out = Vec::new();
        for (node, pod) in serving {
            out.push(recovery::evidence(self.waiter.client(), node, pod, APISERVER_PODS).await);
        }
        out
    }

    /// Part of `verify`, on every controller (the provider's own way to the API reaches one):
    /// no controller serves from its recovery apiserver. One that does is given
    /// [`HAND_BACK_GRACE`] (within the deadline) to hand back; after that the apply fails,
    /// naming each such controller with the hand-back's log and its self-hosted apiserver
    /// pod's status and events. A controller on its recovery apiserver answers clients, so
    /// nothing else sees it: its mirror pod is Ready.
    pub(crate) async fn recovery_handed_back(
        &self,
        inventory: &Inventory,
        deadline: Instant,
    ) -> Result<(), PivotError> {
        let phase = Phase::Verify;
        let started = Instant::now();
        let until = deadline.min(started + HAND_BACK_GRACE);
        let mut waiting = Vec::new();
        loop {
            let seen = self.on_recovery(inventory).await;
            let done = Instant::now() + RECOVERY_POLL >= until || self.cancel.is_cancelled();
            match seen {
                Ok(serving) if serving.is_empty() => return Ok(()),
                Ok(serving) if done => {
                    let names: Vec<&str> = serving.keys().map(String::as_str).collect();
                    let message = format!(
                        "{} still serve{} from the recovery apiserver (static pod kube-apiserver-recovery) after {} s: \
                         the self-hosted apiserver did not take over there (its pod cannot start, or never answered \
                         /readyz with its own certificate); the API answers, but from the recovery pod's files",
                        names.join(", "),
                        if names.len() == 1 { "s" } else { "" },
                        started.elapsed().as_secs()
                    );
                    let mut err = match names.as_slice() {
                        [one] => PivotError::on(phase, *one, message),
                        _ => PivotError::new(phase, message),
                    };
                    for e in self.recovery_evidence(&serving).await {
                        err = err.with_evidence(e);
                    }
                    return Err(err);
                }
                Ok(serving) => {
                    let names: Vec<String> = serving.keys().cloned().collect();
                    if names != waiting {
                        tracing::warn!(controllers = ?names, "serving from the recovery apiserver; waiting for its hand-back");
                        waiting = names;
                    }
                }
                Err(e) if done => {
                    return Err(PivotError::new(
                        phase,
                        format!("listing the recovery apiserver pods: {e}"),
                    ))
                }
                Err(e) => tracing::debug!(error = %e, "recovery pods not listed; trying again"),
            }
            tokio::select! {
                () = tokio::time::sleep(RECOVERY_POLL) => {}
                () = self.cancel.cancelled() => {}
            }
        }
    }

    /// `e` with the evidence of each controller that serves from its recovery apiserver, if
    /// any: a failed update often fails *because* one does (its self-hosted apiserver pod is
    /// not Ready), and the wait that timed out does not know it.
    /// Bounded by [`RECOVERY_EVIDENCE_TIMEOUT`]: the API may be what failed.
    pub(crate) async fn with_recovery_evidence(&self, e: PivotError, inventory: &Inventory) -> PivotError {
        if self.cancel.is_cancelled() {
            return e;
        }
        let seen = tokio::time::timeout(RECOVERY_EVIDENCE_TIMEOUT, async {
            let serving = self.on_recovery(inventory).await.ok().filter(|s| !s.is_empty())?;
            let evidence = self.recovery_evidence(&serving).await;
            Some((serving, evidence))
        });
        let Ok(Some((serving, evidence))) = seen.await else {
            return e;
        };
        let names: Vec<&str> = serving.keys().map(String::as_str).collect();
        let mut e = e.with_evidence(format!(
            "{} serve{} from the recovery apiserver (static pod kube-apiserver-recovery), not the self-hosted one:",
            names.join(", "),
            if names.len() == 1 { "s" } else { "" }
        ));
        for evidence in evidence {
            e = e.with_evidence(evidence);
        }
        e
    }

    /// The last renewal of each leader lease (where there is one).
    pub(crate) async fn lease_renewals(&self, phase: Phase) -> Result<BTreeMap<&'static str, Timestamp>, PivotError> {
        let mut out = BTreeMap::new();
        for lease in LEASES {
            let renewed = self
                .waiter
                .lease_renewed("kube-system", lease)
                .await
                .map_err(|e| PivotError::new(phase, chain(&e)))?;
            if let Some(t) = renewed {
                out.insert(lease, t);
            }
        }
        Ok(out)
    }

    /// Evidence from the API about the pods `selector` in kube-system.
    pub(crate) async fn diagnose(&self, selector: &str) -> String {
        match selfhosted_cluster::diagnose::collect_evidence(self.waiter.client(), "kube-system", selector).await {
            Ok(evidence) => evidence.to_string(),
            Err(e) => format!("could not collect evidence for {selector}: {}", chain(&e)),
        }
    }
}

/// The sessions of the controllers, in inventory order.
pub(crate) fn controller_sessions<'a>(inventory: &Inventory, sessions: &'a [Session]) -> Vec<&'a Session> {
    inventory
        .controllers()
        .filter_map(|h| sessions.iter().find(|s| s.host() == h.name))
        .collect()
}

/// The loopback addresses that reach the newest listener of the shared port, in the order
/// the gate chooses them: `::1` where the host has it, else IPv4 loopback.
const NEWEST_VIA: [&str; 2] = ["::1", "127.0.0.1"];

/// A dialer through `session` to the first of `targets` that accepts a connection on `port`
/// (a first channel opened and closed tells), retried until the deadline or cancellation;
/// else the last error.
pub(crate) async fn dialer_until(
    session: &Session,
    targets: &[&str],
    port: u16,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<Dialer, String> {
    loop {
        let mut last = String::new();
        for host in targets {
            match session.open_stream(host, port).await {
                Ok(_) => return Ok(ssh_dialer(session, host, port)),
                Err(e) => last = chain(&e),
            }
        }
        if Instant::now() + TUNNEL_RETRY >= deadline || cancel.is_cancelled() {
            return Err(last);
        }
        tracing::debug!(error = %last, "apiserver port not reachable through the tunnel yet");
        tokio::select! {
            () = tokio::time::sleep(TUNNEL_RETRY) => {}
            () = cancel.cancelled() => {}
        }
    }
}

/// A client of the apiserver at the far end of `dialer` (the controller's own `127.0.0.1`).
pub(crate) fn tunnel_client(
    dialer: Dialer,
    api_port: u16,
    creds: &ApiCredentials,
) -> Result<selfhosted_cluster::Client, selfhosted_cluster::ClientError> {
    selfhosted_cluster::connect_through(&format!("https://127.0.0.1:{api_port}"), dialer, creds, TLS_NAME)
}

/// Connections to `host:port` as `session`'s host sees it, each a new SSH channel.
fn ssh_dialer(session: &Session, host: &str, port: u16) -> Dialer {
    let what = format!("ssh tunnel {} → {host}:{port}", session.host());
    let (session, host) = (session.clone(), host.to_owned());
    Dialer::new(what, move || {
        let (session, host) = (session.clone(), host.clone());
        async move { session.open_stream(&host, port).await.map_err(std::io::Error::other) }
    })
}

/// The self-hosted apiserver's serving certificate, as the probe sees it.
pub(crate) fn self_hosted_cert(assets: &BTreeMap<String, String>, phase: Phase) -> Result<Fingerprint, PivotError> {
    Fingerprint::of_pem(asset(assets, phase, "tls/apiserver.crt")?).map_err(|e| PivotError::new(phase, chain(&e)))
}
