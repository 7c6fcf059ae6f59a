//! Test support shared by the workspace's crates, kept free of dependencies so that a crate's
//! tests can use it without pulling in the SSH stack or anything else.

use std::path::Path;

/// A test that cannot run here: under CI (`CI=true`) it fails, since in CI every test runs or
/// fails; elsewhere it says loudly that it skipped, records it in the file that
/// `SELFHOSTED_SKIP_LOG` names (`scripts/test.sh` counts and lists them after the run, where
/// nextest's summary would show them as passed), and the caller returns.
///
/// # Panics
/// Under CI.
pub fn skip_or_fail(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run: {why}; under CI every test runs or fails");
    }
    eprintln!("\n*** SKIPPED {test}: {why}. ***\n");
    if let Some(log) = std::env::var_os("SELFHOSTED_SKIP_LOG") {
        if let Err(e) = record_skip(Path::new(&log), test, why) {
            eprintln!("*** cannot record the skip in {}: {e} ***", Path::new(&log).display());
        }
    }
}

/// Appends one `test: why` line to `log` (one write, so parallel tests do not interleave).
fn record_skip(log: &Path, test: &str, why: &str) -> std::io::Result<()> {
    use std::io::Write;
    let line = format!("{test}: {why}\n");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?
        .write_all(line.as_bytes())
}

/// `etcdctl` (API v3) against `endpoints` with the client certificate in `tls`
/// (`etcd-ca.crt`, `etcd-client.crt`, `etcd-client.key`, as the assets name them): whether it
/// succeeded, and what it printed.
///
/// # Panics
/// When `etcdctl` cannot be run at all.
pub fn etcdctl(endpoints: &str, tls: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoints])
        .arg("--cacert")
        .arg(tls.join("etcd-ca.crt"))
        .arg("--cert")
        .arg(tls.join("etcd-client.crt"))
        .arg("--key")
        .arg(tls.join("etcd-client.key"))
        .args(["--dial-timeout", "2s", "--command-timeout", "5s"])
        .args(args)
        .output()
        .expect("etcdctl (apt-get install etcd-client)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_recorded_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skipped");
        record_skip(&log, "a::one", "needs root").unwrap();
        record_skip(&log, "b::two", "no etcd").unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "a::one: needs root\nb::two: no etcd\n"
        );
    }
}
