//! Drives the real `terraform` CLI against the provider binary that cargo
//! built for this test run, installed through a filesystem mirror in a CLI
//! config file the harness writes (the machine's own config is never used).
#![allow(dead_code)]

pub mod attacker;
pub mod endpoints;
pub mod lane;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Provider version the mirror advertises; examples pin nothing narrower.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// OpenTofu's `tofu`, built from the Go module proxy by `tests/tools/tofu.sh` (which
/// `scripts/test.sh` runs and names in `SELFHOSTED_TOFU`).
pub fn tofu() -> Option<PathBuf> {
    built_cli("SELFHOSTED_TOFU", "tofu-v1.12.6", "tests/tools/tofu.sh")
}

/// A Terraform newer than the machine's (1.13.3), built from the Go module proxy by
/// `tests/tools/terraform.sh` (named in `SELFHOSTED_TERRAFORM_NEWER` by `scripts/test.sh`).
pub fn newer_terraform() -> Option<PathBuf> {
    built_cli(
        "SELFHOSTED_TERRAFORM_NEWER",
        "terraform-v1.13.3",
        "tests/tools/terraform.sh",
    )
}

/// A CLI the tests build and cache: the path in `var`, else the cache's `name`. Under CI it
/// must be there; elsewhere its absence is a loud skip.
fn built_cli(var: &str, name: &str, script: &str) -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var(var).unwrap_or_else(|_| format!("/var/cache/selfhosted-lane/tools/{name}")));
    if path.is_file() {
        return Some(path);
    }
    selfhosted_test_support::skip_or_fail(name, &format!("no {name} at {} (bash {script})", path.display()));
    None
}

/// The hosts the mirror serves the provider under.
const REGISTRIES: [&str; 2] = ["registry.terraform.io", "registry.opentofu.org"];

/// A mirror shared by every test process run against one build of the
/// provider. nextest runs each test in its own process, so the mirror is keyed
/// by the binary's size and mtime rather than the process, and the binary is
/// hard-linked, not copied: a copy per process filled CI's disk.
fn mirror_root() -> &'static Path {
    static MIRROR: OnceLock<PathBuf> = OnceLock::new();
    MIRROR.get_or_init(|| {
        let built = Path::new(env!("CARGO_BIN_EXE_terraform-provider-selfhosted"));
        let meta = std::fs::metadata(built).expect("provider binary built by cargo");
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let tmpdir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let name = format!("tf-mirror-{}-{mtime}", meta.len());
        let root = tmpdir.join(&name);
        if root.exists() {
            return root;
        }
        let staging = tempfile::Builder::new()
            .prefix("tf-mirror-staging-")
            .tempdir_in(tmpdir)
            .expect("mirror staging dir");
        // Under both registries' names: OpenTofu's default host is registry.opentofu.org.
        for registry in REGISTRIES {
            let dest = staging
                .path()
                .join(format!("{registry}/selfhosted/selfhosted/{VERSION}/linux_amd64"));
            std::fs::create_dir_all(&dest).expect("create mirror dir");
            let bin = dest.join(format!("terraform-provider-selfhosted_v{VERSION}"));
            if std::fs::hard_link(built, &bin).is_err() {
                std::fs::copy(built, &bin).expect("copy provider into mirror");
            }
        }
        // Another test process may have won the race; its mirror is as good.
        if std::fs::rename(staging.path(), &root).is_ok() {
            let _ = staging.keep();
            remove_stale_mirrors(tmpdir, &name);
        }
        root
    })
}

