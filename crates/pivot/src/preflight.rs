//! Preflight: before anything changes on any host, every host must be
//! reachable (host keys verified), sudo must work without a password, and a
//! kubelet must be installed. All hosts are checked in parallel and every
//! failure is reported at once.

use selfhosted_transport::{CancellationToken, Fleet, FleetError, LearnedHostKey, Session};

use crate::inventory::{Inventory, Role};
use crate::phase::{chain, Phase, PivotError};

/// How many hosts are worked on at once.
pub const CONCURRENCY: usize = 32;

/// What preflight learned about one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Host name.
    pub name: String,
    /// The user etcd runs as, if the host has typhoon's `etcd` user.
    pub etcd_user: Option<String>,
    /// The SSH user's account, read when the provider keeps its authorized keys.
    pub account: Option<Account>,
}

/// The SSH user's account on a host: where its authorized keys live and who owns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// User name.
    pub user: String,
    /// Primary group name.
    pub group: String,
    /// Home directory.
    pub home: String,
    /// Whether `~/.ssh/authorized_keys.d` exists (Fedora CoreOS' and Flatcar's keys, one file
    /// per source).
    pub key_dir: bool,
}

/// Prints the lines [`Account`] is read from.
const ACCOUNT_PROBE: &str =
    "id -un && id -gn && printf '%s\\n' ~ && if test -d ~/.ssh/authorized_keys.d; then echo dir; else echo none; fi";

async fn account(session: &Session) -> Result<Account, String> {
    let out = session.run(ACCOUNT_PROBE).await.map_err(|e| chain(&e))?;
    let text = out.stdout_text();
    match (out.is_success(), text.lines().collect::<Vec<_>>().as_slice()) {
        (true, [user, group, home, dir]) if home.starts_with('/') => Ok(Account {
            user: (*user).to_owned(),
            group: (*group).to_owned(),
            home: (*home).to_owned(),
            key_dir: *dir == "dir",
        }),
        _ => Err(format!(
            "cannot read the SSH user's account (name, group, home) for ssh.authorized_keys: {:?} {}",
            text.trim(),
            out.stderr_tail().trim()
        )),
    }
}

/// Connected hosts, ready for the next phases.
#[derive(Debug)]
pub struct Ready {
    /// One session per host, in inventory order.
    pub fleet: Fleet,
    /// Host keys accepted on first use, to keep and pin.
    pub learned: Vec<LearnedHostKey>,
    /// Per host, in inventory order.
    pub facts: Vec<HostFacts>,
}

/// Where a kubelet may be: a binary on the PATH or in the usual places, or a
/// systemd unit (Fedora CoreOS runs it from a container image via a unit).
const KUBELET_PROBE: &str = "command -v kubelet >/dev/null 2>&1 \
    || test -x /usr/local/bin/kubelet || test -x /usr/bin/kubelet || test -x /opt/bin/kubelet \
    || systemctl cat kubelet.service >/dev/null 2>&1 \
    || { echo 'no kubelet binary (PATH, /usr/local/bin, /usr/bin, /opt/bin) and no kubelet.service unit' >&2; exit 3; }";

async fn check(session: Session, role: Role, keys_kept: bool) -> Result<HostFacts, String> {
    let name = session.host().to_owned();
    session
        .sudo("true")
        .await
        .map_err(|e| format!("sudo does not work without a password: {}", chain(&e)))?;
    let kubelet = session.run(KUBELET_PROBE).await.map_err(|e| chain(&e))?;
    if !kubelet.is_success() {
        return Err(format!(
            "no kubelet installed ({}); the host's OS config must install one (see the `node` attribute of selfhosted_cluster_assets)",
            kubelet.stderr_tail().trim()
        ));
    }
    let etcd_user = match role {
        Role::Controller => session
            .run("id -u etcd >/dev/null 2>&1 && echo etcd")
            .await
            .ok()
            .filter(|o| o.is_success())
            .map(|o| o.stdout_text().trim().to_owned())
            .filter(|s| !s.is_empty()),
        Role::Worker => None,
    };
    let account = if keys_kept {
        Some(account(&session).await?)
    } else {
        None
    };
    Ok(HostFacts {
        name,
        etcd_user,
        account,
    })
}

/// Connects every host and checks it; fails, naming each bad host, before
/// anything is changed anywhere.
///
/// # Errors
/// [`PivotError`] of [`Phase::Preflight`] listing every host that failed and why.
pub async fn preflight(inventory: &Inventory, cancel: &CancellationToken) -> Result<Ready, PivotError> {
    let specs: Vec<_> = inventory.hosts().iter().map(|h| h.ssh.clone()).collect();
    let (fleet, learned) = Fleet::connect_all(&specs, CONCURRENCY, cancel)
        .await
        .map_err(|e| match e {
            FleetError::Connect { failed, total } => {
                let mut err = PivotError::new(
                    Phase::Preflight,
                    format!(
                        "{} of {total} hosts cannot be reached; nothing was changed on any host",
                        failed.len()
                    ),
                );
                if let [one] = failed.as_slice() {
                    err.host = Some(one.to_string().split(':').next().unwrap_or_default().trim().to_owned());
                }
                for f in &failed {
                    err = err.with_evidence(chain(f));
                }
                err
            }
            FleetError::Cancelled => PivotError::new(Phase::Preflight, "cancelled"),
        })?;
    let results = fleet
        .for_each(cancel, |s| {
            let role = inventory
                .hosts()
                .iter()
                .find(|h| h.ssh.host.name == s.host())
                .map_or(Role::Worker, |h| h.role);
            check(s, role, inventory.authorized_keys().is_some())
        })
        .await
        .map_err(|_| PivotError::new(Phase::Preflight, "cancelled"))?;
    let mut facts = Vec::new();
    let mut failed = Vec::new();
    for (name, r) in results {
        match r {
            Ok(f) => facts.push(f),
            Err(why) => failed.push((name, why)),
        }
    }
    if !failed.is_empty() {
        fleet.close().await;
        let mut err = PivotError::new(
            Phase::Preflight,
            format!(
                "{} of {} hosts failed the checks; nothing was changed on any host",
                failed.len(),
                inventory.hosts().len()
            ),
        );
        if let [(one, _)] = failed.as_slice() {
            err.host = Some(one.clone());
        }
        for (name, why) in failed {
            err = err.with_evidence(format!("{name}: {why}"));
        }
        return Err(err);
    }
    Ok(Ready { fleet, learned, facts })
}
