//! The self-hosted pivot, phase by phase (design notes section 3). Each
//! phase is idempotent, so a rerun after any failure — including a provider
//! killed mid-pivot that left the bootstrap control plane behind — converges.
//!
//! The provider reaches the API through an SSH tunnel to the bootstrap
//! controller (or directly), and confirms that the self-hosted apiserver
//! answers by itself — by its own serving certificate, several answers in a
//! row — before it removes the bootstrap control plane: with port sharing, a
//! Ready pod alone can lie.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use selfhosted_cluster::conditions::LeaseHeld;
use selfhosted_cluster::{ApiCredentials, Fingerprint, TlsProbe, Waiter};
use selfhosted_transport::{CancellationToken, LearnedHostKey, Session, Tunnel};
use tokio::time::Instant;

use crate::distribute;
use crate::inventory::{Inventory, Role};
use crate::paths::RemotePaths;
use crate::phase::{self, chain, Phase, PivotError};
use crate::preflight::{self, Ready};

/// How the provider reaches the API during the pivot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAccess {
    /// An SSH tunnel to the bootstrap controller's `127.0.0.1:<port>` (works from CI runners behind NAT).
    Tunnel,
    /// Straight to the server URL's host.
    Direct {
        /// Host name or address to dial.
        host: String,
    },
}

/// Inputs of the pivot.
#[derive(Debug, Clone)]
pub struct PivotParams {
    /// `selfhosted_cluster_assets.assets`.
    pub assets: BTreeMap<String, String>,
    /// Remote paths.
    pub paths: RemotePaths,
    /// How to reach the API.
    pub access: ApiAccess,
    /// The apiserver port.
    pub api_port: u16,
    /// When the whole operation must be done (from the `timeouts` block).
    pub deadline: Instant,
    /// Good answers in a row the self-hosted apiserver must give by itself before teardown.
    pub consecutive_answers: u32,
}

/// What the pivot did, also when it failed part-way.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The last phase that completed.
    pub reached: Option<Phase>,
    /// Host keys accepted on first use.
    pub learned: Vec<LearnedHostKey>,
    /// The API endpoint used (`https://…`, or the tunnel's description).
    pub api_endpoint: String,
    /// Digest of the applied manifests.
    pub applied_digest: String,
    /// Observed control-plane versions, by component.
    pub versions: BTreeMap<String, String>,
}

/// Pause between the probes that confirm which apiserver answers.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// Pause between attempts to open the API tunnel.
const TUNNEL_RETRY: Duration = Duration::from_secs(1);
/// The TLS name the apiserver certificates always carry.
const TLS_NAME: &str = "kubernetes";
/// Components that must be Ready before the bootstrap control plane goes.
const COMPONENTS: [&str; 3] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];

fn asset<'a>(assets: &'a BTreeMap<String, String>, phase: Phase, path: &str) -> Result<&'a str, PivotError> {
    assets.get(path).map(String::as_str).ok_or_else(|| {
        PivotError::new(
            phase,
            format!("the assets lack {path}; pass selfhosted_cluster_assets.<name>.assets"),
        )
    })
}

fn credentials(assets: &BTreeMap<String, String>, phase: Phase) -> Result<ApiCredentials, PivotError> {
    Ok(ApiCredentials {
        ca_pem: asset(assets, phase, "tls/ca.crt")?.to_owned(),
        client_cert_pem: asset(assets, phase, "tls/admin.crt")?.to_owned(),
        client_key_pem: asset(assets, phase, "tls/admin.key")?.to_owned(),
    })
}

/// The tail of a static or self-hosted pod's container logs on a host, read
/// over SSH (the API may be down): the apiserver's own error lines.
pub async fn host_pod_logs(session: &Session, pod_prefix: &str) -> String {
    let script = format!(
        "for f in /var/log/pods/kube-system_{pod_prefix}*/*/*.log; do [ -f \"$f\" ] || continue; echo \"== $f\"; tail -n 25 \"$f\"; done 2>/dev/null | tail -n 120"
    );
    match session.sudo(&script).await {
        Ok(out) if !out.stdout_text().trim().is_empty() => {
            format!(
                "container logs on {} ({pod_prefix}…):\n{}",
                session.host(),
                out.stdout_text().trim_end()
            )
        }
        Ok(_) => format!(
            "no container logs of {pod_prefix}… on {} yet (the kubelet has not started it)",
            session.host()
        ),
        Err(e) => format!("could not read logs on {}: {}", session.host(), chain(&e)),
    }
}

struct Api {
    waiter: Waiter,
    probe: TlsProbe,
    endpoint: String,
    _tunnel: Option<Tunnel>,
}

impl Api {
    /// Several good answers in a row, each on a fresh connection served with
    /// `cert`'s key: the apiserver that holds it answers by itself.
    async fn answered_by(&self, cert: Fingerprint, params: &PivotParams, what: &str) -> Result<(), String> {
        let probe = self
            .waiter
            .served_by(&self.probe, cert, params.consecutive_answers, PROBE_INTERVAL);
        self.waiter
            .until(params.deadline, what, probe)
            .await
            .map(|_| ())
            .map_err(|e| chain(&e))
    }
}

