//! etcd follows the contract's image: once an update has moved the control plane and the
//! kubelets, each controller whose etcd runs from an image (Fedora CoreOS, Flatcar) and
//! reports another release than the contract's etcd image (a `kubernetes_version` change,
//! whose minor names its own etcd, or `container_images["etcd"]`) moves to it, one member at
//! a time, the leader last: every other member answering with a leader first, `ETCD_IMAGE`
//! set in the host's `image.env` and etcd restarted on its data, the member awaited back with
//! a leader at the new release before the next. etcd goes one minor at a time and never back
//! a minor; a step it would refuse is refused here before any member moves. Generic hosts run
//! their own etcd binary and are left alone. A rerun finds the members already moved.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_etcd::{Credentials, Status};
use selfhosted_manifests::host::etcd::ETCD_IMAGE_ENV_PATH;
use selfhosted_manifests::host::units;
use selfhosted_transport::Session;
use tokio::time::Instant;

use crate::etcd_members::env_value;
use crate::etcd_snapshot::{await_member, credentials, member_status};
use crate::phase::{chain, Phase, PivotError};
use crate::procedure::Warning;

const PHASE: Phase = Phase::Etcd;

/// The contract's etcd service in the assets.
const UNIT_ASSET: &str = "node/etcd-member.service";

/// Where Ignition writes the etcd service on a controller: a unit from an older contract names
/// its image itself and cannot be moved by `image.env`.
const HOST_UNIT: &str = "/etc/systemd/system/etcd-member.service";

/// How long a restarted member may take to answer with a leader at its new release (an image
/// pull included).
const BACK_WITHIN: Duration = Duration::from_secs(300);

/// Pause between looks at a restarted member.
const POLL: Duration = Duration::from_secs(2);

/// `major.minor` of an etcd release (`3.5.21` → `(3, 5)`).
fn minor_of(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The patch a minor must be at before the next minor, where etcd's upgrade guide names one
/// (3.5 → 3.6: releases before it can fail the move with "too many learner member" and
/// removed members coming back).
const LEAST_PATCH_BEFORE_NEXT_MINOR: &[((u32, u32), u32)] = &[((3, 5), 26)];

/// `major.minor.patch` of an etcd release.
fn patch_of(release: &str) -> Option<u32> {
    release.trim_start_matches('v').split('.').nth(2)?.parse().ok()
}

/// Whether etcd can go from `from` to `to` by a restart on the same data: a patch release
/// either way, or the next minor from a patch etcd's upgrade guide allows (etcd refuses to
/// skip a minor, and data of a newer minor). `Err` says why not and what to set instead.
fn step(from: &str, to: &str) -> Result<(), String> {
    let (Some(f), Some(t)) = (minor_of(from), minor_of(to)) else {
        return Err(format!("cannot tell the minors of {from} and {to}"));
    };
    if f == t {
        return Ok(());
    }
    if t < f {
        return Err(format!(
            "etcd {to} cannot run on data that etcd {from} wrote (a minor back needs etcd's own downgrade, \
             `etcdctl downgrade`)"
        ));
    }
    if t.0 != f.0 || t.1 != f.1 + 1 {
        return Err(format!(
            "etcd goes one minor at a time: {from} → {to} skips a minor. Set container_images[\"etcd\"] of \
             selfhosted_cluster_assets to a release of the minor in between (registry.k8s.io/etcd:{}.{}.N-0), \
             apply, then remove it",
            f.0,
            f.1 + 1
        ));
    }
    match LEAST_PATCH_BEFORE_NEXT_MINOR.iter().find(|(m, _)| *m == f) {
        Some((_, least)) if patch_of(from).is_some_and(|p| p < *least) => Err(format!(
            "etcd's upgrade guide asks for {}.{}.{least} or later before {}.{}: set container_images[\"etcd\"] of \
             selfhosted_cluster_assets to registry.k8s.io/etcd:{}.{}.{least}-0 (or a later patch), apply, then \
             the next minor",
            f.0, f.1, t.0, t.1, f.0, f.1
        )),
        _ => Ok(()),
    }
}

/// A member's answer, read now.
struct Member<'a> {
    session: &'a Session,
    status: Status,
}

