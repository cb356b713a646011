//! Complainant contacts sealed at rest, end to end with the real binaries:
//! a contact filed through intake is nowhere in the database in plain text
//! (every column of every table is searched), yet the release RPC still
//! returns it; a sealed contact copied into another request's row does not
//! open; and rotating the key (`dispatch311-intake rekey`) re-seals every
//! contact so the old key can be retired. And the canary: a complainant's
//! name, phone and e-mail, also written into the description, filed and
//! carried through the whole lifecycle and the survey, are then found nowhere
//! but in intake's sealed storage — not in any schema, Redis command or key,
//! exported span, or log.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use dispatch311_auth::Role;
use dispatch311_proto::{
    common::v1::{ResolutionCode, ServiceRequestStatus},
    intake::v1::{
        Complainant, CreateServiceRequestRequest, ListContactReleasesRequest,
        ReleaseComplainantContactRequest, ReleasePurpose, ServiceRequest,
        intake_service_client::IntakeServiceClient,
    },
    survey::v1::{Agreement, ConditionCorrected, DissatisfactionReason, GetSurveyContactRequest},
};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, complaint, register_unit, wait_for_job, wait_for_sr_status},
    otlp::OtlpReceiver,
    suite::{AuthChannel, CONTACT_KEYS_VAR, Service, Suite, SuiteOptions, random_contact_key},
    survey::{Poller, answer, close_at_scene, closure_of},
};
use futures::StreamExt as _;
use sqlx::PgPool;
use tonic::Code;

type Intake = IntakeServiceClient<AuthChannel>;

/// Schemas whose tables must never hold a contact in plain text: intake's
/// own (where it is sealed) and every other service's (the survey passes a
/// consented contact through, never stores it).
const SCHEMAS: [&str; 4] = ["intake", "routing", "dispatch", "survey"];

/// A complainant no other test files: a name, phone and e-mail that cannot
/// appear anywhere by chance.
fn canary(consent_to_contact: bool) -> Complainant {
    let id = uuid::Uuid::new_v4();
    let tag = &id.simple().to_string()[..12];
    let digits = id.as_u128() % 10_000_000;
    Complainant {
        name: format!("Canary Complainant {tag}"),
        phone: format!("+1 917 {digits:07}"),
        email: format!("canary.{tag}@example.org"),
        consent_to_contact,
    }
}

fn filed_by(complainant: &Complainant) -> CreateServiceRequestRequest {
    let mut request = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
    request.complainant = Some(complainant.clone());
    request
}

async fn file(
    intake: &Intake,
    request: CreateServiceRequestRequest,
) -> anyhow::Result<ServiceRequest> {
    Ok(intake
        .clone()
        .create_service_request(request)
        .await?
        .into_inner()
        .service_request
        .expect("intake answers with the request"))
}

async fn release(intake: &Intake, sr_number: &str) -> Result<Complainant, tonic::Status> {
    Ok(intake
        .clone()
        .release_complainant_contact(ReleaseComplainantContactRequest {
            sr_number: sr_number.to_string(),
            purpose: ReleasePurpose::SatisfactionSurvey as i32,
        })
        .await?
        .into_inner()
        .complainant
        .expect("the released contact"))
}

/// What to look for: each contact detail as text, and as the hex a `bytea`
/// column prints, so a detail stored as bytes is found too.
fn needles(complainant: &Complainant) -> Vec<String> {
    let digits: String = complainant
        .phone
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let details = [
        complainant.name.clone(),
        complainant.phone.clone(),
        digits,
        complainant.email.clone(),
    ];
    details
        .iter()
        .flat_map(|detail| {
            let hex: String = detail.bytes().map(|b| format!("{b:02x}")).collect();
            [detail.clone(), hex]
        })
        .collect()
}

/// Every row of every table of `SCHEMAS` as text, by `schema.table`.
async fn every_row(db: &PgPool) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables \
         WHERE table_schema = ANY($1) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
    )
    .bind(&SCHEMAS[..])
    .fetch_all(db)
    .await?;
    let mut rows = BTreeMap::new();
    for (schema, table) in tables {
        let quoted = format!("\"{schema}\".\"{}\"", table.replace('"', "\"\""));
        let text: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM {quoted} t"
        )))
        .fetch_all(db)
        .await?;
        rows.insert(format!("{schema}.{table}"), text);
    }
    Ok(rows)
}