async fn connect_api(
    boot: &Session,
    params: &PivotParams,
    creds: &ApiCredentials,
    cancel: &CancellationToken,
) -> Result<Api, PivotError> {
    let phase = Phase::WaitForApiserver;
    let (host, port, tunnel, endpoint) = match &params.access {
        ApiAccess::Tunnel => {
            // The tunnel's first forward fails until the bootstrap apiserver listens.
            let t = loop {
                match boot.tunnel("127.0.0.1", params.api_port).await {
                    Ok(t) => break t,
                    Err(e) if Instant::now() + TUNNEL_RETRY < params.deadline && !cancel.is_cancelled() => {
                        tracing::debug!(error = %e, "apiserver port not reachable through the tunnel yet");
                        tokio::select! {
                            () = tokio::time::sleep(TUNNEL_RETRY) => {}
                            () = cancel.cancelled() => {}
                        }
                    }
                    Err(e) => {
                        return Err(PivotError::on(
                            phase,
                            boot.host(),
                            format!(
                                "the bootstrap apiserver never listened on 127.0.0.1:{}: {}",
                                params.api_port,
                                chain(&e)
                            ),
                        )
                        .with_evidence(host_pod_logs(boot, "bootstrap-kube-apiserver").await))
                    }
                }
            };
            let local = t.local_addr();
            let endpoint = format!("ssh tunnel {local} → {}:127.0.0.1:{}", boot.host(), params.api_port);
            ("127.0.0.1".to_owned(), local.port(), Some(t), endpoint)
        }
        ApiAccess::Direct { host } => (
            host.clone(),
            params.api_port,
            None,
            format!("https://{host}:{}", params.api_port),
        ),
    };
    let server = format!("https://{host}:{port}");
    let client = selfhosted_cluster::connect(&server, creds, Some(TLS_NAME))
        .map_err(|e| PivotError::new(phase, format!("API client: {}", chain(&e))))?;
    let probe = TlsProbe::new(creds, &host, port, TLS_NAME)
        .map_err(|e| PivotError::new(phase, format!("TLS probe: {}", chain(&e))))?;
    Ok(Api {
        waiter: Waiter::new(client).with_cancel(cancel.clone()),
        probe,
        endpoint,
        _tunnel: tunnel,
    })
}

/// Runs the whole pivot. On failure returns what was done so far with the error.
///
/// # Errors
/// The failed phase, host and evidence, with the [`Outcome`] reached.
pub async fn create(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
) -> Result<Outcome, Box<(Outcome, PivotError)>> {
    let mut outcome = Outcome::default();
    match run(inventory, params, cancel, &mut outcome).await {
        Ok(()) => Ok(outcome),
        Err(e) => Box::pin(async { Err(Box::new((outcome, e))) }).await,
    }
}

async fn run(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    outcome: &mut Outcome,
) -> Result<(), PivotError> {
    let assets = &params.assets;
    let ready: Ready = phase::run(Phase::Preflight, preflight::preflight(inventory, cancel)).await?;
    outcome.learned = ready.learned.clone();
    outcome.reached = Some(Phase::Preflight);
    let result = pivot_phases(inventory, params, cancel, outcome, &ready, assets).await;
    ready.fleet.close().await;
    result
}

