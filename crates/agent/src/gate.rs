//! The reuseport gate: the oldest apiserver on a shared port takes every connection until
//! it leaves; only loopback connections reach the newest.
//!
//! Two apiservers share the port through `SO_REUSEPORT` during the pivot, a blue/green
//! upgrade and a recovery. Left alone, the kernel hashes each new connection to any member of
//! the group — also to a new apiserver that has bound the port but does not serve yet (it
//! listens from early in its start-up, seconds before it accepts). Such a connection waits
//! until the new process serves, or times out: the one lost request per hand-over.
//!
//! A classic BPF program attached to the group decides instead. The kernel keeps members in
//! join order and, when one leaves, moves the last into its slot, so with two members slot 0
//! is the older and slot 1 the newer; when the older leaves, the newer takes slot 0. The
//! program answers slot 0 for every connection except those to the loopback address the
//! apiserver's own loopback client dials, which get slot 1 (the kernel falls back to its hash
//! when a slot is empty, so a lone member takes everything). So:
//! - clients, load balancers and health checks reach the serving apiserver only;
//! - the new apiserver's loopback client reaches the new apiserver (it trusts only its own
//!   in-memory certificate), and so does a direct check through the same loopback address:
//!   the provider confirms the new apiserver there before it removes the old;
//! - when the old apiserver closes its listener, new connections move to the new one at once,
//!   and those queued on the old one migrate with `net.ipv4.tcp_migrate_req`.
//!
//! The program stays with the group for as long as any member listens. The gate joins the
//! group for a moment (bind + listen on the same address and port, as the same user), attaches
//! the program and leaves; a connection hashed to it in that instant migrates too.
//!
//! Once the newest apiserver is confirmed serving, [`cut_over`] replaces the program with one
//! that sends every connection to it, before the oldest is told to stop. An apiserver built
//! with a current Go closes, without an answer, a connection it accepted but whose request it
//! reads only after its shutdown began; so the oldest must get no new connection before it is
//! stopped, not merely lose its listener when it stops.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::libc::{sock_filter, sock_fprog};
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

/// The netns sysctl that moves a closing listener's queued connections to another member.
const MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

/// Where the gate joins and which loopback address leads to the newest member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateParams {
    /// The shared port (the apiserver's `--secure-port`).
    pub port: u16,
    /// The apiserver's `--bind-address`; `None` for the default wildcard.
    pub address: Option<IpAddr>,
}

/// Which loopback address reaches the newest member: the one the apiserver's own loopback
/// client dials (`::1` where the listener is dual-stack and `lo` has it, else `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loopback {
    /// `::1`.
    Ipv6,
    /// `127.0.0.0/8`.
    Ipv4,
}

impl fmt::Display for Loopback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loopback::Ipv6 => "::1",
            Loopback::Ipv4 => "127.0.0.0/8",
        })
    }
}

/// What the gate did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The address the gate joined.
    pub joined: SocketAddr,
    /// Where the newest member is reached.
    pub newest_via: Loopback,
    /// Listeners on the port just before the gate joined (from `/proc/thread-self/net/tcp*`).
    pub listeners_before: usize,
    /// Whether queued connections migrate when a listener closes.
    pub migrate_req: bool,
}

impl fmt::Display for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gate attached to the reuseport group of {} ({} listener(s) before): connections to {} reach the newest listener, all others the oldest; tcp_migrate_req {}",
            self.joined,
            self.listeners_before,
            self.newest_via,
            if self.migrate_req { "on" } else { "off (queued connections of a closing listener are reset)" }
        )
    }
}

/// Why the gate could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The socket could not be created.
    #[error("creating a socket: {0}")]
    Socket(#[source] Errno),
    /// A socket option the group needs was refused.
    #[error("setting {option}: {source}")]
    Option {
        /// The option.
        option: &'static str,
        /// The refusal.
        #[source]
        source: Errno,
    },
    /// The port is held by a listener that does not share it (or by another user).
    #[error("joining {addr}: {source} (the listener there must use SO_REUSEPORT and run as this user: --permit-port-sharing, root)")]
    Join {
        /// The address.
        addr: SocketAddr,
        /// The refusal.
        #[source]
        source: Errno,
    },
}

