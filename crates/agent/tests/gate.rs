//! The reuseport gate on the real kernel, in a network namespace of the test's own (root):
//! two listeners share a port as two apiservers do; clients reach the oldest, loopback the
//! newest; when the oldest closes, everything moves to the newest, queued connections too.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};
use selfhosted_agent::gate::{self, GateParams, Loopback};

/// An address of the test's own namespace that is not loopback (TEST-NET-1, on `lo`).
const NODE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// Runs `f` on a thread inside a fresh network namespace with `lo` up and [`NODE_V4`] on it.
fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): the gate tests need root");
        // Children forked from this thread inherit its network namespace.
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["addr", "add", "192.0.2.10/32", "dev", "lo"],
        ] {
            let st = Command::new("ip").args(&args).status().expect("ip runs");
            assert!(st.success(), "ip {args:?}");
        }
        f()
    })
    .join()
    .expect("the test thread")
}

/// A listener that shares `addr` (port 0: any free port) as an apiserver with
/// `--permit-port-sharing` does: dual-stack for a wildcard IPv6 address.
fn shared_listener(addr: SocketAddr) -> TcpListener {
    let family = if addr.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd: OwnedFd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
    setsockopt(&fd, sockopt::ReusePort, &true).unwrap();
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &false).unwrap();
    }
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrStorage::from(addr)).unwrap();
    listen(&fd, Backlog::new(64).unwrap()).unwrap();
    let l = TcpListener::from(fd);
    l.set_nonblocking(true).unwrap();
    l
}

/// Which of `listeners` accepts a connection to `to` (their index), waiting up to 1 s.
fn who_accepts(listeners: &[&TcpListener], to: SocketAddr) -> Vec<usize> {
    let _client = TcpStream::connect_timeout(&to, Duration::from_secs(1)).expect("connect");
    accepted_by(listeners, 1)
}

/// The indexes of `listeners` that accepted connections, until `n` were accepted or 1 s passed.
fn accepted_by(listeners: &[&TcpListener], n: usize) -> Vec<usize> {
    let until = Instant::now() + Duration::from_secs(1);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < until {
        for (i, l) in listeners.iter().enumerate() {
            match l.accept() {
                Ok(_) => got.push(i),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    got
}

#[test]
fn dual_stack_group_sends_clients_to_the_oldest_and_ipv6_loopback_to_the_newest() {
    in_private_netns(|| {
        let old = shared_listener(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0));
        let port = old.local_addr().unwrap().port();
        let attached = gate::attach(&GateParams { port, address: None }).expect("gate attached");
        assert_eq!(attached.newest_via, Loopback::Ipv6);
        assert_eq!(attached.listeners_before, 1, "{attached}");
        assert!(attached.migrate_req, "{attached}");
        let new = shared_listener(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port));
        assert_eq!(gate::listeners(port), 2, "the gate left the group");

        let node = SocketAddr::new(NODE_V4.into(), port);
        let v4_loopback = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        let v6_loopback = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port);
        // Each connection comes from a new source port, so the kernel's hash would spread them.
        for _ in 0..20 {
            assert_eq!(
                who_accepts(&[&old, &new], node),
                [0],
                "a client reached the new listener"
            );
            assert_eq!(who_accepts(&[&old, &new], v4_loopback), [0]);
            assert_eq!(
                who_accepts(&[&old, &new], v6_loopback),
                [1],
                "::1 reached the old listener"
            );
        }

        // Two clients queue on the old listener, which then closes: they move to the new one.
        let queued: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(node).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(50));
        drop(old);
        assert_eq!(accepted_by(&[&new], 2), [0, 0], "queued connections migrated");
        drop(queued);
        for to in [node, v4_loopback, v6_loopback] {
            assert_eq!(who_accepts(&[&new], to), [0], "{to} reaches the remaining listener");
        }
    });
}

#[test]
fn ipv4_group_sends_ipv4_loopback_to_the_newest() {
    in_private_netns(|| {
        let any = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0);
        let old = shared_listener(any);
        let port = old.local_addr().unwrap().port();
        let params = GateParams {
            port,
            address: Some(IpAddr::V4(Ipv4Addr::new(0, 0, 0, 1))),
        };
        // An address nothing listens on: the gate makes a group of its own and leaves it.
        let lonely = gate::attach(&params).expect_err("0.0.0.1 is not an address of this host");
        assert!(lonely.to_string().contains("joining 0.0.0.1"), "{lonely}");

        let attached = gate::attach(&GateParams {
            port,
            address: Some(Ipv4Addr::UNSPECIFIED.into()),
        })
        .expect("gate attached");
        assert_eq!(attached.newest_via, Loopback::Ipv4);
        let new = shared_listener(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port));
        for _ in 0..20 {
            assert_eq!(who_accepts(&[&old, &new], SocketAddr::new(NODE_V4.into(), port)), [0]);
            assert_eq!(
                who_accepts(&[&old, &new], SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)),
                [1]
            );
        }
    });
}

#[test]
fn a_port_held_without_sharing_is_reported_not_fatal() {
    in_private_netns(|| {
        let plain = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
        let port = plain.local_addr().unwrap().port();
        let err = gate::attach(&GateParams { port, address: None }).expect_err("the port is not shared");
        let text = err.to_string();
        assert!(
            text.contains("SO_REUSEPORT") && text.contains("--permit-port-sharing"),
            "{text}"
        );
    });
}

#[test]
fn a_cut_over_sends_every_client_to_the_newest_before_the_oldest_stops() {
    in_private_netns(|| {
        let old = shared_listener(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0));
        let port = old.local_addr().unwrap().port();
        let params = GateParams { port, address: None };
        assert_eq!(
            gate::cut_over(&params).expect("a lone listener"),
            gate::CutOver::NothingToMove { listeners: 1 }
        );
        gate::attach(&params).expect("gate attached");
        let new = shared_listener(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port));
        let node = SocketAddr::new(NODE_V4.into(), port);
        assert_eq!(
            who_accepts(&[&old, &new], node),
            [0],
            "the gate keeps clients on the oldest"
        );

        let done = gate::cut_over(&params).expect("cut over");
        assert!(matches!(done, gate::CutOver::ToNewest { .. }), "{done}");
        assert_eq!(gate::listeners(port), 2, "the cut-over left the group");
        let v6_loopback = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port);
        let v4_loopback = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        for _ in 0..20 {
            for to in [node, v4_loopback, v6_loopback] {
                assert_eq!(
                    who_accepts(&[&old, &new], to),
                    [1],
                    "{to} reached the old listener after the cut-over"
                );
            }
        }
        assert!(gate::newest_via(None).routes(Ipv6Addr::LOCALHOST.into()));
        assert!(!gate::newest_via(None).routes(IpAddr::V4(NODE_V4)));

        // The next apiserver's gate routes by age again: clients to the oldest (now `new`).
        drop(old);
        gate::attach(&params).expect("gate attached again");
        let newer = shared_listener(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port));
        for _ in 0..10 {
            assert_eq!(who_accepts(&[&new, &newer], node), [0]);
            assert_eq!(who_accepts(&[&new, &newer], v6_loopback), [1]);
        }
    });
}
