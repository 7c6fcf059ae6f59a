//! Provider start to handshake line: spawns the `echo` example provider as
//! Terraform would (cookie and client certificate in the environment) and
//! times until the go-plugin handshake line appears on stdout. Prints the
//! median and spread over several runs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    // target/<profile>/deps/handshake-<hash> -> target/<profile>/examples/echo
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("profile dir")
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "selfhosted-protocol", "--example", "echo"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "building the echo example failed");
    profile_dir.join("examples/echo")
}

fn client_cert_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params.self_signed(&key).expect("cert").pem()
}

fn main() {
    let bin = example_binary();
    let pem = client_cert_pem();
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut child = Command::new(&bin)
            .env(
                "TF_PLUGIN_MAGIC_COOKIE",
                selfhosted_protocol::server::MAGIC_COOKIE_VALUE,
            )
            .env("PLUGIN_CLIENT_CERT", &pem)
            .env("PLUGIN_PROTOCOL_VERSIONS", "6")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read handshake");
        let elapsed = start.elapsed();
        assert!(line.starts_with("1|6|tcp|127.0.0.1:"), "unexpected handshake: {line}");
        times.push(elapsed);
        let _ = child.kill();
        let _ = child.wait();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "provider start -> handshake line over {RUNS} runs: median {:.2} ms, min {:.2} ms, max {:.2} ms ({})",
        ms(times[RUNS / 2]),
        ms(times[0]),
        ms(times[RUNS - 1]),
        bin.display()
    );
}