/// Joins the group on `params`' address, attaches the gate program and leaves.
///
/// # Errors
/// When the socket cannot join the group or the program is refused.
pub fn attach(params: &GateParams) -> Result<Attached, GateError> {
    let migrate_req = enable_migrate_req();
    let (fd, joined) = join_group(params)?;
    let via = newest_via(Some(joined.ip()));
    let listeners_before = listeners(params.port).saturating_sub(1);
    attach_program(&fd, &mut program(via))?;
    drop(fd);
    Ok(Attached {
        joined,
        newest_via: via,
        listeners_before,
        migrate_req,
    })
}

/// What [`cut_over`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutOver {
    /// Every new connection now reaches the newest of the two listeners.
    ToNewest {
        /// The address the cut-over joined.
        joined: SocketAddr,
    },
    /// Fewer than two listeners: nothing to move (the kernel's hash picks the only one).
    NothingToMove {
        /// Listeners found on the port.
        listeners: usize,
    },
}

impl fmt::Display for CutOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CutOver::ToNewest { joined } => write!(
                f,
                "cut over: every new connection to the reuseport group of {joined} reaches the newest listener"
            ),
            CutOver::NothingToMove { listeners } => {
                write!(f, "nothing to cut over: {listeners} listener(s) on the port")
            }
        }
    }
}

/// Sends every new connection to the newest of two listeners on `params`' port (slot 1), so the
/// oldest can be stopped with nothing in its hands. The next gate (a new apiserver pod)
/// attaches the gate program again before its apiserver joins.
///
/// # Errors
/// When the socket cannot join the group or the program is refused.
pub fn cut_over(params: &GateParams) -> Result<CutOver, GateError> {
    let before = listeners(params.port);
    if before < 2 {
        return Ok(CutOver::NothingToMove { listeners: before });
    }
    enable_migrate_req();
    let (fd, joined) = join_group(params)?;
    // While the cut-over's own socket is a member (slot 2), slot 1 is still the newest apiserver.
    let mut filter = vec![insn(RET_K, 0, 0, 1)];
    attach_program(&fd, &mut filter)?;
    drop(fd);
    Ok(CutOver::ToNewest { joined })
}

/// Joins the group of `params`' address (a dual-stack wildcard unless an address is given);
/// the joined address.
fn join_group(params: &GateParams) -> Result<(OwnedFd, SocketAddr), GateError> {
    match params.address {
        Some(ip) => {
            let addr = SocketAddr::new(ip, params.port);
            let family = if ip.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            Ok((join(family, addr)?, addr))
        }
        // Go listens on a wildcard through a dual-stack IPv6 socket where the kernel has IPv6.
        None => {
            let addr = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), params.port);
            match join(AddressFamily::Inet6, addr) {
                Ok(fd) => Ok((fd, addr)),
                Err(GateError::Socket(Errno::EAFNOSUPPORT)) => {
                    let addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), params.port);
                    Ok((join(AddressFamily::Inet, addr)?, addr))
                }
                Err(e) => Err(e),
            }
        }
    }
}

fn attach_program(fd: &OwnedFd, filter: &mut [sock_filter]) -> Result<(), GateError> {
    let prog = sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    setsockopt(fd, sockopt::AttachReusePortCbpf, &prog).map_err(|source| GateError::Option {
        option: "SO_ATTACH_REUSEPORT_CBPF",
        source,
    })
}

/// The loopback address that reaches the newest listener of a group on `address` (the
/// apiserver's `--bind-address`; `None` for the wildcard), as [`attach`] routes it.
pub fn newest_via(address: Option<IpAddr>) -> Loopback {
    match address {
        Some(IpAddr::V4(_)) => Loopback::Ipv4,
        _ => ipv6_loopback(),
    }
}

impl Loopback {
    /// Whether a connection to `ip` is one this loopback route sends to the newest listener.
    pub fn routes(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Loopback::Ipv6, IpAddr::V6(v6)) => v6.is_loopback(),
            (Loopback::Ipv4, IpAddr::V4(v4)) => v4.is_loopback(),
            _ => false,
        }
    }
}

