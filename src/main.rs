//! terraform-provider-selfhosted: serve the plugin protocol, nothing else.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let provider = selfhosted_protocol::Provider {
        name: "selfhosted",
        resources: terraform_provider_selfhosted::resources::all(),
    };
    match selfhosted_protocol::serve(provider).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("terraform-provider-selfhosted: {e}");
            ExitCode::FAILURE
        }
    }
}