/// The members in the order they move: followers first, the leader last (one election).
fn in_order<'a>(mut members: Vec<Member<'a>>) -> Vec<Member<'a>> {
    members.sort_by_key(|m| m.status.is_leader);
    members
}

/// The contract's etcd image; `None` where etcd is the host's own binary.
fn contract_image(assets: &BTreeMap<String, String>) -> Option<&str> {
    assets.get(UNIT_ASSET).and_then(|u| units::etcd_image_of(u))
}

/// The contract's etcd image and the release its tag names; `None` where etcd is the host's
/// own binary, or the tag names no release (a digest, `latest`): then etcd is left as it is.
fn target(assets: &BTreeMap<String, String>) -> Option<(&str, String)> {
    let image = contract_image(assets)?;
    units::etcd_image_release(image).map(|release| (image, release))
}

/// The members as they answer now: those with a leader, and why each other is silent.
struct Survey<'a> {
    answering: Vec<Member<'a>>,
    silent: Vec<(&'a Session, String)>,
}

async fn survey<'a>(controllers: &[&'a Session], creds: &Credentials) -> Survey<'a> {
    let mut out = Survey {
        answering: Vec::new(),
        silent: Vec::new(),
    };
    for session in controllers {
        match member_status(session, creds).await {
            Ok((_, status)) if status.has_leader => out.answering.push(Member { session, status }),
            Ok((_, status)) => out
                .silent
                .push((session, format!("member {} has no leader", status.member_id))),
            Err(why) => out.silent.push((session, why)),
        }
    }
    out
}

/// Refuses, before anything changes, an etcd move the members could not make: a step etcd
/// refuses (a skipped or backward minor, or a minor move from too old a patch), or a minor
/// move while some member's unit cannot take another image (it would stay a minor behind for
/// good). Run in the update's preflight, so a refused move leaves the control plane as it is.
///
/// # Errors
/// The refused step, naming the member and what to set instead.
pub(crate) async fn check(
    controllers: &[&Session],
    assets: &BTreeMap<String, String>,
    phase: Phase,
) -> Result<(), PivotError> {
    let Some((_, target)) = target(assets) else {
        return Ok(());
    };
    let creds = credentials(assets).map_err(|e| PivotError::new(phase, e.message))?;
    let behind: Vec<Member> = survey(controllers, &creds)
        .await
        .answering
        .into_iter()
        .filter(|m| m.status.version != target)
        .collect();
    refuse_steps(&behind, &target, phase).await
}