/// A listening socket in the reuseport group of `addr`.
fn join(family: AddressFamily, addr: SocketAddr) -> Result<OwnedFd, GateError> {
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(GateError::Socket)?;
    let opt = |option: &'static str| move |source| GateError::Option { option, source };
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(opt("SO_REUSEADDR"))?;
    setsockopt(&fd, sockopt::ReusePort, &true).map_err(opt("SO_REUSEPORT"))?;
    if family == AddressFamily::Inet6 && addr.ip().is_unspecified() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &false).map_err(opt("IPV6_V6ONLY"))?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(|source| GateError::Join { addr, source })?;
    listen(&fd, Backlog::new(1).unwrap_or(Backlog::MAXCONN)).map_err(|source| GateError::Join { addr, source })?;
    Ok(fd)
}

/// `::1` where `lo` has it (the apiserver's loopback client then dials it), else IPv4 loopback.
fn ipv6_loopback() -> Loopback {
    let probe = socket(AddressFamily::Inet6, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).and_then(|fd| {
        let sa = SockaddrStorage::from(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0));
        bind(fd.as_raw_fd(), &sa)
    });
    if probe.is_ok() {
        Loopback::Ipv6
    } else {
        Loopback::Ipv4
    }
}

/// Turns `net.ipv4.tcp_migrate_req` on; whether it is on.
fn enable_migrate_req() -> bool {
    let _ = fs::write(MIGRATE_REQ, "1\n");
    fs::read_to_string(MIGRATE_REQ).is_ok_and(|v| v.trim() == "1")
}

/// Sockets listening on `port` (any address) in this thread's network namespace.
pub fn listeners(port: u16) -> usize {
    listening_sockets(port).len()
}

/// The inodes of the sockets listening on `port` (any address) in this thread's network
/// namespace. A process that restarts closes its listener and opens another, with another
/// inode: a set that holds still says that nothing on the port restarted meanwhile.
pub fn listening_sockets(port: u16) -> BTreeSet<u64> {
    let needle = format!(":{port:04X}");
    ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    let (local, state, inode) = (cols.get(1)?, cols.get(3)?, cols.get(9)?);
                    (local.ends_with(&needle) && *state == "0A").then(|| inode.parse().ok())?
                })
                .collect::<Vec<u64>>()
        })
        .collect()
}

// Classic BPF opcodes (`linux/filter.h`: class | size | mode, or class | op | source).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
/// Loads relative to the network header (the program runs with data at the TCP payload).
const NET: u32 = 0xFFF0_0000; // SKF_NET_OFF = -0x100000

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The gate program: slot 1 (the newest of two) for connections to `newest_via`, slot 0
/// (the oldest) for all others.
pub fn program(newest_via: Loopback) -> Vec<sock_filter> {
    let mut p = vec![insn(LD_B_ABS, 0, 0, NET), insn(AND_K, 0, 0, 0xF0)];
    match newest_via {
        Loopback::Ipv6 => p.extend([
            // IPv6 whose destination (header bytes 24..40) is ::1.
            insn(JEQ_K, 0, 8, 0x60),
            insn(LD_W_ABS, 0, 0, NET + 24),
            insn(JEQ_K, 0, 6, 0),
            insn(LD_W_ABS, 0, 0, NET + 28),
            insn(JEQ_K, 0, 4, 0),
            insn(LD_W_ABS, 0, 0, NET + 32),
            insn(JEQ_K, 0, 2, 0),
            insn(LD_W_ABS, 0, 0, NET + 36),
            insn(JEQ_K, 1, 0, 1),
        ]),
        Loopback::Ipv4 => p.extend([
            // IPv4 whose destination (header bytes 16..20) is in 127.0.0.0/8.
            insn(JEQ_K, 0, 3, 0x40),
            insn(LD_W_ABS, 0, 0, NET + 16),
            insn(AND_K, 0, 0, 0xFF00_0000),
            insn(JEQ_K, 1, 0, 0x7F00_0000),
        ]),
    }
    p.extend([insn(RET_K, 0, 0, 0), insn(RET_K, 0, 0, 1)]);
    p
}
