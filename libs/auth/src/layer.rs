//! The tower layer every dispatch311 server runs its RPCs through: it
//! verifies the bearer token, looks the method up in the policy table,
//! applies the caller's rate limit, and hands the handler a [`Caller`].
//! A refusal is answered here; the handler never runs, so nothing changes.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::{
    Caller, Role,
    policy::{self, View},
    rate_limit::{RateLimit, RateLimiter},
    tokens::TokenVerifier,
};

/// What the layer checks with, shared by every connection.
#[derive(Debug)]
struct Gate {
    verifier: TokenVerifier,
    limiter: RateLimiter,
}

/// Authentication, authorization and rate limiting for a gRPC server.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    gate: Arc<Gate>,
}

impl AuthLayer {
    pub fn new(verifier: TokenVerifier, limit: RateLimit) -> Self {
        Self {
            gate: Arc::new(Gate {
                verifier,
                limiter: RateLimiter::new(limit),
            }),
        }
    }
}

/// Roles whose calls are rate limited: the outside world. Staff and the
/// survey system are few and known; throttling a dispatcher mid-shift would
/// hurt the people the limits protect.
fn is_rate_limited(role: Role) -> bool {
    matches!(role, Role::Integrator | Role::Public)
}

impl Gate {
    fn admit<B>(&self, request: &http::Request<B>) -> Result<Option<Caller>, Status> {
        let path = request.uri().path();
        if policy::is_open(path) {
            return Ok(None);
        }
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or_default());
        let verified = self.verifier.verify_header(header).map_err(|e| {
            tracing::info!(method = path, reason = %e, "call refused: unauthenticated");
            Status::unauthenticated(e.to_string())
        })?;
        let view = policy::rule_for(path)
            .and_then(|rule| rule.view_for(verified.role))
            .ok_or_else(|| {
                tracing::info!(
                    method = path,
                    role = %verified.role,
                    "call refused: role may not call this method"
                );
                Status::permission_denied(format!("the {} role may not call {path}", verified.role))
            })?;
        if is_rate_limited(verified.role)
            && let Err(exhausted) = self.limiter.take(&verified.sub, Instant::now())
        {
            tracing::info!(
                method = path,
                role = %verified.role,
                "call refused: rate limit exhausted"
            );
            return Err(Status::with_error_details(
                Code::ResourceExhausted,
                format!(
                    "rate limit exhausted for this caller; retry in {} ms",
                    exhausted.retry_after.as_millis().max(1)
                ),
                ErrorDetails::with_retry_info(Some(exhausted.retry_after)),
            ));
        }
        Ok(Some(Caller {
            subject: verified.sub,
            role: verified.role,
            view,
        }))
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service built by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.gate.admit(&request) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                // the clone is fresh; `self.inner` was the one polled ready
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                Box::pin(ready.call(request))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

/// The caller the layer admitted, for a handler. UNAUTHENTICATED if there is
/// none (a server built without the layer: a bug, refused rather than open).
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no verified caller"))
}

impl Caller {
    /// Whether this caller sees only its own requests.
    pub fn sees_own_requests_only(&self) -> bool {
        self.view == View::OwnRequests
    }
}
