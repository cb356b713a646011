//! Open311 clients made by others work against the gateway unchanged:
//! PyPI's `georeport` library (GET services, a definition, requests by id,
//! in XML and JSON) and FixMyStreet's client conventions (its XML::Simple
//! parse settings and error loop copied from its Open311.pm, its url-encoded
//! POST with jurisdiction_id, api_key, attribute[...], deviceid and a
//! media_url, reading the id from the first <request>, tokens, a wrong key's
//! <errors>). FixMyStreet itself needs its whole application to run; the
//! script runs what of it touches the wire.

use std::path::Path;

use dispatch311_tests::{
    cad::EMPIRE_STATE,
    suite::{Suite, SuiteOptions},
};

#[tokio::test]
async fn fixmystreets_conventions_and_the_georeport_library_work_unchanged() -> anyhow::Result<()> {
    let python = super::formats::tools_python()?;
    let suite = Suite::start(SuiteOptions::default()).await?;
    let gateway = suite
        .spawn_open311(
            &[("fms-key-0123456789", "fixmystreet", true)],
            &[("DISPATCH311_OPEN311_JURISDICTION", "nyc.gov")],
        )
        .await?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("open311");

    let fms = tokio::process::Command::new("perl")
        .arg(root.join("fixmystreet_client.pl"))
        .args([
            gateway.url.as_str(),
            "fms-key-0123456789",
            "nyc.gov",
            &EMPIRE_STATE.latitude.to_string(),
            &EMPIRE_STATE.longitude.to_string(),
        ])
        .output()
        .await?;
    let said = String::from_utf8_lossy(&fms.stdout).to_string();
    assert!(
        fms.status.success(),
        "FixMyStreet's conventions:\n{said}{}",
        String::from_utf8_lossy(&fms.stderr)
    );
    assert_eq!(
        said.lines().filter(|l| l.starts_with("ok ")).count(),
        6,
        "{said}"
    );
    let id = said
        .lines()
        .find_map(|l| l.strip_prefix("ok POST requests.xml: service_request_id "))
        .expect("the filed id")
        .to_string();

    let library = tokio::process::Command::new(&python)
        .arg(root.join("georeport_client.py"))
        .args([gateway.url.as_str(), "nyc.gov", &id])
        .output()
        .await?;
    let said = String::from_utf8_lossy(&library.stdout);
    assert!(
        library.status.success(),
        "the georeport library:\n{said}{}",
        String::from_utf8_lossy(&library.stderr)
    );
    assert_eq!(
        said.lines().filter(|l| l.starts_with("ok ")).count(),
        8,
        "{said}"
    );
    drop(gateway);
    suite.stop().await
}