/// [`check`] of the members `behind`.
async fn refuse_steps(behind: &[Member<'_>], target: &str, phase: Phase) -> Result<(), PivotError> {
    let minor_move = behind.iter().any(|m| minor_of(&m.status.version) != minor_of(target));
    for m in behind {
        let host = m.session.host();
        step(&m.status.version, target).map_err(|why| {
            PivotError::on(
                phase,
                host,
                format!(
                    "its etcd member runs {}, and the contract's etcd image is {target}: {why}. Nothing was changed",
                    m.status.version
                ),
            )
        })?;
        if minor_move && !moves_by_image_file(m.session, phase).await? {
            return Err(PivotError::on(
                phase,
                host,
                format!(
                    "etcd is to move to {target}, another minor, but this controller's {HOST_UNIT} names its image \
                     itself (it booted from an older node contract), so its member would stay at {} while the others \
                     move: a cluster of two minors for good. Put node.etcd_unit of selfhosted_cluster_assets in its \
                     place (systemctl daemon-reload) or replace the machine, then apply again. Nothing was changed",
                    m.status.version
                ),
            ));
        }
    }
    Ok(())
}

/// Moves every controller's etcd that is not at the contract's image's release; returns what
/// the user should know about the members it could not move.
///
/// # Errors
/// A member that does not answer while another must move (nothing changed); a step etcd
/// refuses (nothing changed); a switch that fails; a member not back at the release in time,
/// with its last answer and etcd's log.
pub(crate) async fn follow(
    controllers: &[&Session],
    assets: &BTreeMap<String, String>,
    deadline: Instant,
) -> Result<Vec<Warning>, PivotError> {
    let Some((image, target)) = target(assets) else {
        if let Some(image) = contract_image(assets) {
            tracing::info!(
                phase = PHASE.name(),
                image,
                "the etcd image's tag names no release: etcd left as it is"
            );
        }
        return Ok(Vec::new());
    };
    let creds = credentials(assets).map_err(|e| PivotError::new(PHASE, e.message))?;
    let mut now = survey(controllers, &creds).await;
    if now.answering.iter().all(|m| m.status.version == target) && now.silent.is_empty() {
        return Ok(Vec::new());
    }
    if !now.silent.is_empty() && revive(&now, controllers.len(), image, &target, &creds, deadline).await? {
        now = survey(controllers, &creds).await;
    }
    let behind: Vec<Member> = now
        .answering
        .into_iter()
        .filter(|m| m.status.version != target)
        .collect();
    if behind.is_empty() {
        return Ok(Vec::new());
    }
    if !now.silent.is_empty() {
        let mut err = PivotError::new(
            PHASE,
            format!(
                "etcd moves to {target} one member at a time, and each restart needs every other member answering \
                 with a leader; {} not, so no member was moved. Bring them back (journalctl -u etcd-member on \
                 each), then apply again",
                if now.silent.len() == 1 { "one does" } else { "some do" }
            ),
        );
        for (session, why) in now.silent {
            err = err.with_evidence(format!("{}: {why}", session.host()));
        }
        return Err(err);
    }
    refuse_steps(&behind, &target, PHASE).await?;
    let mut old_units = Vec::new();
    for m in in_order(behind) {
        let host = m.session.host();
        if !moves_by_image_file(m.session, PHASE).await? {
            old_units.push(format!("- {host}: etcd {}", m.status.version));
            continue;
        }
        quorum_holds(controllers, m.session, &creds, &target).await?;
        tracing::info!(phase = PHASE.name(), host, from = %m.status.version, to = %target, "moving an etcd member");
        let started = std::time::Instant::now();
        switch(m.session, image).await?;
        back_at(m.session, &creds, &target, deadline.min(Instant::now() + BACK_WITHIN)).await?;
        tracing::info!(phase = PHASE.name(), host, version = %target, took = ?started.elapsed(), "etcd member moved");
    }
    let mut warnings = Vec::new();
    if !old_units.is_empty() {
        warnings.push(Warning {
            summary: "selfhosted_bootstrap: etcd members left at their release",
            detail: format!(
                "These controllers' {HOST_UNIT} names its image itself (they booted from an older node contract), \
                 so their etcd cannot move to {target} by {}. Replace the unit with node.etcd_unit of \
                 selfhosted_cluster_assets (systemctl daemon-reload) and apply again, or replace the machines one \
                 at a time:\n{}",
                ETCD_IMAGE_ENV_PATH,
                old_units.join("\n")
            ),
        });
    }
    Ok(warnings)
}

/// Sets `ETCD_IMAGE` on a controller and restarts its etcd.
async fn switch(session: &Session, image: &str) -> Result<(), PivotError> {
    session
        .sudo(&units::etcd_image_switch(image))
        .await
        .map(drop)
        .map_err(|e| {
            PivotError::on(
                PHASE,
                session.host(),
                format!(
                    "setting ETCD_IMAGE={image} in {ETCD_IMAGE_ENV_PATH} and restarting etcd: {}",
                    chain(&e)
                ),
            )
        })
}

/// A member an earlier apply moved to an image it cannot run (a typo of a tag, an image that
/// is gone) stays silent, and would block every later move: once the members that answer hold
/// quorum without it, each silent member whose `image.env` names another image than the
/// contract's is moved to the contract's (it is down already: its restart costs no vote) and
/// awaited back. Returns whether any was.
async fn revive(
    now: &Survey<'_>,
    members: usize,
    image: &str,
    target: &str,
    creds: &Credentials,
    deadline: Instant,
) -> Result<bool, PivotError> {
    if now.answering.len() < selfhosted_etcd::membership::quorum(members) {
        return Ok(false);
    }
    let mut revived = false;
    for (session, why) in &now.silent {
        let Some(named) = image_file(session).await? else {
            continue;
        };
        if named == image {
            continue;
        }
        tracing::warn!(phase = PHASE.name(), host = session.host(), named = %named, %why, "a silent etcd member runs another image: moving it to the contract's");
        switch(session, image).await?;
        back_at(session, creds, target, deadline.min(Instant::now() + BACK_WITHIN)).await?;
        revived = true;
    }
    Ok(revived)
}

/// The image a controller's `image.env` names, if it names one.
async fn image_file(session: &Session) -> Result<Option<String>, PivotError> {
    let out = session
        .sudo(&format!("cat {ETCD_IMAGE_ENV_PATH} 2>/dev/null || true"))
        .await
        .map_err(|e| {
            PivotError::on(
                PHASE,
                session.host(),
                format!("cannot read {ETCD_IMAGE_ENV_PATH}: {}", chain(&e)),
            )
        })?;
    Ok(env_value(&out.stdout_text(), "ETCD_IMAGE").map(str::to_owned))
}

/// Each answering controller's etcd release (host → version), for the state: the next plan's
/// preview compares against it. Empty when none answers (the state keeps the last apply's).
pub(crate) async fn versions(controllers: &[&Session], assets: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let Ok(creds) = credentials(assets) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for session in controllers {
        if let Ok((_, status)) = member_status(session, &creds).await {
            out.insert(session.host().to_owned(), status.version);
        }
    }
    out
}

/// What an update with `assets` will do with each controller's etcd, said for the plan, from
/// the releases the last apply recorded (`recorded`, by host): `None` when no member moves.
pub fn preview(
    assets: &BTreeMap<String, String>,
    controllers: &[String],
    recorded: &BTreeMap<String, String>,
) -> Option<String> {
    let (image, target) = target(assets)?;
    let mut moves = Vec::new();
    let mut refused = Vec::new();
    for host in controllers {
        let Some(from) = recorded.get(host).filter(|v| **v != target) else {
            continue;
        };
        match step(from, &target) {
            Ok(()) => moves.push(format!("- {host}: {from} → {target}")),
            Err(why) => refused.push(format!("- {host}: {from}: {why}")),
        }
    }
    let mut text = String::new();
    if !moves.is_empty() {
        text.push_str(&format!(
            "After the kubelets, the apply moves these etcd members to {image}, one at a time, the leader last (each \
             restarted on its data and awaited back with a leader):\n{}",
            moves.join("\n")
        ));
    }
    if !refused.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "The apply will stop before moving any etcd member:\n{}",
            refused.join("\n")
        ));
    }
    (!text.is_empty()).then_some(text)
}

