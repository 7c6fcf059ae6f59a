//! What every fuzz target checks for one resource type: bytes as Terraform would send them
//! (a msgpack DynamicValue of the resource's object type) are decoded without panicking; a
//! value that decodes encodes again, and that encoding is a fixed point (decode, encode: the
//! same bytes); and the resource's own validation of it (the configuration readers, every
//! attribute's checks) returns diagnostics without panicking. The seed corpus (`corpus/`) is
//! real Terraform traffic: the values Terraform 1.11 sent the provider while planning and
//! applying the examples, with every private key blanked.

use std::sync::{Arc, OnceLock};

use selfhosted_protocol::msgpack;
use selfhosted_protocol::resource::{Ctx, Resource, ValidateRequest};
use selfhosted_protocol::value::Type;
use tokio_util::sync::CancellationToken;

/// The provider's resources with their value types, built once: building them per input
/// would cost most of each run.
fn resources() -> &'static [(Arc<dyn Resource>, Type)] {
    static ALL: OnceLock<Vec<(Arc<dyn Resource>, Type)>> = OnceLock::new();
    ALL.get_or_init(|| {
        terraform_provider_selfhosted::resources::all()
            .into_iter()
            .map(|r| {
                let ty = r.schema().value_type();
                (r, ty)
            })
            .collect()
    })
}

/// Runs the checks on `data` as a value of the resource named `type_name`.
pub fn check(type_name: &str, data: &[u8]) {
    let (resource, ty) = resources()
        .iter()
        .find(|(r, _)| r.type_name() == type_name)
        .expect("a resource of this provider");
    let Ok(value) = msgpack::decode(data, ty) else {
        return;
    };
    let once = msgpack::encode(&value, ty).expect("a value that decoded encodes");
    let again = msgpack::decode(&once, ty).expect("an encoding decodes");
    let twice = msgpack::encode(&again, ty).expect("a value that decoded encodes");
    assert_eq!(once, twice, "encoding is a fixed point");
    let request = ValidateRequest {
        ctx: Ctx {
            cancel: CancellationToken::new(),
        },
        config: value,
    };
    let _diagnostics = futures::executor::block_on(resource.validate(request));
}
