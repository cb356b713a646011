//! The state every handler shares, the role checks and page rendering, and
//! the security headers every response gets (a Content-Security-Policy that
//! allows this site's own files only, and no caching of pages that show live
//! work). The trace and metrics of each request are `dispatch311_web`'s.

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
use dispatch311_proto::survey::v1::survey_service_client::SurveyServiceClient;
use dispatch311_telemetry::grpc::TracedChannel;
use tokio_util::sync::CancellationToken;

use askama::Template;
use axum::http::StatusCode;
use dispatch311_auth::{Role, client::with_token};

use crate::config::ConsoleConfig;
use crate::oidc::{FLOW_LIFETIME_SECS, Flow, Oidc};
use crate::session::{Session, SessionKey};
use crate::views::{MessagePage, Who};

/// The session cookie's name. With `Secure`, the `__Host-` prefix also
/// binds it to this host and path `/` (no subdomain can set or read it).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dispatch311-console"
    } else {
        "dispatch311-console"
    }
}

/// The cookie that carries the sign-in page's form token (before there is
/// a session to carry one): the sign-in forms must send it back.
fn sign_in_csrf_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dispatch311-sign-in-csrf"
    } else {
        "dispatch311-sign-in-csrf"
    }
}

/// The cookie that carries a sign-in at the identity provider (its state
/// and PKCE verifier) until the provider sends the browser back.
fn flow_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dispatch311-sign-in"
    } else {
        "dispatch311-sign-in"
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

pub struct Shared {
    /// Takes answers up to a photo's size (GetJobPhoto).
    pub dispatch: DispatchServiceClient<TracedChannel>,
    /// For the satisfaction figures beside the precinct's.
    pub survey: SurveyServiceClient<TracedChannel>,
    pub session_key: SessionKey,
    pub secure_cookies: bool,
    pub dev_signer: Option<TokenSigner>,
    /// The identity provider's sign-in, when configured.
    pub oidc: Option<Oidc>,
    pub session_hours: u64,
    /// Cancelled at shutdown: live pages end their streams.
    pub closing: CancellationToken,
}

impl AppState {
    pub fn new(config: &ConsoleConfig, closing: CancellationToken) -> anyhow::Result<Self> {
        let dispatch =
            DispatchServiceClient::new(connect_lazy(&config.dispatch_url, config.tls.as_ref())?)
                .max_decoding_message_size(dispatch311_photos::MAX_PHOTO_BYTES + 64 * 1024);
        let survey =
            SurveyServiceClient::new(connect_lazy(&config.survey_url, config.tls.as_ref())?);
        Ok(Self(Arc::new(Shared {
            dispatch,
            survey,
            session_key: config.session_key.clone(),
            secure_cookies: config.secure_cookies,
            dev_signer: config.dev_signer.clone(),
            oidc: match &config.oidc {
                Some((settings, verifier)) => Some(Oidc::new(settings.clone(), verifier.clone())?),
                None => None,
            },
            session_hours: config.session_hours,
            closing,
        })))
    }

    /// The signed-in person, if the request carries a session cookie that
    /// opens (sealed by this console's key, not expired).
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let now = chrono::Utc::now().timestamp();
        cookies(headers, cookie_name(self.0.secure_cookies))
            .find_map(|value| Session::open(value, &self.0.session_key, now))
    }

    /// A form token for the sign-in page, and the `Set-Cookie` that pairs it
    /// with this browser (a form posted from another site lacks the cookie).
    pub fn sign_in_csrf(&self) -> (String, HeaderValue) {
        let token = crate::session::random_url_safe(16);
        let secure = if self.0.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let cookie = HeaderValue::from_str(&format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
            sign_in_csrf_cookie_name(self.0.secure_cookies)
        ))
        .expect("a token is URL-safe base64");
        (token, cookie)
    }

    /// Whether a sign-in form's token is the one its page paired with this browser.
    pub fn sign_in_csrf_matches(&self, headers: &HeaderMap, sent: &str) -> bool {
        cookies(headers, sign_in_csrf_cookie_name(self.0.secure_cookies))
            .any(|expected| crate::session::same_secret(expected, sent))
    }

    /// The sign-in under way at the identity provider, if its cookie opens.
    pub fn sign_in_flow(&self, headers: &HeaderMap) -> Option<Flow> {
        let now = chrono::Utc::now().timestamp();
        cookies(headers, flow_cookie_name(self.0.secure_cookies))
            .find_map(|value| Flow::open(value, &self.0.session_key, now))
    }

    /// `Set-Cookie` for a sign-in going to the identity provider. SameSite=Lax:
    /// the provider's redirect back is a cross-site navigation, on which a
    /// Strict cookie would not be sent.
    pub fn flow_cookie(&self, flow: &Flow) -> HeaderValue {
        let secure = if self.0.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        HeaderValue::from_str(&format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={FLOW_LIFETIME_SECS}{secure}",
            flow_cookie_name(self.0.secure_cookies),
            flow.seal(&self.0.session_key)
        ))
        .expect("a sealed cookie is URL-safe base64")
    }

    /// `Set-Cookie` that ends a sign-in flow (used once).
    pub fn cleared_flow_cookie(&self) -> HeaderValue {
        let secure = if self.0.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        HeaderValue::from_str(&format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
            flow_cookie_name(self.0.secure_cookies)
        ))
        .expect("a cookie name is ASCII")
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

