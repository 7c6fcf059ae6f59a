//! The refresh of `selfhosted_bootstrap`: the state as kept, unless the user asked for host
//! checks (`check_hosts_on_refresh`). Then node secrets that are missing or changed on a host
//! clear `assets_sha256`, so the plan shows the update that delivers them again, and every
//! finding is a warning naming the host. Nothing found, or the hosts out of reach, never
//! removes the resource or fails the refresh.

use std::time::Duration;

use selfhosted_pivot::health;
use selfhosted_protocol::diagnostics::Diagnostics;
use selfhosted_protocol::value::Value;
use selfhosted_transport::CancellationToken;

use super::inputs::Config;
use super::schema::attr;

/// How long a refresh may spend on the hosts (SSH connections, file digests, etcd status).
const CHECK_WITHIN: Duration = Duration::from_secs(90);

const SUMMARY: &str = "selfhosted_bootstrap: the hosts differ from the last apply";

/// The refreshed state and what the checks found.
pub(super) async fn check_hosts(state: &Value, cancel: &CancellationToken) -> (Value, Diagnostics) {
    let mut diags = Diagnostics::new();
    let asked = state.get(attr::CHECK_HOSTS_ON_REFRESH).and_then(Value::as_bool) == Some(true);
    let pivoted = state
        .get(attr::APPLIED_DIGEST)
        .and_then(Value::as_str)
        .is_some_and(|d| !d.is_empty());
    if !asked || !pivoted {
        return (state.clone(), diags);
    }
    let cannot = |why: String| {
        let mut d = Diagnostics::new();
        d.warning(
            "selfhosted_bootstrap: the hosts were not checked",
            format!("check_hosts_on_refresh: {why}. The plan goes on from the state as kept."),
        );
        d
    };
    let config = match Config::read(state, &super::learned_of(state)) {
        Ok(Some(c)) => c,
        Ok(None) => return (state.clone(), cannot("the state holds unknown values".into())),
        Err(d) => return (state.clone(), cannot(format!("the state cannot be read: {d:?}"))),
    };
    let checked = tokio::time::timeout(
        CHECK_WITHIN,
        health::check(
            &config.inventory,
            &config.assets,
            &config.paths,
            super::api_port(&config.assets),
            cancel,
        ),
    )
    .await;
    let findings = match checked {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return (state.clone(), cannot(e.detail())),
        Err(_) => {
            return (
                state.clone(),
                cannot(format!("not done within {}s", CHECK_WITHIN.as_secs())),
            )
        }
    };
    let mut new_state = state.clone();
    if findings.iter().any(|f| f.update_fixes) {
        // As after a failed apply: the next plan converges again.
        new_state.set_attr(attr::ASSETS_SHA256, Value::from(""));
    }
    if !findings.is_empty() {
        let detail = findings
            .iter()
            .map(|f| format!("- {}: {}", f.host, f.what))
            .collect::<Vec<_>>()
            .join("\n");
        diags.warning(SUMMARY, detail);
    }
    (new_state, diags)
}
