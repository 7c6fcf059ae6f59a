//! Authentication against real sshd: keys in every PEM form (OpenSSH, encrypted OpenSSH,
//! PKCS#8, encrypted PKCS#8, PKCS#1 RSA) held in memory, and a real `ssh-agent`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use selfhosted_transport::testbed::{Testbed, TestbedParams};
use selfhosted_transport::{Auth, AuthError, ConnectError, Session};

const PASS: &str = "correct horse battery";

/// `ssh-keygen` a key in `dir`; returns its private key path.
fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-C", name, "-f"])
        .arg(&path)
        .args(args)
        .status()
        .expect("ssh-keygen")
        .success();
    assert!(ok, "ssh-keygen {name} {args:?}");
    path
}

fn pub_of(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

#[tokio::test]
async fn every_key_format_logs_in() {
    if !selfhosted_transport::testbed::is_root_or_skip("every_key_format_logs_in") {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let cases = [
        (
            "openssh-enc",
            keygen(keys.path(), "openssh-enc", &["-t", "ed25519", "-N", PASS]),
            Some(PASS),
            "OPENSSH PRIVATE KEY",
        ),
        (
            "pkcs8-ecdsa",
            keygen(keys.path(), "pkcs8-ecdsa", &["-t", "ecdsa", "-m", "PKCS8", "-N", ""]),
            None,
            "BEGIN PRIVATE KEY",
        ),
        (
            "pkcs1-rsa",
            keygen(
                keys.path(),
                "pkcs1-rsa",
                &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
            ),
            None,
            "BEGIN RSA PRIVATE KEY",
        ),
        (
            "pkcs8-rsa-enc",
            keygen(
                keys.path(),
                "pkcs8-rsa-enc",
                &["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", PASS],
            ),
            Some(PASS),
            "BEGIN ENCRYPTED PRIVATE KEY",
        ),
    ];
    let params = TestbedParams {
        count: 1,
        authorize: cases.iter().map(|c| pub_of(&c.1)).collect(),
        ..Default::default()
    };
    let tb = Testbed::up("every_key_format_logs_in", &params).unwrap().unwrap();
    for (name, path, pass, marker) in &cases {
        let pem = std::fs::read_to_string(path).unwrap();
        assert!(pem.contains(marker), "{name}: generated {pem:.40}");
        if pass.is_some() {
            let no_pass = Auth::try_private_key(&pem, None);
            assert!(
                matches!(no_pass, Err(AuthError::DecodeKey { .. })),
                "{name} needs its passphrase"
            );
            let wrong = Auth::try_private_key(&pem, Some("wrong"));
            assert!(wrong.is_err(), "{name}: wrong passphrase accepted");
        }
        let auth = Auth::try_private_key(&pem, *pass).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut spec = tb.spec(0).unwrap();
        spec.host.auth = auth;
        let (s, _) = Session::connect(&spec).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.run("whoami").await.unwrap().stdout_text().trim(), "core", "{name}");
    }
    // a key the host does not know is refused at once, naming the user
    let stranger = keygen(keys.path(), "stranger", &["-t", "ed25519", "-N", ""]);
    let mut spec = tb.spec(0).unwrap();
    spec.host.auth = Auth::try_private_key(&std::fs::read_to_string(stranger).unwrap(), None).unwrap();
    let err = Session::connect(&spec).await.unwrap_err();
    assert!(matches!(err, ConnectError::Auth { .. }), "{err:?}");
    assert!(
        err.to_string().contains("core") && err.to_string().contains("h1"),
        "{err}"
    );
}

/// A real ssh-agent, killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Agent {
        child,
        socket,
        _dir: dir,
    }
}

#[tokio::test]
async fn agent_auth() {
    let Some(tb) = Testbed::up(
        "agent_auth",
        &TestbedParams {
            count: 1,
            ..Default::default()
        },
    )
    .unwrap() else {
        return;
    };
    let agent = start_agent();
    let mut spec = tb.spec(0).unwrap();
    spec.host.auth = Auth::Agent(Some(agent.socket.clone()));
    // an empty agent: refused, and the error says the agent holds no keys
    let err = Session::connect(&spec).await.unwrap_err();
    assert!(err.to_string().contains("agent holds none"), "{err}");

    // an unrelated key first, then the right one: the agent's keys are tried in turn
    let keys = tempfile::tempdir().unwrap();
    let other = keygen(keys.path(), "other", &["-t", "ed25519", "-N", ""]);
    for key in [other.as_path(), tb.inventory().key.as_path()] {
        let added = Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &agent.socket)
            .status()
            .unwrap();
        assert!(added.success());
    }
    let (s, _) = Session::connect(&spec).await.expect("agent login");
    assert_eq!(s.run("whoami").await.unwrap().stdout_text().trim(), "core");
}
