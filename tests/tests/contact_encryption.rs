//! Complainant contacts sealed at rest, end to end with the real binaries:
//! a contact filed through intake is nowhere in the database in plain text
//! (every column of every table is searched), yet the release RPC still
//! returns it; a sealed contact copied into another request's row does not
//! open; and rotating the key (`dispatch311-intake rekey`) re-seals every
//! contact so the old key can be retired.

use std::collections::BTreeMap;

use dispatch311_auth::Role;
use dispatch311_proto::intake::v1::{
    Complainant, CreateServiceRequestRequest, ListContactReleasesRequest,
    ReleaseComplainantContactRequest, ReleasePurpose, ServiceRequest,
    intake_service_client::IntakeServiceClient,
};
use dispatch311_tests::{
    cad::{EMPIRE_STATE, complaint, wait_for_job},
    suite::{AuthChannel, CONTACT_KEYS_VAR, Service, Suite, SuiteOptions, random_contact_key},
};
use sqlx::PgPool;
use tonic::Code;

type Intake = IntakeServiceClient<AuthChannel>;

/// Schemas whose tables must never hold a contact: intake's own (where it is
/// sealed) and the services it must never reach. The survey's is left out:
/// the survey is the one path a consented contact may take, on purpose.
const SCHEMAS: [&str; 3] = ["intake", "routing", "dispatch"];

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
    let suite = Suite::start(SuiteOptions::default()).await?;
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

    // three batches of two, each its own transaction
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
        "re-encrypted 6 complainant contacts under key k2 (3 batches)"
    );
    let under_k2 = sealed_contacts(&db).await?;
    assert_eq!(key_ids(&under_k2), ["k2"; 7]);
    for (sr_id, (_, old)) in &under_k1 {
        assert_ne!(&under_k2[sr_id].1, old, "{sr_id} was re-sealed");
    }

    // once more changes nothing
    let again = suite.run_command(Service::Intake, &["rekey"]).await?;
    assert!(again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "re-encrypted 0 complainant contacts under key k2 (0 batches)"
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