/// Mirrors of earlier builds: nothing uses them once a new build exists.
fn remove_stale_mirrors(tmpdir: &Path, current: &str) {
    let Ok(entries) = std::fs::read_dir(tmpdir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("tf-mirror-") && !name.starts_with("tf-mirror-staging-") && name != current {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Environment that shifts the provider's clock by `offset` (e.g. `+30h`)
/// through libfaketime (Debian `faketime`); terraform itself (a static Go
/// binary) is not affected, the provider it starts is.
pub fn shifted_clock(offset: &str) -> Vec<(&'static str, String)> {
    let lib = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("libfaketime installed (apt-get install faketime)");
    vec![
        ("LD_PRELOAD", lib.to_owned()),
        ("FAKETIME", offset.to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
    ]
}

/// Copies the files of `from` into `to`, folders included.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read example folder").flatten() {
        // A local `terraform init` leaves `.terraform/` and a lock file: not part of the module.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// One Terraform working directory with its own CLI config, torn down on drop.
pub struct Workspace {
    dir: tempfile::TempDir,
    cli_config: PathBuf,
    /// The CLI that runs: `terraform`, or OpenTofu's `tofu`.
    cli: PathBuf,
}

impl Workspace {
    /// A working directory holding `main.tf`, initialised against the mirror.
    pub fn new(main_tf: &str) -> Self {
        Self::new_with_cli(main_tf, Path::new("terraform"))
    }

    /// As [`Workspace::new`], run by another CLI of the same interface (OpenTofu's `tofu`).
    pub fn new_with_cli(main_tf: &str, cli: &Path) -> Self {
        let mut ws = Self::empty(&[]);
        ws.cli = cli.to_owned();
        ws.write("main.tf", main_tf);
        ws.ok(&["init", "-input=false"]);
        ws
    }

    /// A working directory holding a copy of the folder `tree` (a module with its
    /// submodules), initialised against this provider's mirror and the other providers'
    /// filesystem mirrors in `mirrors` (`(path, provider source)`).
    pub fn from_tree(tree: &Path, mirrors: &[(&Path, &str)]) -> Self {
        let ws = Self::empty(mirrors);
        copy_tree(tree, ws.path());
        ws.ok(&["init", "-input=false"]);
        ws
    }

    fn empty(mirrors: &[(&Path, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tf-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("tempdir");
        let cli_config = dir.path().join("cli.tfrc");
        let ours: Vec<String> = REGISTRIES
            .iter()
            .map(|r| format!("{r}/selfhosted/selfhosted"))
            .collect();
        let quoted = |names: &[String]| names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
        let mut installation = format!(
            "  filesystem_mirror {{\n    path    = \"{}\"\n    include = [{}]\n  }}\n",
            mirror_root().display(),
            quoted(&ours)
        );
        for (path, source) in mirrors {
            installation.push_str(&format!(
                "  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{source}\"]\n  }}\n",
                path.display()
            ));
        }
        let excluded: Vec<String> = ours
            .iter()
            .cloned()
            .chain(mirrors.iter().map(|(_, s)| (*s).to_owned()))
            .collect();
        installation.push_str(&format!("  direct {{\n    exclude = [{}]\n  }}\n", quoted(&excluded)));
        std::fs::write(&cli_config, format!("provider_installation {{\n{installation}}}\n")).expect("write cli config");
        Workspace {
            dir,
            cli_config,
            cli: PathBuf::from("terraform"),
        }
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replace or add a file in the working directory.
    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.dir.path().join(name), content).expect("write tf file");
    }

    /// A new SSH key pair in the working directory under `name`, as a user makes one: the
    /// private key's path and the public key's line.
    #[allow(dead_code)] // not every test binary makes keys
    pub fn ssh_key_pair(&self, name: &str) -> (PathBuf, String) {
        let key = self.path().join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        (key, public.trim().to_owned())
    }

    /// As [`Workspace::fails`], the output's words joined by single spaces (Terraform wraps
    /// and frames what it prints), for `contains` checks across its line breaks.
    #[allow(dead_code)] // not every test binary checks refusals
    pub fn fails_flat(&self, args: &[&str]) -> String {
        flat(&self.fails(args))
    }

    /// A terraform command, configured but not run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cli);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("NO_COLOR", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_PLUGIN_CACHE_DIR");
        // To see what terraform and the provider said: SELFHOSTED_TEST_TF_LOG_PATH=/some/file.
        if let Some(path) = std::env::var_os("SELFHOSTED_TEST_TF_LOG_PATH") {
            cmd.env("TF_LOG", "debug").env("TF_LOG_PATH", path);
        }
        if !args.contains(&"-no-color") && args.first().is_some_and(|a| *a != "output") {
            cmd.arg("-no-color");
        }
        cmd
    }

    /// Run terraform and return its output whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Run terraform with extra environment variables (they reach the provider).
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args)
            .envs(env.iter().copied())
            .output()
            .expect("terraform runs")
    }

    /// Run terraform, failing the test (with its output) unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, &[])
    }

    /// As [`Workspace::ok`], with extra environment variables.
    pub fn ok_with(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run_with(args, env);
        assert!(
            out.status.success(),
            "terraform {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run terraform expecting failure; returns stdout + stderr for matching.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "terraform {args:?} unexpectedly succeeded:\n{text}"
        );
        text
    }

    /// `terraform plan -detailed-exitcode`: Ok(false) no changes, Ok(true) changes.
    pub fn plan_has_changes(&self) -> (bool, String) {
        self.plan_has_changes_with(&[])
    }

    /// As [`Workspace::plan_has_changes`], with extra environment variables.
    pub fn plan_has_changes_with(&self, env: &[(&str, &str)]) -> (bool, String) {
        let out = self.run_with(&["plan", "-input=false", "-detailed-exitcode"], env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        match out.status.code() {
            Some(0) => (false, text),
            Some(2) => (true, text),
            _ => panic!("terraform plan failed:\n{text}"),
        }
    }

    /// `terraform apply -auto-approve`.
    pub fn apply(&self) -> String {
        self.ok(&["apply", "-input=false", "-auto-approve"])
    }

    /// `terraform output -json` parsed.
    pub fn outputs(&self) -> serde_json::Value {
        let out = self.ok(&["output", "-json"]);
        serde_json::from_str(&out).expect("output json")
    }

    /// `terraform show -json` parsed (the whole state, sensitive values included).
    pub fn state(&self) -> serde_json::Value {
        let out = self.ok(&["show", "-json"]);
        serde_json::from_str(&out).expect("state json")
    }

    /// Attribute values of the first resource of `type_name` in the state.
    pub fn resource_values(&self, type_name: &str) -> serde_json::Value {
        let state = self.state();
        state["values"]["root_module"]["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["type"] == type_name))
            .map(|r| r["values"].clone())
            .unwrap_or_else(|| panic!("no {type_name} in state: {state}"))
    }
}

/// `text`'s words joined by single spaces, Terraform's frame (`│`) dropped: what it printed,
/// for `contains` checks across the lines it wraps.
#[allow(dead_code)] // not every test binary reads Terraform's output
pub fn flat(text: &str) -> String {
    text.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ")
}
