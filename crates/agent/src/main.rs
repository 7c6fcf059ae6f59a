//! `selfhosted-agent`: the command the rendered pods run. See the library for what each
//! subcommand does.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::signal::unix::{signal, SignalKind};

use selfhosted_agent::approver::{self, ApproverParams};
use selfhosted_agent::gate::{self, GateParams};
use selfhosted_agent::recovery::{self, HandBackParams, Prober, Rearm};
use selfhosted_agent::stop::Stop;

const USAGE: &str = "usage: selfhosted-agent gate --port PORT [--address BIND_ADDRESS]
       selfhosted-agent cut-over --port PORT [--address BIND_ADDRESS]
       selfhosted-agent standby --port PORT
       selfhosted-agent hand-back --port PORT --ca CA_PEM --name COMMON_NAME --manifest STATIC_POD_FILE --via IP [--via IP ...]
       selfhosted-agent approve-csrs --workers-group GROUP --controller-label LABEL --controller-names NAMESPACE/CONFIGMAP

gate       attach the reuseport gate to the apiservers' shared port: until the oldest apiserver
           leaves, it takes every connection except those to the loopback address, which reach the
           newest. Never fails the pod: when the gate cannot be attached it says why and exits 0.
cut-over   send every new connection on the shared port to the newest apiserver (once it is
           confirmed serving, before the oldest is stopped). Exits 1 when it cannot.
