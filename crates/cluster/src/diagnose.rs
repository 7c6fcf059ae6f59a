//! Evidence for a failure: for a component's pods, their phase, conditions, container states
//! (waiting/terminated reasons, restart counts, last termination message), recent Events and
//! the tail of each container's current and previous log — formatted as text for a Terraform
//! diagnostic. Never just "timed out".
//!
//! Collecting is best effort: a part that cannot be read (e.g. the log of a container that never
//! started) is reported as such, and the rest is still shown.

use std::fmt::{self, Write as _};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

/// How many log lines per container, and how many events per pod, are kept.
pub const LOG_TAIL_LINES: i64 = 40;
/// How many recent events per pod are kept.
pub const EVENTS_PER_POD: usize = 10;

/// What stands in for the log of a container that never started.
pub const NOT_STARTED: &str = "the container has not started (no log yet)";

/// Why no evidence could be collected at all.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    /// Listing the component's pods failed (the API itself is the problem).
    #[error("listing pods {selector:?} in {namespace}: {message}")]
    ListPods {
        /// The namespace.
        namespace: String,
        /// The label selector.
        selector: String,
        /// The API's message.
        message: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
}

/// One container log tail, or why it could not be read.
#[derive(Debug, Clone)]
pub struct ContainerLog {
    /// The container.
    pub container: String,
    /// The previous (terminated) instance's log rather than the current one.
    pub previous: bool,
    /// The last lines, or the error reading them.
    pub text: Result<String, String>,
}

/// What is known about one pod.
#[derive(Debug, Clone)]
pub struct PodEvidence {
    /// The pod as the API reports it.
    pub pod: Pod,
    /// Its most recent events, oldest first; `Err` when they could not be listed.
    pub events: Result<Vec<Event>, String>,
    /// Log tails.
    pub logs: Vec<ContainerLog>,
}

/// Evidence for one component (label selector in a namespace).
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The namespace.
    pub namespace: String,
    /// The label selector.
    pub selector: String,
    /// Every matching pod.
    pub pods: Vec<PodEvidence>,
}

/// Collect evidence for the pods matching `selector` in `namespace`.
pub async fn collect_evidence(client: &Client, namespace: &str, selector: &str) -> Result<Evidence, DiagnoseError> {
    collect(client, namespace, selector, ListParams::default().labels(selector)).await
}

/// [`collect_evidence`] for the pods bound to `node` alone.
pub async fn collect_evidence_on(
    client: &Client,
    namespace: &str,
    selector: &str,
    node: &str,
) -> Result<Evidence, DiagnoseError> {
    let list = ListParams::default()
        .labels(selector)
        .fields(&format!("spec.nodeName={node}"));
    collect(client, namespace, selector, list).await
}

async fn collect(
    client: &Client,
    namespace: &str,
    selector: &str,
    list: ListParams,
) -> Result<Evidence, DiagnoseError> {
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let events_api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = pods_api.list(&list).await.map_err(|source| DiagnoseError::ListPods {
        namespace: namespace.to_owned(),
        selector: selector.to_owned(),
        message: crate::retry::api_message(&source),
        source: Box::new(source),
    })?;
    let mut pods = Vec::new();
    for pod in list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let events = events_api
            .list(&ListParams::default().fields(&format!("involvedObject.kind=Pod,involvedObject.name={name}")))
            .await
            .map(|l| recent_events(l.items, EVENTS_PER_POD))
            .map_err(|e| crate::retry::api_message(&e));
        let mut logs = Vec::new();
        for (container, previous) in log_targets(&pod) {
            let Some(previous) = previous else {
                logs.push(ContainerLog {
                    container,
                    previous: false,
                    text: Err(NOT_STARTED.to_owned()),
                });
                continue;
            };
            let params = LogParams {
                container: Some(container.clone()),
                previous,
                tail_lines: Some(LOG_TAIL_LINES),
                ..LogParams::default()
            };
            let text = pods_api
                .logs(&name, &params)
                .await
                .map_err(|e| crate::retry::api_message(&e));
            logs.push(ContainerLog {
                container,
                previous,
                text,
            });
        }
        pods.push(PodEvidence { pod, events, logs });
    }
    Ok(Evidence {
        namespace: namespace.to_owned(),
        selector: selector.to_owned(),
        pods,
    })
}