/// Whether the host's etcd service takes its image from `ETCD_IMAGE` (or is not where
/// Ignition writes it, which the provider cannot tell apart: it tries).
async fn moves_by_image_file(session: &Session, phase: Phase) -> Result<bool, PivotError> {
    let out = session
        .sudo(&format!("cat {HOST_UNIT} 2>/dev/null || true"))
        .await
        .map_err(|e| PivotError::on(phase, session.host(), format!("cannot read {HOST_UNIT}: {}", chain(&e))))?;
    let unit = out.stdout_text();
    Ok(unit.trim().is_empty() || unit.contains("ETCD_IMAGE"))
}

/// Every member but `moving`'s answers with a leader, so that its restart keeps quorum.
async fn quorum_holds(
    controllers: &[&Session],
    moving: &Session,
    creds: &Credentials,
    target: &str,
) -> Result<(), PivotError> {
    for session in controllers.iter().filter(|s| s.host() != moving.host()) {
        let why = match member_status(session, creds).await {
            Ok((_, s)) if s.has_leader => continue,
            Ok((_, s)) => format!("member {} has no leader", s.member_id),
            Err(why) => why,
        };
        return Err(PivotError::on(
            PHASE,
            moving.host(),
            format!(
                "its etcd member was to move to {target} next, but the member on {} does not answer with a leader, \
                 and a restart now could lose quorum: nothing more was moved. Apply again once it answers",
                session.host()
            ),
        )
        .with_evidence(format!("{}: {why}", session.host())));
    }
    Ok(())
}

