//! `SIGTERM` and `SIGINT` end the long-running subcommands at once: the loops leave at their
//! next pause when stopped, and the real binary, stopped as the kubelet stops a container,
//! exits within a second with 128 + the signal (instead of lingering for its grace period).

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use selfhosted_agent::recovery::{self, HandBackParams};
use selfhosted_agent::stop::Stop;

#[test]
fn a_stop_ends_a_pause_at_once_and_keeps_its_first_reason() {
    let stop = Stop::new();
    assert!(stop.sleep(Duration::from_millis(10)), "not stopped: the pause runs out");
    let waker = stop.clone();
    let started = Instant::now();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        waker.stop("SIGTERM");
        waker.stop("SIGINT");
    });
    assert!(!stop.sleep(Duration::from_secs(30)));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(stop.reason().as_deref(), Some("SIGTERM"));
    assert!(!stop.sleep(Duration::from_secs(30)), "a stopped stop never pauses");
}

#[test]
fn standby_and_hand_back_leave_when_stopped() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Stop::new();
    let (done, finished) = mpsc::channel();
    let (standby_stop, back_stop, done2) = (stop.clone(), stop.clone(), done.clone());
    std::thread::spawn(move || {
        let started = recovery::standby(port, 3, Duration::from_secs(1), &standby_stop);
        done.send(("standby", started)).unwrap();
    });
    std::thread::spawn(move || {
        let params = HandBackParams {
            port,
            via: vec![Ipv4Addr::LOCALHOST.into()],
            answers: 5,
            steady: Duration::ZERO,
            poll: Duration::from_secs(1),
        };
        // Nothing here serves TLS: the hand-back would wait for ever.
        let via = recovery::await_self_hosted(
            || Err(recovery::RecoveryError::NotRecoveryManifest("none".into())),
            &params,
            &back_stop,
        );
        done2.send(("hand-back", via.is_some())).unwrap();
    });
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    stop.stop("SIGTERM");
    for _ in 0..2 {
        let (what, went_on) = finished
            .recv_timeout(Duration::from_secs(5))
            .expect("left when stopped");
        assert!(!went_on, "{what} went on instead of stopping");
    }
    assert!(stopped.elapsed() < Duration::from_secs(2), "{:?}", stopped.elapsed());
    drop(listener);
}

fn agent(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_selfhosted-agent"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` once the agent is in its loop (it has printed its first line, after taking
/// the signals); its exit code, how long it took to exit, and what it printed.
fn stop_with(mut child: Child, signal: Signal) -> (Option<i32>, Duration, String) {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut out = String::new();
    stdout.read_line(&mut out).unwrap();
    let sent = Instant::now();
    kill(Pid::from_raw(child.id().try_into().unwrap()), signal).unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let took = sent.elapsed();
            stdout.read_to_string(&mut out).unwrap();
            return (status.code(), took, out);
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "the agent ignored {signal}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_agent_exits_at_once_on_sigterm_and_sigint() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // Standing by (a listener holds the port): 143, never 0, which would start the apiserver.
    let (code, took, out) = stop_with(agent(&["standby", "--port", &port]), Signal::SIGTERM);
    assert_eq!(code, Some(143), "{out}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(out.contains("SIGTERM: stopping"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    let manifest = dir.path().join("kube-apiserver-recovery.yaml");
    let hand_back = agent(&[
        "hand-back",
        "--port",
        &port,
        "--ca",
        ca.to_str().unwrap(),
        "--name",
        "kube-apiserver",
        "--manifest",
        manifest.to_str().unwrap(),
        "--via",
        "127.0.0.1",
    ]);
    let (code, took, out) = stop_with(hand_back, Signal::SIGINT);
    assert_eq!(code, Some(130), "{out}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(listener);
}