/// Which logs to read: the current log of every container that has started, and the previous
/// one when it restarted or last terminated. `None`: the container never started (no log).
fn log_targets(pod: &Pod) -> Vec<(String, Option<bool>)> {
    let mut out = Vec::new();
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let containers: Vec<String> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    for c in containers {
        let st = statuses.iter().find(|s| s.name == c);
        let started = st.is_some_and(|s| {
            s.restart_count > 0
                || s.state
                    .as_ref()
                    .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
                || s.last_state.as_ref().is_some_and(|l| l.terminated.is_some())
        });
        let restarted =
            st.is_some_and(|s| s.restart_count > 0 || s.last_state.as_ref().is_some_and(|l| l.terminated.is_some()));
        if !started {
            out.push((c, None));
            continue;
        }
        out.push((c.clone(), Some(false)));
        if restarted {
            out.push((c, Some(true)));
        }
    }
    out
}

/// The `n` most recent events, oldest first.
fn recent_events(mut events: Vec<Event>, n: usize) -> Vec<Event> {
    events.sort_by_key(event_time);
    let skip = events.len().saturating_sub(n);
    events.into_iter().skip(skip).collect()
}

fn event_time(e: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn indent(out: &mut String, text: &str, prefix: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{prefix}{line}");
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pods.is_empty() {
            return writeln!(f, "no pod matches {:?} in namespace {}", self.selector, self.namespace);
        }
        for p in &self.pods {
            f.write_str(&format_pod(p, &self.namespace))?;
        }
        Ok(())
    }
}

