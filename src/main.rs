//! terraform-provider-selfhosted: serve the plugin protocol, nothing else.
fn main() {}