/// The values of the cookies called `name` a request carries.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(cookie, _)| *cookie == name)
        .map(|(_, value)| value)
}

/// Content-Security-Policy: this site's own scripts, styles and images
/// (photos arrive as `data:` images), no framing, forms post here only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'; object-src 'none'";

/// The security headers of every answer: a Content-Security-Policy,
/// `nosniff`, no referrer, and no caching of pages that show live work.
pub async fn guarded(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
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

/// `message` as a call of the signed-in person: their own token, so the
/// services apply their rules and record who acted.
pub fn as_person<T>(session: &Session, message: T) -> Result<tonic::Request<T>, tonic::Status> {
    with_token(message, &session.token).map_err(|error| tonic::Status::internal(error.to_string()))
}

/// The session when its role is one of `roles`; otherwise the answer that
/// turns the visitor away: the sign-in page for nobody, 403 in words for
/// another role (the services would refuse that role too).
pub fn require(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
    for_whom: &str,
) -> Result<Session, Box<Response>> {
    match state.session(headers) {
        Some(session) if roles.contains(&session.role) => Ok(session),
        Some(session) => Err(Box::new(message(
            StatusCode::FORBIDDEN,
            Some(&session),
            "Not for your role",
            &format!("This page is for {for_whom}."),
        ))),
        None => Err(Box::new(see_other("/sign-in"))),
    }
}

/// A form whose CSRF token is not the session's: another site's, or a stale page's.
pub fn forged_form() -> Response {
    message(
        StatusCode::FORBIDDEN,
        None,
        "Form refused",
        "This form did not come from your console page; reload the page and try again.",
    )
}

/// A page of one message (a refusal, a failure, nothing to show).
pub fn message(status: StatusCode, session: Option<&Session>, title: &str, text: &str) -> Response {
    render(
        status,
        &MessagePage {
            who: session.map(Who::of),
            title: title.into(),
            message: text.into(),
        },
    )
}

pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, axum::response::Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A fragment for a live section; an error is logged and shows as nothing.
pub fn render_fragment(fragment: &impl Template) -> String {
    fragment.render().unwrap_or_else(|error| {
        tracing::error!(%error, "cannot render a fragment");
        String::new()
    })
}

/// The HTTP status a refused action's page is answered with.
pub fn status_for(status: &tonic::Status) -> StatusCode {
    match status.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::FailedPrecondition | tonic::Code::Aborted => StatusCode::CONFLICT,
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
