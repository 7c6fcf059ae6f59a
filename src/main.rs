//! terraform-provider-selfhosted: serve the plugin protocol, nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    selfhosted_protocol::run(selfhosted_protocol::Provider {
        name: "selfhosted",
        resources: terraform_provider_selfhosted::resources::all(),
    })
}