/// Asserts that no table holds any detail of `complainant`; returns how many
/// rows were searched.
async fn assert_nowhere_in_database(
    db: &PgPool,
    complainant: &Complainant,
) -> anyhow::Result<usize> {
    let rows = every_row(db).await?;
    assert!(
        rows.contains_key("intake.complainant_contacts") && rows.contains_key("intake.outbox"),
        "intake's tables are searched: {:?}",
        rows.keys().collect::<Vec<_>>()
    );
    let mut searched = 0;
    for (table, texts) in &rows {
        for text in texts {
            searched += 1;
            for needle in needles(complainant) {
                assert!(
                    !text.to_lowercase().contains(&needle.to_lowercase()),
                    "{table} holds a contact detail in plain text: {text}"
                );
            }
        }
    }
    Ok(searched)
}

/// key_id and sealed value of each stored contact, by request id.
async fn sealed_contacts(db: &PgPool) -> anyhow::Result<BTreeMap<uuid::Uuid, (String, Vec<u8>)>> {
    let rows: Vec<(uuid::Uuid, String, Vec<u8>)> =
        sqlx::query_as("SELECT sr_id, key_id, sealed FROM intake.complainant_contacts")
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(sr_id, key_id, sealed)| (sr_id, (key_id, sealed)))
        .collect())
}

fn key_ids(contacts: &BTreeMap<uuid::Uuid, (String, Vec<u8>)>) -> Vec<&str> {
    contacts
        .values()
        .map(|(key_id, _)| key_id.as_str())
        .collect()
}

#[tokio::test]
async fn a_filed_contact_is_nowhere_in_the_database_in_plain_text_yet_released_on_request()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let intake = suite.intake().await?;
    let surveys = suite
        .intake_as(Role::SurveySystem, "city-311-surveys")
        .await?;
    let db = suite.database().await?;

    let consenting = canary(true);
    let declining = canary(false);
    let sr = file(&intake, filed_by(&consenting)).await?;
    let other = file(&intake, filed_by(&declining)).await?;

    // at once, while the route job may still wait in the outbox
    assert_nowhere_in_database(&db, &consenting).await?;
    assert_nowhere_in_database(&db, &declining).await?;

    // what is stored: the suite's key id, a sealed value, consent in plain text
    let (key_id, sealed, consent): (String, Vec<u8>, bool) = sqlx::query_as(
        "SELECT key_id, sealed, consent_to_contact FROM intake.complainant_contacts WHERE sr_id = $1::uuid",
    )
    .bind(&sr.sr_id)
    .fetch_one(&db)
    .await?;
    assert_eq!(key_id, "suite");
    assert!(consent);
    assert!(sealed.len() > 12 + 16, "{} bytes", sealed.len());

    // after routing and dispatch handled it, and after a release was recorded
    wait_for_job(&suite.dispatch().await?, &sr.sr_number).await?;
    let released = release(&surveys, &sr.sr_number).await?;
    assert_eq!(released, consenting);
    let refused = release(&surveys, &other.sr_number).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let searched = assert_nowhere_in_database(&db, &consenting).await?;
    assert_nowhere_in_database(&db, &declining).await?;
    assert!(searched >= 8, "only {searched} rows searched");

    // nor in any service's log
    for service in Service::ALL {
        let log = std::fs::read_to_string(suite.log_path(service)).unwrap_or_default();
        for needle in needles(&consenting).iter().chain(&needles(&declining)) {
            assert!(
                !log.contains(needle.as_str()),
                "{} logged a contact detail: {needle}",
                service.name()
            );
        }
    }
    suite.stop().await
}