standby    wait until no apiserver listens on PORT (the recovery apiserver's first init container).
           SIGTERM or SIGINT ends standby, hand-back and approve-csrs at once (standby with 143 or
           130, so the pod never goes on to start the recovery apiserver).
hand-back  wait until the self-hosted apiserver (a certificate that CA_PEM issued to COMMON_NAME,
           both read anew each round) answers /readyz with 200 on one of the --via addresses
           in every round for 15 s (at least five answers) while the sockets listening on PORT
           stay the same (a restart anew: the count starts again), then give the recovery
           static pod in STATIC_POD_FILE a new round so the kubelet replaces it with one that
           stands by.
approve-csrs
           with the pod's service account, approve the kubelet client certificate requests made
           by GROUP (the workers' bootstrap token) for nodes that are not controllers, and deny
           those that name a controller (a node with LABEL, or a name in the ConfigMap's `names`).";

/// Pause between looks of `standby` and rounds of `hand-back`.
const POLL: Duration = Duration::from_secs(1);
/// How long the hand-back's good answers must span, with no listener on the port restarting.
const STEADY: Duration = Duration::from_secs(15);
/// Pause before a failed hand-back step is tried again.
const RETRY: Duration = Duration::from_secs(10);

enum Command {
    Gate(GateParams),
    CutOver(GateParams),
    Standby {
        port: u16,
    },
    HandBack {
        params: HandBackParams,
        ca: PathBuf,
        name: String,
        manifest: PathBuf,
    },
    Approve(ApproverParams),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(Command::Gate(params)) => {
            match gate::attach(&params) {
                Ok(attached) => println!("selfhosted-agent: {attached}"),
                // An apiserver without the gate still starts; it may then take connections early.
                Err(e) => println!("selfhosted-agent: gate not attached: {e}"),
            }
            ExitCode::SUCCESS
        }
        Ok(Command::CutOver(params)) => match gate::cut_over(&params) {
            Ok(done) => {
                println!("selfhosted-agent: {done}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("selfhosted-agent: cut-over failed: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(Command::Standby { port }) => {
            let stop = signals();
            if recovery::standby(port, 3, POLL, &stop) {
                ExitCode::SUCCESS
            } else {
                stopped(&stop)
            }
        }
        Ok(Command::HandBack {
            params,
            ca,
            name,
            manifest,
        }) => {
            let stop = signals();
            hand_back(&params, &ca, &name, &manifest, &stop);
            stopped(&stop)
        }
        Ok(Command::Approve(params)) => approve(&params),
        Err(message) => {
            eprintln!("selfhosted-agent: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The stop of a long-running subcommand: `SIGTERM` (the kubelet stopping the pod) or `SIGINT`.
/// Taken before any other thread starts, so that every thread has both signals blocked.
fn signals() -> Stop {
    Stop::on_signals().unwrap_or_else(|e| {
        println!("selfhosted-agent: signals not taken ({e}); the kubelet's SIGKILL ends this process");
        Stop::new()
    })
}

/// The exit of a subcommand that `stop` ended: 128 + the signal, as a shell reports it.
fn stopped(stop: &Stop) -> ExitCode {
    let reason = stop.reason().unwrap_or_default();
    println!("selfhosted-agent: {reason}: stopping");
    ExitCode::from(if reason == "SIGINT" { 130 } else { 143 })
}

/// Runs until the kubelet stops the pod (`stop`): a failed step is said and tried again,
/// since the recovery apiserver keeps serving meanwhile.
fn hand_back(params: &HandBackParams, ca: &std::path::Path, name: &str, manifest: &std::path::Path, stop: &Stop) {
    let Some(via) = recovery::await_self_hosted(|| Prober::from_ca_file(ca, name), params, stop) else {
        return;
    };
    println!("selfhosted-agent: the self-hosted apiserver serves by itself (through {via}); handing back");
    // Reached through the route to the newest listener: it joined after this recovery
    // apiserver, which still takes every client. Move them before this pod stops.
    if gate::newest_via(None).routes(via) {
        match gate::cut_over(&GateParams {
            port: params.port,
            address: None,
        }) {
            Ok(done) => println!("selfhosted-agent: {done}"),
            Err(e) => println!("selfhosted-agent: cut-over failed (clients move when this apiserver stops): {e}"),
        }
    }
    while !stop.is_stopped() {
        let round = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match recovery::rearm(manifest, round) {
            Ok(Rearm::Rearmed) => println!(
                "selfhosted-agent: {} rearmed (round {round}); the kubelet replaces this pod",
                manifest.display()
            ),
            Ok(Rearm::Superseded) => println!(
                "selfhosted-agent: {} changed while it was rearmed (the provider wrote a new one); left as it is, the kubelet replaces this pod with it",
                manifest.display()
            ),
            Err(e) => println!("selfhosted-agent: {e}"),
        }
        stop.sleep(RETRY);
    }
}

/// Runs until the pod stops; exits 1 when the API cannot be reached at all (the kubelet
/// restarts the container, with back-off).
fn approve(params: &ApproverParams) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            println!("selfhosted-agent: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        // Taken first, so that the kubelet's SIGTERM also ends a start that waits on the API.
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM not taken: {e}"))?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT not taken: {e}"))?;
        let run = async {
            let config = kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?;
            let client = kube::Client::try_from(config).map_err(|e| format!("API client: {e}"))?;
            println!(
                "selfhosted-agent: approving kubelet client certificates requested by {} for nodes that are not controllers",
                params.workers_group
            );
            approver::run(client, params).await.map_err(|e| e.to_string())
        };
        tokio::select! {
            r = run => r.map(|()| None),
            _ = term.recv() => Ok(Some(143)),
            _ = interrupt.recv() => Ok(Some(130)),
        }
    });
    match outcome {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(code)) => {
            println!("selfhosted-agent: approver stopped by a signal");
            ExitCode::from(code)
        }
        Err(e) => {
            println!("selfhosted-agent: approver stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Command, String> {
    let (command, rest) = args.split_first().ok_or("no command given")?;
    let mut port = None;
    let mut address = None;
    let mut ca = None;
    let mut name = None;
    let mut manifest = None;
    let mut via = Vec::new();
    let (mut workers_group, mut controller_label, mut controller_names) = (None, None, None);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let ip = || -> Result<IpAddr, String> { value.parse().map_err(|e| format!("{flag} {value:?}: {e}")) };
        match (command.as_str(), flag.as_str()) {
            (_, "--port") => port = Some(value.parse::<u16>().map_err(|e| format!("--port {value:?}: {e}"))?),
            ("gate" | "cut-over", "--address") => {
                // The apiserver's default wildcard is a dual-stack listener; so is the gate's.
                address = Some(ip()?).filter(|ip| !ip.is_unspecified());
            }
            ("hand-back", "--ca") => ca = Some(PathBuf::from(value)),
            ("hand-back", "--name") => name = Some(value.clone()),
            ("hand-back", "--manifest") => manifest = Some(PathBuf::from(value)),
            ("hand-back", "--via") => via.push(ip()?),
            ("approve-csrs", "--workers-group") => workers_group = Some(value.clone()),
            ("approve-csrs", "--controller-label") => controller_label = Some(value.clone()),
            ("approve-csrs", "--controller-names") => {
                let (ns, name) = value
                    .split_once('/')
                    .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
                    .ok_or_else(|| format!("--controller-names {value:?}: write NAMESPACE/NAME"))?;
                controller_names = Some((ns.to_owned(), name.to_owned()));
            }
            _ => return Err(format!("unknown flag {flag:?} for {command:?}")),
        }
    }
    if command == "approve-csrs" {
        return Ok(Command::Approve(ApproverParams {
            workers_group: workers_group.ok_or("--workers-group is required")?,
            controller_label: controller_label.ok_or("--controller-label is required")?,
            controller_names: controller_names.ok_or("--controller-names is required")?,
        }));
    }
    let port = port.ok_or("--port is required")?;
    match command.as_str() {
        "gate" => Ok(Command::Gate(GateParams { port, address })),
        "cut-over" => Ok(Command::CutOver(GateParams { port, address })),
        "standby" => Ok(Command::Standby { port }),
        "hand-back" => {
            if via.is_empty() {
                return Err("--via is required at least once".into());
            }
            Ok(Command::HandBack {
                params: HandBackParams {
                    port,
                    via,
                    answers: 5,
                    steady: STEADY,
                    poll: POLL,
                },
                ca: ca.ok_or("--ca is required")?,
                name: name.ok_or("--name is required")?,
                manifest: manifest.ok_or("--manifest is required")?,
            })
        }
        _ => Err(format!("unknown command {command:?}")),
    }
}
