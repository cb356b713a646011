//! An OpenID Connect provider for the console's sign-in tests: discovery,
//! the authorization endpoint and the token endpoint of the
//! authorization-code flow with PKCE, on a loopback port. It plays a city's
//! provider where one person is already signed in (single sign-on): the
//! authorization endpoint checks the request as a provider must (client,
//! registered redirect URI, `response_type=code`, an S256 challenge) and
//! sends the browser back with a one-time code; the token endpoint gives
//! the access token only for that code, that redirect URI and the verifier
//! whose SHA-256 is the challenge. The access token is signed with the
//! suite's key, as the city's provider signs the tokens the services trust.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::{
    Form, Router,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine as _;
use dispatch311_auth::Role;
use serde::Deserialize;
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;

use crate::suite::Tokens;

pub const CLIENT_ID: &str = "dispatch311-console";

/// The provider, serving until dropped.
pub struct IdentityProvider {
    /// `http://127.0.0.1:<port>`: the issuer.
    pub issuer: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

struct Shared {
    issuer: String,
    /// The client's registered redirect URI (set once the console has its port).
    redirect_uri: Mutex<String>,
    tokens: Tokens,
    /// Who is signed in at the provider (subject, role).
    person: Mutex<(String, Role)>,
    /// Codes handed out and not yet used.
    codes: Mutex<HashMap<String, Grant>>,
    /// How many codes were exchanged for a token.
    exchanged: Mutex<u32>,
}

/// What a code stands for until it is exchanged.
struct Grant {
    challenge: String,
    redirect_uri: String,
    subject: String,
    role: Role,
}

impl IdentityProvider {
    /// Serves on a free loopback port; no redirect URI is registered yet.
    pub async fn start(tokens: Tokens) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address: SocketAddr = listener.local_addr()?;
        let issuer = format!("http://{address}");
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            redirect_uri: Mutex::new(String::new()),
            tokens,
            person: Mutex::new(("nobody".into(), Role::Public)),
            codes: Mutex::new(HashMap::new()),
            exchanged: Mutex::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(shared.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
        });
        Ok(Self {
            issuer,
            shared,
            stop,
        })
    }

    /// Registers the console's redirect URI (its `/sign-in/callback`).
    pub fn register_redirect_uri(&self, uri: &str) {
        *self.shared.redirect_uri.lock().unwrap() = uri.to_string();
    }

    /// Who the provider signs in from now on.
    pub fn sign_in_as(&self, subject: &str, role: Role) {
        *self.shared.person.lock().unwrap() = (subject.to_string(), role);
    }

    /// How many codes were exchanged for tokens.
    pub fn tokens_issued(&self) -> u32 {
        *self.shared.exchanged.lock().unwrap()
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A JSON answer (the provider's documents and token answers).
fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({
            "issuer": shared.issuer,
            "authorization_endpoint": format!("{}/authorize", shared.issuer),
            "token_endpoint": format!("{}/token", shared.issuer),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
        }),
    )
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    // a bad client or redirect URI is never redirected to (RFC 6749 4.1.2.1)
    if query.client_id != CLIENT_ID || query.redirect_uri != *shared.redirect_uri.lock().unwrap() {
        return (StatusCode::BAD_REQUEST, "unknown client or redirect URI").into_response();
    }
    let back = |pairs: &[(&str, &str)]| {
        let mut url = reqwest::Url::parse(&query.redirect_uri).expect("a registered URI parses");
        url.query_pairs_mut().extend_pairs(pairs);
        (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
    };
    let challenge = match (
        &query.code_challenge,
        query.code_challenge_method.as_deref(),
    ) {
        (Some(challenge), Some("S256")) if challenge.len() == 43 => challenge.clone(),
        _ => {
            return back(&[
                ("error", "invalid_request"),
                ("error_description", "PKCE with S256 is required"),
                ("state", &query.state),
            ]);
        }
    };
    if query.response_type != "code" {
        return back(&[
            ("error", "unsupported_response_type"),
            ("state", &query.state),
        ]);
    }
    let person = shared.person.lock().unwrap().clone();
    if person.1 == Role::Public {
        return back(&[
            ("error", "access_denied"),
            ("error_description", "no account is signed in"),
            ("state", &query.state),
        ]);
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    shared.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge,
            redirect_uri: query.redirect_uri.clone(),
            subject: person.0,
            role: person.1,
        },
    );
    back(&[("code", &code), ("state", &query.state)])
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    code_verifier: String,
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<TokenForm>) -> Response {
    let refused = |error: &str, description: &str| {
        json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": error, "error_description": description }),
        )
    };
    if form.grant_type != "authorization_code" || form.client_id != CLIENT_ID {
        return refused("unauthorized_client", "unknown client or grant");
    }
    // a code is used once, whatever happens next
    let Some(Grant {
        challenge,
        redirect_uri,
        subject,
        role,
    }) = shared.codes.lock().unwrap().remove(&form.code)
    else {
        return refused("invalid_grant", "unknown or used code");
    };
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(form.code_verifier.as_bytes()));
    if computed != challenge {
        return refused(
            "invalid_grant",
            "the code verifier does not match the challenge",
        );
    }
    if redirect_uri != form.redirect_uri {
        return refused("invalid_grant", "another redirect URI");
    }
    *shared.exchanged.lock().unwrap() += 1;
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": shared.tokens.mint(role, &subject),
            "token_type": "Bearer",
            "expires_in": 3600,
        }),
    )
}
