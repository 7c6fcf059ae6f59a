//! Fan-out bench (written next).

fn main() {}
