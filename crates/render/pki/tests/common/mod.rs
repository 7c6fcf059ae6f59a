//! Shared helpers of the integration tests: params, a scratch folder with the
//! assets written out, and running real tools.
#![allow(dead_code, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use selfhosted_pki::{parse, Assets, PkiParams, RawParams};
use time::OffsetDateTime;

pub fn raw(api: &[&str], etcd: &[&str]) -> RawParams {
    RawParams {
        cluster_name: Some("demo".into()),
        api_servers: Some(api.iter().map(|s| s.to_string()).collect()),
        etcd_servers: Some(etcd.iter().map(|s| s.to_string()).collect()),
        ..RawParams::defaults()
    }
}

pub fn params(api: &[&str], etcd: &[&str]) -> PkiParams {
    parse(&raw(api, etcd)).expect("valid params")
}

pub fn default_params() -> PkiParams {
    params(
        &["api.demo.example", "10.0.0.5"],
        &["127.0.0.11", "127.0.0.12", "127.0.0.13"],
    )
}

/// A fixed `now` so runs compare (2026-01-01).
pub fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 00:00 UTC)
}

pub fn write_assets(dir: &Path, assets: &Assets) {
    for (path, content) in assets {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

pub fn ok_stdout(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn p(dir: &Path, rel: &str) -> PathBuf {
    dir.join(rel)
}
