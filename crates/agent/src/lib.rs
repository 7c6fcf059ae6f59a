//! The node agent that the rendered control plane runs inside its own pods (an init container
//! of every apiserver pod), so that it needs nothing on the host beyond a kubelet.
//!
//! - [`gate`]: lets a new apiserver join the shared port without taking connections before
//!   it serves (the blue/green hand-over, the pivot, a recovery).
//! - [`recovery`]: the recovery apiserver that brings a rebooted controller back by itself
//!   stands by while any apiserver runs, and hands back once the self-hosted one serves.
//! - [`stop`]: `SIGTERM` and `SIGINT` end the long-running subcommands at once, so a pod
//!   the kubelet stops does not linger for its grace period.
//! - [`approver`]: approves the kubelet client certificates of workers that join with the
//!   workers' bootstrap token, never one for a controller's name.

pub mod approver;
pub mod gate;
pub mod recovery;
pub mod stop;
