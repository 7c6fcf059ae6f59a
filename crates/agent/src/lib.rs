//! The node agent that the rendered control plane runs inside its own pods (an init container
//! of every apiserver pod), so that it needs nothing on the host beyond a kubelet.
//!
//! - [`gate`]: lets a new apiserver join the shared port without taking connections before
//!   it serves (the blue/green hand-over, the pivot, a recovery).

pub mod gate;