async fn pivot_phases(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    outcome: &mut Outcome,
    ready: &Ready,
    assets: &BTreeMap<String, String>,
) -> Result<(), PivotError> {
    phase::run(
        Phase::NodeSecrets,
        distribute::node_secrets(ready, inventory, assets, &params.paths, cancel),
    )
    .await?;
    outcome.reached = Some(Phase::NodeSecrets);

    let boot = ready.fleet.sessions()[0].clone();
    phase::run(
        Phase::BootstrapControlPlane,
        distribute::bootstrap_control_plane(&boot, assets, &params.paths),
    )
    .await?;
    outcome.reached = Some(Phase::BootstrapControlPlane);

    let creds = credentials(assets, Phase::WaitForApiserver)?;
    let api = connect_api(&boot, params, &creds, cancel).await?;
    outcome.api_endpoint = api.endpoint.clone();
    let deadline = params.deadline;
    phase::run(Phase::WaitForApiserver, async {
        match api
            .waiter
            .until(deadline, "the bootstrap apiserver's /readyz", api.waiter.readyz())
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err(PivotError::on(Phase::WaitForApiserver, boot.host(), chain(&e))
                .with_evidence(host_pod_logs(&boot, "bootstrap-kube-apiserver").await)),
        }
    })
    .await?;
    outcome.reached = Some(Phase::WaitForApiserver);

    let manifests: BTreeMap<String, String> = assets
        .iter()
        .filter(|(k, _)| k.starts_with("manifests/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let summary = phase::run(Phase::ApplyManifests, async {
        let apply = selfhosted_cluster::apply_manifests(&api.waiter, &manifests);
        tokio::select! {
            r = apply => r.map_err(|e| PivotError::new(Phase::ApplyManifests, chain(&e))),
            () = tokio::time::sleep_until(deadline) => Err(PivotError::new(
                Phase::ApplyManifests,
                format!("timed out applying manifests; last observed: {}", api.waiter.progress().last()),
            )),
            () = cancel.cancelled() => Err(PivotError::new(Phase::ApplyManifests, "cancelled")),
        }
    })
    .await?;
    outcome.applied_digest = summary.digest.clone();
    outcome.reached = Some(Phase::ApplyManifests);

    phase::run(Phase::LabelControllers, async {
        for host in inventory.controllers() {
            let what = format!("node {} to register", host.name);
            api.waiter
                .until(deadline, &what, api.waiter.node_registered(&host.name))
                .await
                .map_err(|e| PivotError::on(Phase::LabelControllers, host.name.clone(), chain(&e)))?;
            selfhosted_cluster::labels::label_control_plane(api.waiter.client(), &host.name)
                .await
                .map_err(|e| PivotError::on(Phase::LabelControllers, host.name.clone(), chain(&e)))?;
        }
        Ok(())
    })
    .await?;
    outcome.reached = Some(Phase::LabelControllers);

    let self_hosted = Fingerprint::of_pem(asset(assets, Phase::WaitForSelfHosted, "tls/apiserver.crt")?)
        .map_err(|e| PivotError::new(Phase::WaitForSelfHosted, chain(&e)))?;
    let controllers = inventory.hosts().iter().filter(|h| h.role == Role::Controller).count();
    let mut versions = BTreeMap::new();
    phase::run(Phase::WaitForSelfHosted, async {
        for component in COMPONENTS {
            let selector = format!("k8s-app={component}");
            let min = if component == "kube-apiserver" { controllers } else { 1 };
            let what = format!("self-hosted {component} pods to be Ready");
            match api
                .waiter
                .until(deadline, &what, api.waiter.pods_ready("kube-system", &selector, min))
                .await
            {
                Ok(pods) => {
                    let images: BTreeSet<String> = pods
                        .iter()
                        .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
                        .map(|image| image.rsplit_once(':').map_or(image.clone(), |(_, tag)| tag.to_owned()))
                        .collect();
                    versions.insert(component.to_owned(), images.into_iter().collect::<Vec<_>>().join(","));
                }
                Err(e) => {
                    return Err(PivotError::new(Phase::WaitForSelfHosted, chain(&e))
                        .with_evidence(diagnose(&api.waiter, &selector).await)
                        .with_evidence(host_pod_logs(&boot, component).await))
                }
            }
        }
        // Good answers alone can come from a process about to exit: the count of
        // restarts must hold still while they are given (design notes section 3).
        let restarts = || async {
            let what = "self-hosted kube-apiserver pods to be Ready";
            let pods = api
                .waiter
                .until(
                    deadline,
                    what,
                    api.waiter
                        .pods_ready("kube-system", "k8s-app=kube-apiserver", controllers),
                )
                .await
                .map_err(|e| PivotError::on(Phase::WaitForSelfHosted, boot.host(), chain(&e)))?;
            Ok::<i32, PivotError>(pods.iter().map(selfhosted_cluster::conditions::restart_count).sum())
        };
        loop {
            let before = restarts().await?;
            api.answered_by(self_hosted, params, "the self-hosted apiserver to answer by itself")
                .await
                .map_err(|e| PivotError::on(Phase::WaitForSelfHosted, boot.host(), e))?;
            let after = restarts().await?;
            if after == before {
                return Ok(());
            }
            tracing::info!(
                before,
                after,
                "the self-hosted apiserver restarted while it was confirmed; confirming again"
            );
        }
    })
    .await?;
    outcome.reached = Some(Phase::WaitForSelfHosted);

    phase::run(
        Phase::RemoveBootstrap,
        distribute::remove_bootstrap(&boot, assets, &params.paths),
    )
    .await?;
    outcome.reached = Some(Phase::RemoveBootstrap);

    outcome.versions = versions;
    phase::run(Phase::Verify, async {
        api.answered_by(self_hosted, params, "the API to answer from the self-hosted apiserver")
            .await
            .map_err(|e| PivotError::on(Phase::Verify, boot.host(), e))?;
        // The version the answering (self-hosted) apiserver reports of itself.
        if let Ok(info) = api.waiter.client().apiserver_version().await {
            outcome.versions.insert("kube-apiserver".to_owned(), info.git_version);
        }
        for lease in ["kube-controller-manager", "kube-scheduler"] {
            let what = format!("the {lease} lease to be held");
            api.waiter
                .until(
                    deadline,
                    &what,
                    api.waiter.lease_held("kube-system", lease, LeaseHeld::default()),
                )
                .await
                .map_err(|e| PivotError::new(Phase::Verify, chain(&e)))?;
        }
        Ok(())
    })
    .await?;
    outcome.reached = Some(Phase::Verify);
    Ok(())
}

/// Evidence from the API about a component's pods.
async fn diagnose(waiter: &Waiter, selector: &str) -> String {
    match selfhosted_cluster::diagnose::collect_evidence(waiter.client(), "kube-system", selector).await {
        Ok(evidence) => evidence.to_string(),
        Err(e) => format!("could not collect evidence for {selector}: {}", chain(&e)),
    }
}
