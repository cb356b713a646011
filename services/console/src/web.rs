//! The state every handler shares, and what every response gets: a trace (a browser action is
//! one trace into the services, its id in the `x-trace-id` header), security
//! headers (a Content-Security-Policy that allows this site's own files
//! only), and no caching of pages that show live work.

use std::sync::Arc;

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use dispatch311_auth::TokenSigner;
use dispatch311_grpc::client::connect_lazy;
use dispatch311_proto::dispatch::v1::dispatch_service_client::DispatchServiceClient;
use dispatch311_telemetry::{grpc::TracedChannel, propagation};
use opentelemetry::trace::TraceContextExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::config::ConsoleConfig;
use crate::session::{Session, SessionKey};

/// The session cookie's name. With `Secure`, the `__Host-` prefix also
/// binds it to this host and path `/` (no subdomain can set or read it).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dispatch311-console"
    } else {
        "dispatch311-console"
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

pub struct Shared {
    pub dispatch: DispatchServiceClient<TracedChannel>,
    pub session_key: SessionKey,
    pub secure_cookies: bool,
    pub dev_signer: Option<TokenSigner>,
    pub session_hours: u64,
    /// Cancelled at shutdown: live pages end their streams.
    pub closing: CancellationToken,
}

impl AppState {
    pub fn new(config: &ConsoleConfig, closing: CancellationToken) -> anyhow::Result<Self> {
        let dispatch =
            DispatchServiceClient::new(connect_lazy(&config.dispatch_url, config.tls.as_ref())?);
        Ok(Self(Arc::new(Shared {
            dispatch,
            session_key: config.session_key.clone(),
            secure_cookies: config.secure_cookies,
            dev_signer: config.dev_signer.clone(),
            session_hours: config.session_hours,
            closing,
        })))
    }

    /// The signed-in person, if the request carries a session cookie that
    /// opens (sealed by this console's key, not expired).
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let name = cookie_name(self.0.secure_cookies);
        let now = chrono::Utc::now().timestamp();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(cookie, _)| *cookie == name)
            .find_map(|(_, value)| Session::open(value, &self.0.session_key, now))
    }

    /// `Set-Cookie` for `session` (HttpOnly, SameSite=Strict, Secure over TLS).
    pub fn session_cookie(&self, session: &Session) -> HeaderValue {
        let max_age = session.expires_at - chrono::Utc::now().timestamp();
        self.cookie(&session.seal(&self.0.session_key), max_age.max(0))
    }

    /// `Set-Cookie` that signs out.
    pub fn cleared_cookie(&self) -> HeaderValue {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.0.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
            cookie_name(self.0.secure_cookies)
        ))
        .expect("a sealed cookie is URL-safe base64")
    }
}

/// Content-Security-Policy: this site's own scripts, styles and images
/// (photos arrive as `data:` images), no framing, forms post here only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'; object-src 'none'";

/// One span per request (the browser's `traceparent` continued when it
/// sends one), its trace id in the answer, and the security headers.
pub async fn traced_and_guarded(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format!("{} {}", request.method(), request.uri().path()),
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    let parent = propagation::extract_headers(request.headers());
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let trace_id = propagation::trace_id_of(&span);
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    let headers = response.headers_mut();
    if let Some(trace_id) = trace_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert("x-trace-id", trace_id);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// An answer that is a whole page or a redirect.
pub fn see_other(location: &str) -> Response {
    (
        axum::http::StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}