#[tokio::test]
async fn a_sealed_contact_copied_to_another_request_does_not_open_and_nothing_is_released()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::only(&[Service::Intake])).await?;
    let intake = suite.intake().await?;
    let surveys = suite
        .intake_as(Role::SurveySystem, "city-311-surveys")
        .await?;
    let db = suite.database().await?;

    let victim = canary(true);
    let victim_sr = file(&intake, filed_by(&victim)).await?;
    let other_sr = file(&intake, filed_by(&canary(true))).await?;

    // someone with write access to the table moves one contact onto another request
    sqlx::query(
        "UPDATE intake.complainant_contacts SET sealed = (SELECT sealed FROM intake.complainant_contacts \
         WHERE sr_id = $1::uuid) WHERE sr_id = $2::uuid",
    )
    .bind(&victim_sr.sr_id)
    .bind(&other_sr.sr_id)
    .execute(&db)
    .await?;

    let status = release(&surveys, &other_sr.sr_number).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    for needle in needles(&victim) {
        assert!(!status.message().contains(&needle), "{status:?}");
    }
    // nothing left intake, so no release is recorded
    let recorded = suite
        .intake_as(Role::Auditor, "oversight-7")
        .await?
        .list_contact_releases(ListContactReleasesRequest {
            sr_number: other_sr.sr_number.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(recorded.releases.is_empty(), "{recorded:?}");

    // the log names the request and the key, and not what was sealed
    let log = std::fs::read_to_string(suite.log_path(Service::Intake))?;
    let line = log
        .lines()
        .find(|line| line.contains("cannot open the complainant contact"))
        .unwrap_or_else(|| {
            panic!(
                "the failure is logged:\n{}",
                suite.log_tail(Service::Intake, 20)
            )
        });
    assert!(line.contains(&other_sr.sr_id), "{line}");
    assert!(line.contains("key suite"), "{line}");
    for needle in needles(&victim) {
        assert!(!log.contains(&needle), "intake logged {needle}");
    }

    // the victim's own row still opens
    assert_eq!(release(&surveys, &victim_sr.sr_number).await?, victim);
    suite.stop().await
}

#[tokio::test]
async fn rekey_reseals_every_contact_under_the_new_key_so_the_old_one_can_be_retired()
-> anyhow::Result<()> {
    let k1 = random_contact_key("k1");
    let k2 = random_contact_key("k2");
    let mut suite = Suite::start(SuiteOptions {
        services: vec![Service::Intake],
        env: vec![(CONTACT_KEYS_VAR.to_string(), k1.clone())],
        ..Default::default()
    })
    .await?;
    let db = suite.database().await?;

    // five consenting complainants, one who declined, one anonymous: six contacts under k1
    let mut filed = Vec::new();
    {
        let intake = suite.intake().await?;
        for _ in 0..5 {
            let complainant = canary(true);
            let sr = file(&intake, filed_by(&complainant)).await?;
            filed.push((sr.sr_number, complainant));
        }
        file(&intake, filed_by(&canary(false))).await?;
        let mut anonymous = complaint("Illegal Parking", "Blocked Hydrant", EMPIRE_STATE);
        anonymous.complainant = None;
        file(&intake, anonymous).await?;
    }
    let under_k1 = sealed_contacts(&db).await?;
    assert_eq!(key_ids(&under_k1), ["k1"; 6]);

    // retiring k1 before its contacts are re-sealed is refused at start
    assert!(suite.terminate(Service::Intake).await?);
    suite.set_env(CONTACT_KEYS_VAR, &k2);
    let refused = suite
        .restart(Service::Intake)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("complainant contacts are sealed under key ids k1 that DISPATCH311_CONTACT_KEYS does not hold"),
        "{refused}"
    );

    // rotation: k2 first, k1 kept to open what it sealed
    suite.set_env(CONTACT_KEYS_VAR, &format!("{k2},{k1}"));
    suite.restart(Service::Intake).await?;
    let intake = suite.intake().await?;
    let surveys = suite
        .intake_as(Role::SurveySystem, "city-311-surveys")
        .await?;
    let newcomer = canary(true);
    let newcomer_sr = file(&intake, filed_by(&newcomer)).await?;
    let (key_id,): (String,) =
        sqlx::query_as("SELECT key_id FROM intake.complainant_contacts WHERE sr_id = $1::uuid")
            .bind(&newcomer_sr.sr_id)
            .fetch_one(&db)
            .await?;
    assert_eq!(key_id, "k2", "new contacts are sealed under the first key");
    for (sr_number, complainant) in &filed {
        assert_eq!(&release(&surveys, sr_number).await?, complainant);
    }

    // batches of two, each its own transaction: three of the six contacts
    // under k1, four of the seven descriptions under k1
    let output = suite
        .run_command(Service::Intake, &["rekey", "--batch-size", "2"])
        .await?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "re-encrypted 6 complainant contacts and 7 descriptions under key k2 (7 batches)"
    );
    let under_k2 = sealed_contacts(&db).await?;
    assert_eq!(key_ids(&under_k2), ["k2"; 7]);
    let description_keys: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT key_id FROM intake.sealed_descriptions")
            .fetch_all(&db)
            .await?;
    assert_eq!(description_keys, ["k2"]);
    for (sr_id, (_, old)) in &under_k1 {
        assert_ne!(&under_k2[sr_id].1, old, "{sr_id} was re-sealed");
    }

    // once more changes nothing
    let again = suite.run_command(Service::Intake, &["rekey"]).await?;
    assert!(again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "re-encrypted 0 complainant contacts and 0 descriptions under key k2 (0 batches)"
    );
    assert_eq!(sealed_contacts(&db).await?, under_k2);

    // k1 retired: intake starts with k2 alone and every contact still opens
    assert!(suite.terminate(Service::Intake).await?);
    suite.set_env(CONTACT_KEYS_VAR, &k2);
    suite.restart(Service::Intake).await?;
    let surveys = suite
        .intake_as(Role::SurveySystem, "city-311-surveys")
        .await?;
    for (sr_number, complainant) in &filed {
        assert_eq!(&release(&surveys, sr_number).await?, complainant);
    }
    assert_eq!(release(&surveys, &newcomer_sr.sr_number).await?, newcomer);
    for (_, complainant) in &filed {
        assert_nowhere_in_database(&db, complainant).await?;
    }
    suite.stop().await
}