fn format_pod(p: &PodEvidence, namespace: &str) -> String {
    let mut out = String::new();
    let pod = &p.pod;
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("(not scheduled)");
    let _ = writeln!(
        out,
        "pod {namespace}/{name} on {node}: phase {}{}",
        status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown"),
        status
            .and_then(|s| s.reason.as_deref())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    if let Some(m) = status.and_then(|s| s.message.as_deref()) {
        let _ = writeln!(out, "  message: {m}");
    }
    for c in status.and_then(|s| s.conditions.as_ref()).into_iter().flatten() {
        let _ = writeln!(
            out,
            "  condition {}={}{}{}",
            c.type_,
            c.status,
            c.reason.as_deref().map(|r| format!(" {r}")).unwrap_or_default(),
            c.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        );
    }
    for c in status.and_then(|s| s.container_statuses.as_ref()).into_iter().flatten() {
        let state = c.state.as_ref();
        let now = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            format!(
                "waiting: {}{}",
                w.reason.as_deref().unwrap_or("?"),
                w.message.as_deref().map(|m| format!(" — {m}")).unwrap_or_default()
            )
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            format!(
                "terminated: {} (exit {})",
                t.reason.as_deref().unwrap_or("?"),
                t.exit_code
            )
        } else if state.and_then(|s| s.running.as_ref()).is_some() {
            "running".to_owned()
        } else {
            "state unknown".to_owned()
        };
        let _ = writeln!(
            out,
            "  container {}: {now}, ready={}, restarts={}",
            c.name, c.ready, c.restart_count
        );
        if let Some(t) = c.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            let _ = writeln!(
                out,
                "    last terminated: {} (exit {}){}",
                t.reason.as_deref().unwrap_or("?"),
                t.exit_code,
                t.finished_at
                    .as_ref()
                    .map(|a| format!(" at {}", a.0))
                    .unwrap_or_default()
            );
            if let Some(m) = t.message.as_deref().filter(|m| !m.trim().is_empty()) {
                let _ = writeln!(out, "    last termination message:");
                indent(&mut out, m.trim_end(), "      ");
            }
        }
    }
    match &p.events {
        Ok(events) if events.is_empty() => {
            let _ = writeln!(out, "  events: none");
        }
        Ok(events) => {
            let _ = writeln!(out, "  events (most recent last):");
            for e in events {
                let count = e
                    .count
                    .filter(|c| *c > 1)
                    .map(|c| format!(" (x{c})"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    {} {}: {}{count}",
                    e.type_.as_deref().unwrap_or("Normal"),
                    e.reason.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or("").trim()
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  events: could not be listed: {e}");
        }
    }
    for l in &p.logs {
        let which = if l.previous { "previous" } else { "current" };
        match &l.text {
            Ok(t) if t.trim().is_empty() => {
                let _ = writeln!(out, "  log of {} ({which}): empty", l.container);
            }
            Ok(t) => {
                let _ = writeln!(out, "  log of {} ({which}), last {LOG_TAIL_LINES} lines:", l.container);
                indent(&mut out, t.trim_end(), "    | ");
            }
            Err(e) => {
                let _ = writeln!(out, "  log of {} ({which}): unavailable: {e}", l.container);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crashing_pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "kube-apiserver-c0", "namespace": "kube-system"},
            "spec": {"nodeName": "c0", "containers": [{"name": "kube-apiserver"}]},
            "status": {"phase": "Running",
              "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                              "message": "containers with unready status: [kube-apiserver]"}],
              "containerStatuses": [{"name": "kube-apiserver", "ready": false, "restartCount": 3, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                   "message": "Error: unknown flag: --bogus\n"}}}]}
        }))
        .unwrap()
    }

    fn event(reason: &str, message: &str, at: &str) -> Event {
        serde_json::from_value(json!({"metadata": {"name": reason}, "involvedObject": {},
            "type": "Warning", "reason": reason, "message": message, "lastTimestamp": at, "count": 2}))
        .unwrap()
    }

    #[test]
    fn a_crash_loop_reads_as_evidence() {
        let pod = crashing_pod();
        assert_eq!(
            log_targets(&pod),
            vec![
                ("kube-apiserver".into(), Some(false)),
                ("kube-apiserver".into(), Some(true))
            ]
        );
        let mut pending = pod.clone();
        pending.status = None;
        assert_eq!(log_targets(&pending), vec![("kube-apiserver".into(), None)]);
        let ev = Evidence {
            namespace: "kube-system".into(),
            selector: "k8s-app=kube-apiserver".into(),
            pods: vec![PodEvidence {
                pod,
                events: Ok(vec![event(
                    "BackOff",
                    "Back-off restarting failed container",
                    "2026-01-01T00:00:10Z",
                )]),
                logs: vec![
                    ContainerLog {
                        container: "kube-apiserver".into(),
                        previous: false,
                        text: Err("container is waiting".into()),
                    },
                    ContainerLog {
                        container: "kube-apiserver".into(),
                        previous: true,
                        text: Ok("I0101 start\nError: unknown flag: --bogus\n".into()),
                    },
                ],
            }],
        };
        let text = ev.to_string();
        for want in [
            "pod kube-system/kube-apiserver-c0 on c0: phase Running",
            "condition Ready=False ContainersNotReady",
            "container kube-apiserver: waiting: CrashLoopBackOff",
            "restarts=3",
            "last terminated: Error (exit 1)",
            "      Error: unknown flag: --bogus",
            "Warning BackOff: Back-off restarting failed container (x2)",
            "log of kube-apiserver (current): unavailable: container is waiting",
            "log of kube-apiserver (previous), last 40 lines:",
            "    | Error: unknown flag: --bogus",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn no_pods_says_so() {
        let ev = Evidence {
            namespace: "kube-system".into(),
            selector: "k8s-app=x".into(),
            pods: vec![],
        };
        assert_eq!(
            ev.to_string(),
            "no pod matches \"k8s-app=x\" in namespace kube-system\n"
        );
    }

    #[test]
    fn only_the_most_recent_events_are_kept_in_order() {
        let evs = vec![
            event("c", "", "2026-01-01T00:00:03Z"),
            event("a", "", "2026-01-01T00:00:01Z"),
            event("b", "", "2026-01-01T00:00:02Z"),
        ];
        let kept: Vec<_> = recent_events(evs, 2).into_iter().map(|e| e.reason.unwrap()).collect();
        assert_eq!(kept, ["b", "c"]);
    }
}
