//! The console's board through the real binaries, over HTTP as a browser
//! speaks it: sign-in, who may see the board, the live queue, and the
//! headers that keep the session and the page safe.

use std::time::Duration;

use dispatch311_tests::{
    cad::{self, EMPIRE_STATE},
    suite::{Console, Suite, SuiteOptions, free_port},
};
use futures::StreamExt as _;
use reqwest::{StatusCode, header};

/// A client that does not follow redirects (they are what is tested) and
/// keeps no cookies of its own.
fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// Signs in through the development form; the session cookie (`name=value`).
async fn sign_in(
    console: &Console,
    role: &str,
    subject: &str,
    precinct: &str,
) -> anyhow::Result<String> {
    let (pairing, token) = console.sign_in_form_token().await?;
    let answer = browser()
        .post(format!("{}/sign-in", console.url))
        .header(header::COOKIE, pairing)
        .form(&[
            ("role", role),
            ("subject", subject),
            ("precinct", precinct),
            ("csrf", &token),
        ])
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let set_cookie = answer
        .headers()
        .get(header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()?
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    assert!(
        !set_cookie.contains(subject),
        "the cookie is sealed: {set_cookie}"
    );
    Ok(set_cookie.split(';').next().unwrap_or_default().to_string())
}

async fn get(
    console: &Console,
    path: &str,
    cookie: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let mut request = browser().get(format!("{}{path}", console.url));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    Ok(request.send().await?)
}

#[tokio::test]
async fn a_supervisor_sees_the_precincts_queue_and_new_complaints_arrive_live() -> anyhow::Result<()>
{
    let suite = Suite::start(SuiteOptions::default()).await?;
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let console = suite
        .spawn_console_with(&[("DISPATCH311_METRICS_ADDR", &metrics)])
        .await?;
    let first = cad::hydrant_at(&suite, EMPIRE_STATE).await?;
    let cookie = sign_in(&console, "supervisor", "S-900", &first.precinct).await?;

    let board = get(&console, "/board", Some(&cookie)).await?;
    assert_eq!(board.status(), StatusCode::OK);
    let headers = board.headers().clone();
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str()?;
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let trace_id = headers["x-trace-id"].to_str()?;
    assert_eq!(trace_id.len(), 32, "a W3C trace id: {trace_id}");
    let page = board.text().await?;
    assert!(
        page.contains(&first.sr_number),
        "the queued job is on the board"
    );
    assert!(page.contains(&format!("Precinct {}", first.precinct)));
    assert!(page.contains("Blocked Hydrant"));

    // the live queue: the table now, then again when a complaint arrives
    let live = get(&console, "/board/live", Some(&cookie)).await?;
    assert_eq!(live.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut events = live.bytes_stream();
    let mut seen = String::new();
    let first_event = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains("\n\n") {
            seen.push_str(&String::from_utf8_lossy(
                &events.next().await.expect("a first event")?,
            ));
        }
        anyhow::Ok(())
    })
    .await;
    first_event??;
    assert!(
        seen.contains("event: update") && seen.contains(&first.sr_number),
        "{seen}"
    );

    let second = cad::hydrant_at(&suite, cad::offset(EMPIRE_STATE, 40.0, 0.0)).await?;
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(&second.sr_number) {
            seen.push_str(&String::from_utf8_lossy(
                &events.next().await.expect("more events")?,
            ));
        }
        anyhow::Ok(())
    })
    .await;
    assert!(
        arrived.is_ok(),
        "the new complaint reached the open board without a reload"
    );

    // the console's RED metrics, by route template: no SR number, no id
    let scraped = browser()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let board_count = scraped
        .lines()
        .find(|line| {
            line.starts_with("http_server_request_duration_seconds_count")
                && line.contains(r#"http_route="/board""#)
                && line.contains(r#"http_response_status_code="200""#)
        })
        .unwrap_or_else(|| panic!("the board's requests are counted:\n{scraped}"));
    assert!(board_count.ends_with(" 1"), "{board_count}");
    assert!(!scraped.contains(&first.sr_number) && !scraped.contains(&first.job_id));
    drop(console);
    suite.stop().await
}

#[tokio::test]
async fn the_board_turns_away_the_signed_out_an_officer_and_a_forged_cookie() -> anyhow::Result<()>
{
    let suite = Suite::start(SuiteOptions::only(&[
        dispatch311_tests::suite::Service::Dispatch,
    ]))
    .await?;
    let console = suite.spawn_console().await?;

    let signed_out = get(&console, "/board", None).await?;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_out.headers()[header::LOCATION], "/sign-in");
    let sign_in_page = get(&console, "/sign-in", None).await?.text().await?;
    assert!(sign_in_page.contains("Development only"));

    let officer = sign_in(&console, "officer", "badge-4411", "14").await?;
    let refused = get(&console, "/board", Some(&officer)).await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await?
            .contains("for dispatchers and supervisors")
    );
    let live = get(&console, "/board/live", Some(&officer)).await?;
    assert_eq!(live.status(), StatusCode::FORBIDDEN);

    // a cookie this console did not seal, or one edited, is nobody
    let supervisor = sign_in(&console, "supervisor", "S-900", "14").await?;
    let (name, value) = supervisor.split_once('=').expect("name=value");
    let mut edited = value.to_string().into_bytes();
    edited[20] = if edited[20] == b'A' { b'B' } else { b'A' };
    for forged in [
        format!("{name}=bm90IGEgc2Vzc2lvbg"),
        format!("{name}={}", String::from_utf8(edited)?),
    ] {
        let answer = get(&console, "/board", Some(&forged)).await?;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{forged}");
        assert_eq!(answer.headers()[header::LOCATION], "/sign-in");
    }

    // signing out needs the page's form token
    let forged_sign_out = browser()
        .post(format!("{}/sign-out", console.url))
        .header(header::COOKIE, &supervisor)
        .form(&[("csrf", "guessed")])
        .send()
        .await?;
    assert_eq!(forged_sign_out.status(), StatusCode::FORBIDDEN);

    // a sign-in form posted from elsewhere (no token paired with the browser)
    let forged_sign_in = browser()
        .post(format!("{}/sign-in", console.url))
        .form(&[
            ("role", "supervisor"),
            ("subject", "S-900"),
            ("precinct", "14"),
        ])
        .send()
        .await?;
    assert_eq!(forged_sign_in.status(), StatusCode::FORBIDDEN);
    assert!(forged_sign_in.headers().get(header::SET_COOKIE).is_none());

    // a role the form does not offer, a precinct that is not a number
    for (role, precinct) in [("admin", "14"), ("supervisor", "14; DROP")] {
        let (pairing, token) = console.sign_in_form_token().await?;
        let refused = browser()
            .post(format!("{}/sign-in", console.url))
            .header(header::COOKIE, pairing)
            .form(&[
                ("role", role),
                ("subject", "S-900"),
                ("precinct", precinct),
                ("csrf", &token),
            ])
            .send()
            .await?;
        assert_eq!(
            refused.status(),
            StatusCode::BAD_REQUEST,
            "{role} {precinct}"
        );
        assert!(
            refused
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .all(|cookie| !cookie
                    .to_str()
                    .unwrap_or_default()
                    .starts_with("dispatch311-console=")),
            "no session"
        );
    }
    drop(console);
    suite.stop().await
}
