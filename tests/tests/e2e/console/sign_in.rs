//! Sign-in through the city's identity provider: OpenID Connect's
//! authorization-code flow with PKCE, through the real console and suite
//! and an OpenID provider on loopback (`dispatch311_tests::identity_provider`),
//! step by step as a browser follows it. The session's token is the
//! provider's, and the services accept it; a replayed code, a foreign
//! state, a missing or expired flow, a refusal at the provider and an
//! account whose role is not a console role all end on the sign-in page
//! in words, with no session.

use dispatch311_auth::Role;
use dispatch311_tests::{
    identity_provider::{CLIENT_ID, IdentityProvider},
    suite::{Console, Suite, SuiteOptions},
};
use reqwest::{StatusCode, header};

fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// The `name=value` of each `Set-Cookie` of an answer, by name.
fn set_cookies(answer: &reqwest::Response) -> Vec<(String, String)> {
    answer
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_string)
        .map(|cookie| {
            let name = cookie.split('=').next().unwrap_or_default().to_string();
            (name, cookie)
        })
        .collect()
}

fn location(answer: &reqwest::Response) -> String {
    answer.headers()[header::LOCATION]
        .to_str()
        .expect("ASCII")
        .to_string()
}

/// Starts a sign-in for `precinct`: the flow cookie (`name=value`) and the
/// provider's answer to the authorization request (its redirect back).
async fn start(console: &Console, precinct: &str) -> anyhow::Result<(String, reqwest::Response)> {
    let (pairing, token) = console.sign_in_form_token().await?;
    let started = browser()
        .post(format!("{}/sign-in/oidc", console.url))
        .header(header::COOKIE, pairing)
        .form(&[("precinct", precinct), ("csrf", token.as_str())])
        .send()
        .await?;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(&started);
    let (_, flow) = cookies
        .iter()
        .find(|(name, _)| name == "dispatch311-sign-in")
        .expect("the flow's cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(flow.contains(attribute), "{attribute} in {flow}");
    }
    let flow = flow.split(';').next().unwrap().to_string();
    let authorize = location(&started);
    let at_provider = browser().get(&authorize).send().await?;
    Ok((flow, at_provider))
}

async fn callback(
    console: &Console,
    url: &str,
    flow: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    assert!(url.starts_with(&console.url), "back to the console: {url}");
    let mut request = browser().get(url);
    if let Some(flow) = flow {
        request = request.header(header::COOKIE, flow);
    }
    Ok(request.send().await?)
}

#[tokio::test]
async fn a_supervisor_signs_in_at_the_citys_identity_provider_with_pkce() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let provider = IdentityProvider::start(suite.tokens().clone()).await?;
    let console = suite
        .spawn_console_with(&[
            ("DISPATCH311_CONSOLE_OIDC_ISSUER", &provider.issuer),
            ("DISPATCH311_CONSOLE_OIDC_CLIENT_ID", CLIENT_ID),
            ("DISPATCH311_CONSOLE_DEV_SIGN_IN", "false"),
        ])
        .await?;
    provider.register_redirect_uri(&format!("{}/sign-in/callback", console.url));
    provider.sign_in_as("S-14-7", Role::Supervisor);

    // the sign-in page offers the provider only
    let page = browser()
        .get(format!("{}/sign-in", console.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(page.contains("Sign in with your city account"), "{page}");
    assert!(!page.contains("Development only"), "{page}");
    let (pairing, token) = console.sign_in_form_token().await?;
    let dev = browser()
        .post(format!("{}/sign-in", console.url))
        .header(header::COOKIE, pairing)
        .form(&[
            ("role", "supervisor"),
            ("subject", "S-1"),
            ("precinct", "14"),
            ("csrf", token.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(
        dev.status(),
        StatusCode::NOT_FOUND,
        "no development sign-in"
    );

    // to the provider with an S256 challenge and a state; back with a code
    let (flow, at_provider) = start(&console, "14").await?;
    assert_eq!(at_provider.status(), StatusCode::FOUND);
    let back = location(&at_provider);
    assert!(back.contains("code=") && back.contains("state="), "{back}");
    let signed_in = callback(&console, &back, Some(&flow)).await?;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookies = set_cookies(&signed_in);
    let (_, session) = cookies
        .iter()
        .find(|(name, _)| name == "dispatch311-console")
        .expect("a session cookie");
    assert!(session.contains("SameSite=Strict") && session.contains("HttpOnly"));
    let session = session.split(';').next().unwrap().to_string();
    assert!(
        cookies
            .iter()
            .any(|(name, cookie)| name == "dispatch311-sign-in" && cookie.contains("Max-Age=0")),
        "the flow's cookie is cleared: {cookies:?}"
    );
    let body = signed_in.text().await?;
    assert!(body.contains("url=/board"), "moves on to the board: {body}");
    assert_eq!(provider.tokens_issued(), 1);

    // the provider's token is the session's: the board, as that supervisor
    let board = browser()
        .get(format!("{}/board", console.url))
        .header(header::COOKIE, &session)
        .send()
        .await?;
    assert_eq!(board.status(), StatusCode::OK);
    let board = board.text().await?;
    assert!(board.contains("Supervisor S-14-7, precinct 14"), "{board}");
    assert!(
        !board.contains("problem"),
        "dispatch accepted the token: {board}"
    );

    // the same code again: the provider refuses it, no session
    let replayed = callback(&console, &back, Some(&flow)).await?;
    assert_eq!(replayed.status(), StatusCode::FORBIDDEN);
    assert!(
        set_cookies(&replayed)
            .iter()
            .all(|(name, _)| name != "dispatch311-console"),
        "no session for a replayed code"
    );
    assert!(replayed.text().await?.contains("refused the sign-in"));

    // an answer with another state, or without the flow's cookie
    let (flow, at_provider) = start(&console, "14").await?;
    let back = location(&at_provider);
    let foreign = back.replace("state=", "state=x");
    let answer = callback(&console, &foreign, Some(&flow)).await?;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(
        answer
            .text()
            .await?
            .contains("does not belong to your sign-in")
    );
    let answer = callback(&console, &back, None).await?;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(answer.text().await?.contains("start again"));

    // an account of a role the console does not serve
    provider.sign_in_as("test-311-app", Role::Integrator);
    let (flow, at_provider) = start(&console, "14").await?;
    let answer = callback(&console, &location(&at_provider), Some(&flow)).await?;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(
        answer.text().await?.contains("role is integrator"),
        "said in words"
    );

    // the provider refuses (nobody signed in there)
    provider.sign_in_as("nobody", Role::Public);
    let (flow, at_provider) = start(&console, "14").await?;
    let answer = callback(&console, &location(&at_provider), Some(&flow)).await?;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await?.contains("no account is signed in"));
    assert_eq!(
        provider.tokens_issued(),
        2,
        "the supervisor's and the integrator's, nothing for the refused ones"
    );

    drop(console);
    suite.stop().await
}