/// Waits until the member on `session`'s host answers with a leader at `target`.
async fn back_at(session: &Session, creds: &Credentials, target: &str, until: Instant) -> Result<(), PivotError> {
    let back = |s: &Status| {
        if s.has_leader && s.version == target {
            Ok(())
        } else {
            Err(format!(
                "member {} at {}, leader: {}",
                s.member_id, s.version, s.has_leader
            ))
        }
    };
    match await_member(session, creds, until, POLL, back).await {
        Ok(()) => Ok(()),
        Err(last) => Err(PivotError::on(
            PHASE,
            session.host(),
            format!(
                "etcd did not come back at {target} in time. Its etcd log tells why; fix the cause (or set \
                 container_images[\"etcd\"] back) and apply again"
            ),
        )
        .with_evidence(format!("last answer: {last}"))
        .with_evidence(crate::phase::journal_tail(session, "etcd-member.service", "etcd").await)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets(unit: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(UNIT_ASSET.to_owned(), unit.to_owned())])
    }

    #[test]
    fn the_plan_names_each_member_that_moves_and_each_step_etcd_refuses() {
        let a = assets("[Service]\nEnvironment=ETCD_IMAGE=registry.k8s.io/etcd:3.6.6-0\n");
        let hosts = ["c0".to_owned(), "c1".to_owned(), "c2".to_owned()];
        let recorded = BTreeMap::from([
            ("c0".to_owned(), "3.6.5".to_owned()),
            ("c1".to_owned(), "3.6.6".to_owned()),
            ("c2".to_owned(), "3.4.23".to_owned()),
        ]);
        let text = preview(&a, &hosts, &recorded).expect("a preview");
        assert!(text.contains("- c0: 3.6.5 → 3.6.6"), "{text}");
        assert!(!text.contains("c1"), "at the release already: {text}");
        assert!(text.contains("- c2: 3.4.23: etcd goes one minor at a time"), "{text}");
        let at = BTreeMap::from([("c0".to_owned(), "3.6.6".to_owned())]);
        assert_eq!(preview(&a, &hosts, &at), None);
        assert_eq!(
            preview(&a, &hosts, &BTreeMap::new()),
            None,
            "nothing recorded, nothing said"
        );
        let generic = assets("[Service]\nExecStart=/usr/bin/etcd\n");
        assert_eq!(preview(&generic, &hosts, &recorded), None, "a host's own etcd");
    }

    #[test]
    fn etcd_moves_a_patch_either_way_or_one_minor_up() {
        assert_eq!(step("3.6.5", "3.6.6"), Ok(()));
        assert_eq!(step("3.6.6", "3.6.5"), Ok(()));
        assert_eq!(step("3.4.23", "3.5.21"), Ok(()));
        assert_eq!(step("3.5.26", "3.6.5"), Ok(()));
        let early = step("3.5.21", "3.6.5").unwrap_err();
        assert!(early.contains("registry.k8s.io/etcd:3.5.26-0"), "{early}");
        let skip = step("3.4.23", "3.6.5").unwrap_err();
        assert!(skip.contains("registry.k8s.io/etcd:3.5.N-0"), "{skip}");
        let back = step("3.6.5", "3.5.21").unwrap_err();
        assert!(back.contains("downgrade"), "{back}");
        assert!(step("3.6.5", "4.0.0").is_err());
        assert!(step("main", "3.6.5").is_err());
    }
}
