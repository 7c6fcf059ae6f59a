//! Test support (feature `testbed`): brings up the multi-host OpenSSH test bed
//! (`tests/testbed/hosts.sh`: sshd per host in network namespaces, user `core` with
//! passwordless sudo, `guest` without, optional bastion) and tears it down on drop — also when
//! a test panics. Needs root; [`Testbed::up`] returns `Ok(None)` with a loud message otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{Auth, AuthError};
use crate::host_keys::{HostKeyError, HostKeyPolicy};
use crate::session::{HopSpec, HostSpec};
pub use selfhosted_test_support::skip_or_fail;

/// Why the test bed could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// The scratch folder could not be made.
    #[error("cannot create the test-bed folder: {0}")]
    Scratch(#[source] std::io::Error),
    /// `hosts.sh` could not be started.
    #[error("cannot run {script}: {source}")]
    Spawn {
        /// Script path.
        script: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `hosts.sh up` failed.
    #[error("hosts.sh up failed: {stderr}")]
    Up {
        /// Its stderr.
        stderr: String,
    },
    /// The inventory could not be read.
    #[error("cannot read the test-bed inventory: {0}")]
    Inventory(String),
    /// The client key could not be read.
    #[error("cannot use the test-bed client key: {0}")]
    Key(#[source] AuthError),
    /// A host key in the inventory is unreadable.
    #[error("bad host key in the inventory: {0}")]
    HostKey(#[source] HostKeyError),
}

/// One host of the test bed, as `hosts.sh` describes it.
#[derive(Clone, Debug, Deserialize)]
pub struct TestHost {
    /// `h1`, `h2`, … or `bastion`.
    pub name: String,
    /// Address on the test-bed bridge (behind the bastion when there is one).
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// `ssh-ed25519 AAAA…`.
    pub host_key: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    /// Network namespace name.
    pub netns: String,
    /// Folder holding the host's copy-on-write layers (`etc-upper`, `var-upper`, …).
    pub root: PathBuf,
}

/// The test bed's inventory (`inventory.json`).
#[derive(Clone, Debug, Deserialize)]
pub struct Inventory {
    /// Unique run id (prefix of every namespace and link).
    pub run: String,
    /// Login user with passwordless sudo.
    pub user: String,
    /// Login user without sudo rights.
    pub nosudo_user: String,
    /// Client private key (unencrypted OpenSSH ed25519), authorized for both users.
    pub key: PathBuf,
    /// known_hosts file with every host's key.
    pub known_hosts: PathBuf,
    /// The machine's own address on the bridge.
    pub gateway: String,
    /// The bastion, when asked for.
    pub bastion: Option<TestHost>,
    /// The hosts.
    pub hosts: Vec<TestHost>,
}

/// What to bring up.
#[derive(Clone, Debug, Default)]
pub struct TestbedParams {
    /// Number of hosts (not counting the bastion).
    pub count: usize,
    /// Put the hosts behind a bastion that alone reaches them.
    pub bastion: bool,
    /// Extra public key files to authorize for the users.
    pub authorize: Vec<PathBuf>,
}

/// A running test bed; torn down on drop.
#[derive(Debug)]
pub struct Testbed {
    dir: tempfile::TempDir,
    inventory: Inventory,
    key_pem: String,
}

/// Path of `hosts.sh` (override with `SELFHOSTED_TESTBED_SCRIPT`).
pub fn script() -> PathBuf {
    std::env::var_os("SELFHOSTED_TESTBED_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/testbed/hosts.sh"))
}

/// True when running as root; otherwise prints a loud skip notice naming `test`.
pub fn is_root_or_skip(test: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        skip_or_fail(test, "the SSH test bed needs root (network namespaces, mounts)");
    }
    root
}

impl Testbed {
    /// Brings the test bed up, or returns `Ok(None)` (after a loud notice) when not root.
    ///
    /// # Errors
    /// When `hosts.sh up` fails or its inventory is unreadable.
    pub fn up(test: &str, params: &TestbedParams) -> Result<Option<Testbed>, TestbedError> {
        if !is_root_or_skip(test) {
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix("selfhosted-testbed-")
            .tempdir()
            .map_err(TestbedError::Scratch)?;
        let script = script();
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .arg("up")
            .arg("--dir")
            .arg(dir.path())
            .arg("--count")
            .arg(params.count.max(1).to_string())
            .arg("--owner")
            .arg(std::process::id().to_string());
        if params.bastion {
            cmd.arg("--bastion");
        }
        for a in &params.authorize {
            cmd.arg("--authorize").arg(a);
        }
        let out = cmd.output().map_err(|source| TestbedError::Spawn {
            script: script.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(TestbedError::Up {
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let text = std::fs::read_to_string(dir.path().join("inventory.json"))
            .map_err(|e| TestbedError::Inventory(e.to_string()))?;
        let inventory: Inventory = serde_json::from_str(&text).map_err(|e| TestbedError::Inventory(e.to_string()))?;
        let key_pem = std::fs::read_to_string(&inventory.key).map_err(|e| TestbedError::Inventory(e.to_string()))?;
        Ok(Some(Testbed {
            dir,
            inventory,
            key_pem,
        }))
    }

    /// The inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The scratch folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The hosts (without the bastion).
    pub fn hosts(&self) -> &[TestHost] {
        &self.inventory.hosts
    }

    /// The client key as PEM text.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Key auth with the test-bed client key.
    ///
    /// # Errors
    /// [`TestbedError::Key`] if the key is unreadable.
    pub fn auth(&self) -> Result<Auth, TestbedError> {
        Auth::try_private_key(&self.key_pem, None).map_err(TestbedError::Key)
    }

    /// A hop for `host` as user `core`, key auth, its key pinned.
    ///
    /// # Errors
    /// On an unreadable key.
    pub fn hop(&self, host: &TestHost, auth: Auth) -> Result<HopSpec, TestbedError> {
        Ok(HopSpec {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            user: self.inventory.user.clone(),
            auth,
            host_key: HostKeyPolicy::try_pinned(&[host.host_key.as_str()]).map_err(TestbedError::HostKey)?,
        })
    }

    /// A spec for host number `i` (through the bastion if there is one), pinned keys,
    /// test-bed key, 10 s connect timeout.
    ///
    /// # Errors
    /// On an unreadable key.
    pub fn spec(&self, i: usize) -> Result<HostSpec, TestbedError> {
        let auth = self.auth()?;
        let host = self
            .inventory
            .hosts
            .get(i)
            .ok_or_else(|| TestbedError::Inventory(format!("no host number {i}")))?;
        let bastions = match &self.inventory.bastion {
            Some(b) => vec![self.hop(b, auth.clone())?],
            None => Vec::new(),
        };
        Ok(HostSpec::direct(self.hop(host, auth)?)
            .via(bastions)
            .with_timeout(Duration::from_secs(10)))
    }

    /// Specs for every host.
    ///
    /// # Errors
    /// On an unreadable key.
    pub fn specs(&self) -> Result<Vec<HostSpec>, TestbedError> {
        (0..self.inventory.hosts.len()).map(|i| self.spec(i)).collect()
    }

    /// Runs a command inside host `name` (its mount, UTS, PID and network namespaces),
    /// bypassing SSH — for checking what a test did.
    pub fn host_exec(&self, name: &str, args: &[&str]) -> std::process::Output {
        self.hosts_sh(&["exec", name, "--"], args)
    }

    /// Installs an executable script at `path` on every host (e.g. a stand-in for a
    /// program the code under test only checks for).
    ///
    /// # Errors
    /// The first host where it could not be written, with its stderr.
    pub fn install_executable(&self, path: &str, script: &str) -> Result<(), TestbedError> {
        let cmd = format!(
            "cat > {0} <<'EOF'\n{script}\nEOF\nchmod 755 {0}",
            crate::session::shell_quote(path)
        );
        for h in &self.inventory.hosts {
            let out = self.host_exec(&h.name, &["sh", "-c", &cmd]);
            if !out.status.success() {
                return Err(TestbedError::Up {
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
            }
        }
        Ok(())
    }

    /// SIGKILLs every per-connection sshd process of host `name` (the listener survives), as
    /// if the connection died mid-operation.
    pub fn kill_sessions(&self, name: &str) -> std::process::Output {
        self.hosts_sh(&["kill-sessions", name], &[])
    }

    /// Gives host `name` a new SSH host key, as a new machine in its place has; the inventory
    /// (and [`Testbed::hosts`]) then names the new key.
    ///
    /// # Errors
    /// When `hosts.sh rekey` fails or the inventory cannot be read again.
    pub fn rekey(&mut self, name: &str) -> Result<(), TestbedError> {
        let out = self.hosts_sh(&["rekey", name], &[]);
        if !out.status.success() {
            return Err(TestbedError::Up {
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let text = std::fs::read_to_string(self.dir.path().join("inventory.json"))
            .map_err(|e| TestbedError::Inventory(e.to_string()))?;
        self.inventory = serde_json::from_str(&text).map_err(|e| TestbedError::Inventory(e.to_string()))?;
        Ok(())
    }

    fn hosts_sh(&self, pre: &[&str], args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg(pre[0]).arg("--dir").arg(self.dir.path());
        cmd.args(&pre[1..]).args(args);
        cmd.output().unwrap_or_else(|e| std::process::Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(127 << 8),
            stdout: Vec::new(),
            stderr: e.to_string().into_bytes(),
        })
    }

    /// Tears the test bed down now (also done on drop).
    pub fn down(&self) {
        let out = self.hosts_sh(&["down"], &[]);
        if !out.status.success() {
            eprintln!("hosts.sh down failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.down();
    }
}
