//! The calling side: a tonic interceptor that puts a bearer token on every
//! call that does not carry one already.

use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
};

/// A client channel whose calls carry a bearer token.
pub type Authenticated<C> = InterceptedService<C, BearerToken>;

/// Adds `authorization: Bearer …` to calls that have none, so one call can
/// still be made with another token ([`with_token`]).
#[derive(Clone)]
pub struct BearerToken {
    header: AsciiMetadataValue,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    pub fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            header: header_value(token)?,
        })
    }

    /// Wraps a channel so its calls carry this token.
    pub fn wrap<C>(self, channel: C) -> Authenticated<C> {
        InterceptedService::new(channel, self)
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if !request.metadata().contains_key("authorization") {
            request
                .metadata_mut()
                .insert("authorization", self.header.clone());
        }
        Ok(request)
    }
}

fn header_value(token: &str) -> anyhow::Result<AsciiMetadataValue> {
    MetadataValue::try_from(format!("Bearer {}", token.trim()))
        .map_err(|_| anyhow::anyhow!("a token must be printable ASCII"))
}

/// `message` as a request that carries `token`, whatever the channel's own.
pub fn with_token<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", header_value(token)?);
    Ok(request)
}