#[tokio::test]
async fn intake_refuses_to_start_without_contact_keys() -> anyhow::Result<()> {
    let mut suite = Suite::start(SuiteOptions::default()).await?;
    assert!(suite.terminate(Service::Intake).await?);
    for (keys, expected) in [
        ("", "DISPATCH311_CONTACT_KEYS holds no key"),
        (
            "k1:c2hvcnQ=",
            "DISPATCH311_CONTACT_KEYS key k1 is not 32 bytes in base64",
        ),
    ] {
        suite.set_env(CONTACT_KEYS_VAR, keys);
        let refused = suite
            .restart(Service::Intake)
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains(expected), "{refused}");
        assert!(
            !refused.contains("c2hvcnQ"),
            "the key is not echoed: {refused}"
        );
    }
    suite.stop().await
}

/// Every Redis command the suite runs, as MONITOR prints it (payloads
/// included), from the moment this is called: what passes through a stream
/// and is deleted after its ack is seen too.
async fn watch_redis(suite: &Suite) -> anyhow::Result<Arc<Mutex<Vec<String>>>> {
    let client = redis::Client::open(suite.redis_url.as_str())?;
    let monitor = client.get_async_monitor().await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (prefix, lines) = (suite.redis_prefix.clone(), seen.clone());
    tokio::spawn(async move {
        let mut commands = monitor.into_on_message::<String>();
        while let Some(line) = commands.next().await {
            // other tests share the server; this suite's keys carry its prefix
            if line.contains(&prefix) {
                lines.lock().unwrap().push(line);
            }
        }
    });
    Ok(seen)
}

/// Every value under the suite's Redis prefix, whatever its type.
async fn redis_contents(suite: &Suite) -> anyhow::Result<Vec<String>> {
    let client = redis::Client::open(suite.redis_url.as_str())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", suite.redis_prefix))
        .query_async(&mut redis)
        .await?;
    let mut contents = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut redis).await?;
        let mut read = match kind.as_str() {
            "stream" => redis::cmd("XRANGE"),
            "zset" => redis::cmd("ZRANGE"),
            "hash" => redis::cmd("HGETALL"),
            "list" => redis::cmd("LRANGE"),
            "set" => redis::cmd("SMEMBERS"),
            _ => redis::cmd("GET"),
        };
        read.arg(&key);
        match kind.as_str() {
            "stream" => {
                read.arg("-").arg("+");
            }
            "zset" | "list" => {
                read.arg(0).arg(-1);
            }
            _ => {}
        }
        let value: redis::Value = read.query_async(&mut redis).await?;
        contents.push(format!("{key} ({kind}): {value:?}"));
    }
    Ok(contents)
}

/// Fails if any of `texts` (from `place`) holds a detail of `complainant`.
fn assert_absent<'a>(
    place: &str,
    texts: impl IntoIterator<Item = &'a String>,
    complainant: &Complainant,
) {
    let needles = needles(complainant);
    for text in texts {
        // MONITOR escapes bytes as \xNN; the details are printable ASCII
        let text = text.to_lowercase();
        for needle in &needles {
            assert!(
                !text.contains(&needle.to_lowercase()),
                "{place} holds a contact detail ({needle}): {text}"
            );
        }
    }
}

