//! The console in a real browser: Debian's Chromium, driven by Playwright
//! (tests/browser/console_flow.py), against the real suite and console. A
//! supervisor watches a complaint arrive on the board, sends the recommended
//! unit (the one on a 911 job is never offered); the officer's phone gets it
//! live, acknowledges, goes en route and on scene (with the browser's
//! position), is refused in words closing a police matter as outside
//! jurisdiction and closing before opening the photo, opens it and closes;
//! the supervisor sees the job closed and its timeline verified, the fast
//! closure on the review list, a waiting job's SLA clock turn overdue; an
//! officer on the board, a signed-out visitor and forged or expired cookies
//! are turned away. Screenshots go to `$CARGO_TARGET_TMPDIR/console-screenshots`.
//!
//! `make test` installs Chromium and Playwright first
//! (deploy/ensure-browser.sh); run alone, the test runs that script itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use dispatch311_auth::Role;
use dispatch311_console::session::{Session, SessionKey};
use dispatch311_proto::{
    dispatch::v1::{EventType, FlagKind, JobState, ReportUnitStatusRequest, UnitStatus},
    intake::v1::UploadPhotoRequest,
};
use dispatch311_tests::{
    cad::{
        EMPIRE_STATE, complaint, get_job, has_flag, hydrant_at, officer, offset, register_unit,
        timeline, wait_for_job,
    },
    picture,
    suite::{Suite, SuiteOptions},
};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const PRECINCT: &str = "14";
const OFFICER: &str = "O-14-31";
const UNIT: &str = "14-ADAM-31";
const EMERGENCY_UNIT: &str = "14-BOY-911";
/// Every job's SLA: long enough for the board to show it counting down,
/// short enough to watch it run out within the test.
const SLA_SECS: &str = "45";
/// The whole browser run, at most.
const BROWSER_RUN: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_complaint_goes_from_the_board_to_the_officers_phone_and_back_in_a_real_browser()
-> anyhow::Result<()> {
    let python = browser_python()?;
    let suite = Suite::start(SuiteOptions {
        env: vec![("DISPATCH311_SLA_OVERRIDE_SECS".into(), SLA_SECS.into())],
        ..SuiteOptions::default()
    })
    .await?;
    let console = suite.spawn_console().await?;
    let dispatch = suite.dispatch().await?;

    // the officer's unit a few blocks away; a unit on a 911 job right at the place
    let unit = register_unit(
        &dispatch,
        UNIT,
        PRECINCT,
        &[OFFICER],
        offset(EMPIRE_STATE, 300.0, 0.0),
    )
    .await?;
    let emergency = register_unit(
        &dispatch,
        EMERGENCY_UNIT,
        PRECINCT,
        &["O-14-32"],
        offset(EMPIRE_STATE, 20.0, 0.0),
    )
    .await?;
    dispatch
        .clone()
        .report_unit_status(ReportUnitStatusRequest {
            actor: officer("O-14-32"),
            unit_id: emergency.unit_id.clone(),
            status: UnitStatus::BusyEmergency as i32,
            position: None,
        })
        .await?;
    // a job nobody takes: its SLA clock runs out while the browser watches
    let waiting = hydrant_at(&suite, offset(EMPIRE_STATE, -400.0, 0.0)).await?;

    // an expired session, sealed with the console's own key
    let expired = Session::new(
        "not-a-live-token".into(),
        Role::Supervisor,
        "S-14-1".into(),
        PRECINCT.into(),
        chrono::Utc::now().timestamp() - 60,
    )
    .seal(&SessionKey::new(console.session_key));

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/console_flow.py");
    let mut browser = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--url", &console.url])
        .args(["--precinct", PRECINCT])
        .args(["--supervisor", "S-14-1"])
        .args(["--officer", OFFICER])
        .args(["--unit", UNIT])
        .args(["--emergency-unit", EMERGENCY_UNIT])
        .args(["--waiting-job", &waiting.job_id])
        .args(["--latitude", &EMPIRE_STATE.latitude.to_string()])
        .args(["--longitude", &EMPIRE_STATE.longitude.to_string()])
        // `=`: a sealed cookie may start with '-'
        .arg(format!("--expired-cookie={expired}"))
        .args(["--cookie-name", "dispatch311-console"])
        .arg("--artifacts")
        .arg(&artifacts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", script.display()))?;
    let mut to_browser = browser.stdin.take().expect("piped");
    let mut from_browser = BufReader::new(browser.stdout.take().expect("piped")).lines();
    let mut stderr = browser.stderr.take().expect("piped");

    let mut filed = None;
    let mut steps = Vec::new();
    let mut done = false;
    let run = async {
        while let Some(line) = from_browser.next_line().await? {
            match line.as_str() {
                "need complaint" => {
                    let job = file_with_photo(&suite).await?;
                    to_browser
                        .write_all(format!("sr {}\n", job.sr_number).as_bytes())
                        .await?;
                    to_browser.flush().await?;
                    filed = Some(job);
                }
                "done" => done = true,
                step => steps.push(step.to_string()),
            }
        }
        anyhow::Ok(())
    };
    let ran = tokio::time::timeout(BROWSER_RUN, run).await;
    let status = browser.wait().await?;
    let mut errors = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut errors).await?;
    let console_log = std::fs::read_to_string(&console.log_path).unwrap_or_default();
    anyhow::ensure!(
        matches!(ran, Ok(Ok(()))) && status.success() && done,
        "the browser run failed ({status}, {ran:?}) after:\n{}\n\nits output:\n{errors}\n\nthe console's log:\n{}",
        steps.join("\n"),
        console_log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // what the browser did is what dispatch recorded, by the people who did it
    let job = filed.context("the browser never asked for a complaint")?;
    let closed = get_job(&dispatch, &job.job_id).await?;
    assert_eq!(closed.state, JobState::Closed as i32);
    assert_eq!(closed.unit_id, unit.unit_id);
    assert!(has_flag(&closed, FlagKind::FastClosure), "{closed:?}");
    let events = timeline(&dispatch, &job.job_id).await?;
    let by = |kind: EventType| {
        events
            .iter()
            .filter(|event| event.r#type == kind as i32)
            .map(|event| event.actor.clone().unwrap_or_default().id)
            .collect::<Vec<_>>()
    };
    assert_eq!(by(EventType::Assigned), ["S-14-1"]);
    for kind in [
        EventType::Acknowledged,
        EventType::EnRoute,
        EventType::OnScene,
        EventType::EvidenceViewed,
        EventType::Closed,
    ] {
        assert_eq!(by(kind), [OFFICER], "{kind:?} by the officer, once");
    }
    let on_scene = events
        .iter()
        .find(|event| event.r#type == EventType::OnScene as i32)
        .and_then(|event| event.position)
        .context("on scene carries the browser's position")?;
    assert!((on_scene.latitude - EMPIRE_STATE.latitude).abs() < 1e-4);
    // the two refused closes changed nothing
    assert_eq!(by(EventType::Closed).len(), 1);
    for shot in [
        "board.png",
        "officer.png",
        "officer-refused.png",
        "job.png",
        "review.png",
    ] {
        let size = std::fs::metadata(artifacts.join(shot))
            .with_context(|| format!("screenshot {shot}"))?
            .len();
        assert!(size > 10_000, "{shot} is a real screenshot ({size} bytes)");
    }
    println!("screenshots: {}", artifacts.display());
    drop(console);
    suite.stop().await
}

/// A hydrant complaint at the Empire State Building with a photo, filed as
/// the 311 app does; waits for its job in the queue.
async fn file_with_photo(suite: &Suite) -> anyhow::Result<dispatch311_proto::dispatch::v1::Job> {
    let mut app = suite.intake().await?;
    let photo = app
        .upload_photo(UploadPhotoRequest {
            content: picture::street_png(),
        })
        .await?
        .into_inner();
    let mut request = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    request.photo_ids = vec![photo.photo_id];
    let sr = app
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .context("intake answers with the request")?;
    wait_for_job(&suite.dispatch().await?, &sr.sr_number).await
}

/// The Python with Playwright: `DISPATCH311_BROWSER_PYTHON` (make test sets
/// it up), else what deploy/ensure-browser.sh installs and prints.
fn browser_python() -> anyhow::Result<PathBuf> {
    if let Ok(python) = std::env::var("DISPATCH311_BROWSER_PYTHON") {
        return Ok(python.into());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ensure-browser.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed: Chromium and Playwright are needed",
        script.display()
    );
    let python = String::from_utf8(output.stdout)?.trim().to_string();
    anyhow::ensure!(!python.is_empty(), "ensure-browser.sh printed no python");
    Ok(python.into())
}