#[tokio::test]
async fn the_canary_is_nowhere_but_in_intakes_sealed_storage_after_the_whole_lifecycle()
-> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let suite = Suite::start(SuiteOptions {
        otlp_endpoint: Some(receiver.endpoint()),
        ..Default::default()
    })
    .await?;
    let redis_commands = watch_redis(&suite).await?;
    let db = suite.database().await?;
    let dispatch = suite.dispatch().await?;
    let mut survey = suite.survey().await?;

    // the complainant names themself in the description too
    let canary = canary(true);
    let mut request = filed_by(&canary);
    // and writes a second address so that filters miss it, as the tester did
    let dodge = format!(
        "qz{}",
        uuid::Uuid::new_v4().simple().to_string()[..8].replace(char::is_numeric, "k")
    );
    request.description = format!(
        "This is {} again, the truck is still on the hydrant. Call me at {} or write to {}, \
         or to {dodge} at canary-mail.example.",
        canary.name, canary.phone, canary.email
    );
    let sr = file(&suite.intake().await?, request).await?;

    // the whole lifecycle: routed, queued, worked, closed, surveyed
    let job = wait_for_job(&dispatch, &sr.sr_number).await?;
    assert!(
        !job.description.contains(&canary.email)
            && !job.description.contains(&dodge)
            && !job.description.contains("canary-mail")
            && job.description.contains("[redacted"),
        "responders read the redacted description: {:?}",
        job.description
    );
    let unit = register_unit(&dispatch, "14-CANARY-1", "14", &["O-14-77"], EMPIRE_STATE).await?;
    close_at_scene(
        &dispatch,
        &job,
        &unit,
        "O-14-77",
        ResolutionCode::NoEvidence,
    )
    .await?;
    wait_for_sr_status(&suite, &sr.sr_number, ServiceRequestStatus::Closed).await?;
    let mut poller = Poller::new(survey.clone(), 100);
    let closure = poller
        .wait_for(&sr.sr_number, closure_of(&sr.sr_number, 1))
        .await?;
    let contact = survey
        .get_survey_contact(GetSurveyContactRequest {
            survey_token: closure.survey_token.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(
        (
            contact.name.as_str(),
            contact.phone.as_str(),
            contact.email.as_str()
        ),
        (
            canary.name.as_str(),
            canary.phone.as_str(),
            canary.email.as_str()
        ),
        "the survey path still reaches the consenting complainant"
    );
    survey
        .submit_survey_response(answer(
            &closure.survey_token,
            Agreement::Agree,
            DissatisfactionReason::Unspecified,
            ConditionCorrected::Yes,
            "thanks",
        ))
        .await?;
    // every service has exported the spans of its part, the last answer included
    receiver
        .wait_for(Duration::from_secs(20), |spans| {
            let services: std::collections::BTreeSet<&str> =
                spans.iter().map(|s| s.service.as_str()).collect();
            let answered = spans.iter().any(|s| {
                s.service == "dispatch311-survey" && s.name.contains("SubmitSurveyResponse")
            });
            (answered && services.len() == 4).then_some(())
        })
        .await?;

    // the database: every row of every schema, as text and as bytea hex
    let searched = assert_nowhere_in_database(&db, &canary).await?;
    assert!(searched >= 20, "only {searched} rows searched");
    let (sealed_description,): (Vec<u8>,) =
        sqlx::query_as("SELECT sealed FROM intake.sealed_descriptions WHERE sr_id = $1::uuid")
            .bind(&sr.sr_id)
            .fetch_one(&db)
            .await?;
    assert!(
        !sealed_description.is_empty(),
        "the original words are kept, sealed"
    );

    // Redis: every command the suite ran, and whatever is left under its prefix
    let commands = redis_commands.lock().unwrap().clone();
    assert!(
        commands.iter().any(|c| c.contains("XADD")) && commands.len() > 20,
        "MONITOR saw the suite's queue traffic: {} commands",
        commands.len()
    );
    assert_absent("a Redis command", &commands, &canary);
    assert_absent("a Redis key", &redis_contents(&suite).await?, &canary);

    // every exported span: names, attributes, events
    let spans = receiver.spans();
    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services.len(), 4, "spans from every service: {services:?}");
    let span_texts: Vec<String> = spans
        .iter()
        .map(|s| format!("{} {:?} {:?}", s.name, s.attributes, s.events))
        .collect();
    assert_absent("an exported span", &span_texts, &canary);

    // every service's log
    for service in Service::ALL {
        let log = std::fs::read_to_string(suite.log_path(service)).unwrap_or_default();
        assert_absent(&format!("the {} log", service.name()), [&log], &canary);
    }

    db.close().await;
    suite.stop().await
}
