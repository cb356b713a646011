//! The gateway's answers checked by tools made elsewhere: every XML answer
//! against the element shapes of the GeoReport v2 specification (xmllint
//! with tests/open311/georeport-v2.xsd), every JSON answer against the
//! schema the gateway's own OpenAPI description gives it (Python's
//! jsonschema), and the description served at /openapi.json names every
//! method the gateway answers, and only those.

use std::path::{Path, PathBuf};

use dispatch311_tests::{
    cad::EMPIRE_STATE,
    suite::{Open311, Suite, SuiteOptions},
};
use reqwest::StatusCode;

const KEY: &str = "formats-key-0123456789";

/// The Python with jsonschema and georeport (`make test` installs them;
/// run alone, the test runs deploy/ensure-open311-tools.sh itself).
pub fn tools_python() -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ensure-open311-tools.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "{} failed", script.display());
    Ok(String::from_utf8(output.stdout)?.trim().into())
}

struct Saved {
    dir: PathBuf,
    count: usize,
}

impl Saved {
    /// Saves the answer of GET or POST `path` (its suffix says the format),
    /// with the OpenAPI schema a JSON answer must match.
    async fn save(
        &mut self,
        answer: reqwest::Response,
        expected: StatusCode,
        schema: &str,
    ) -> anyhow::Result<String> {
        let status = answer.status();
        let xml = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/xml"));
        let body = answer.text().await?;
        assert_eq!(status, expected, "{body}");
        self.count += 1;
        let name = format!("answer-{:02}", self.count);
        if xml {
            std::fs::write(self.dir.join(format!("{name}.xml")), &body)?;
        } else {
            std::fs::write(self.dir.join(format!("{name}.json")), &body)?;
            std::fs::write(self.dir.join(format!("{name}.schema")), schema)?;
        }
        Ok(body)
    }
}

async fn get(gateway: &Open311, path: &str) -> anyhow::Result<reqwest::Response> {
    Ok(reqwest::Client::new()
        .get(format!("{}{path}", gateway.url))
        .send()
        .await?)
}

async fn post(
    gateway: &Open311,
    format: &str,
    form: &[(&str, String)],
) -> anyhow::Result<reqwest::Response> {
    Ok(reqwest::Client::new()
        .post(format!("{}/requests.{format}", gateway.url))
        .form(form)
        .send()
        .await?)
}

#[tokio::test]
async fn every_answer_has_the_shape_of_the_specification_and_of_the_openapi_description()
-> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let python = tools_python()?;
    let suite = Suite::start(SuiteOptions::default()).await?;
    let gateway = suite
        .spawn_open311(&[(KEY, "formats-app", false)], &[])
        .await?;
    let dir = suite.log_dir.join("open311-answers");
    std::fs::create_dir_all(&dir)?;
    let mut saved = Saved {
        dir: dir.clone(),
        count: 0,
    };
    let schemas = "#/components/schemas";

    let form = vec![
        ("api_key", KEY.to_string()),
        ("service_code", "illegal-parking".into()),
        ("attribute[descriptor]", "Blocked Hydrant".into()),
        ("lat", EMPIRE_STATE.latitude.to_string()),
        ("long", EMPIRE_STATE.longitude.to_string()),
        (
            "description",
            "A grey sedan & a <van> on the \"hydrant\"".into(),
        ),
        ("media_url", "https://photos.example/a.jpg".into()),
    ];
    let created = saved
        .save(
            post(&gateway, "json", &form).await?,
            StatusCode::OK,
            &format!("[]{schemas}/Created"),
        )
        .await?;
    let id = serde_json::from_str::<serde_json::Value>(&created)?[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    saved
        .save(post(&gateway, "xml", &form).await?, StatusCode::OK, "")
        .await?;
    // an address only, no attribute: the shapes hold with empty fields too
    let bare = vec![
        ("api_key", KEY.to_string()),
        ("service_code", "blocked-driveway".into()),
        ("address_string", "20 W 34th St".into()),
    ];
    saved
        .save(post(&gateway, "xml", &bare).await?, StatusCode::OK, "")
        .await?;

    for (path, schema) in [
        ("/discovery.json", format!("{schemas}/Discovery")),
        ("/discovery.xml", String::new()),
        ("/services.json", format!("[]{schemas}/Service")),
        ("/services.xml", String::new()),
        (
            "/services/illegal-parking.json",
            format!("{schemas}/ServiceDefinition"),
        ),
        ("/services/illegal-parking.xml", String::new()),
        ("/services/blocked-driveway.xml", String::new()),
        (
            &format!("/requests/{id}.json?api_key={KEY}") as &str,
            format!("[]{schemas}/ServiceRequest"),
        ),
        (&format!("/requests/{id}.xml?api_key={KEY}"), String::new()),
        (
            &format!("/requests/{id}.json?api_key={KEY}&extensions=true"),
            format!("[]{schemas}/ServiceRequest"),
        ),
        (
            &format!("/requests/{id}.xml?api_key={KEY}&extensions=true"),
            String::new(),
        ),
        (
            &format!("/requests/{id}.json"),
            format!("[]{schemas}/ServiceRequest"),
        ),
        (
            &format!("/requests.json?api_key={KEY}"),
            format!("[]{schemas}/ServiceRequest"),
        ),
        (
            &format!("/requests.xml?api_key={KEY}&extensions=true"),
            String::new(),
        ),
        (&format!("/tokens/{id}.json"), format!("[]{schemas}/Token")),
        (&format!("/tokens/{id}.xml"), String::new()),
    ] {
        saved
            .save(get(&gateway, path).await?, StatusCode::OK, &schema)
            .await?;
    }
    // errors, in both formats
    for (path, status) in [
        ("/services/nothing.json", StatusCode::NOT_FOUND),
        ("/services/nothing.xml", StatusCode::NOT_FOUND),
        ("/requests.json", StatusCode::FORBIDDEN),
        ("/requests.xml?api_key=wrong", StatusCode::FORBIDDEN),
        (
            "/requests.json?api_key=formats-key-0123456789&status=pending",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        saved
            .save(
                get(&gateway, path).await?,
                status,
                &format!("{schemas}/Errors"),
            )
            .await?;
    }
    let mut bad = form.clone();
    bad[3].1 = "north".into();
    saved
        .save(
            post(&gateway, "json", &bad).await?,
            StatusCode::BAD_REQUEST,
            &format!("{schemas}/Errors"),
        )
        .await?;
    saved
        .save(
            post(&gateway, "xml", &bad).await?,
            StatusCode::BAD_REQUEST,
            "",
        )
        .await?;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let checked = std::process::Command::new(&python)
        .arg(root.join("open311/check_answers.py"))
        .arg(root.join("../services/open311/openapi.json"))
        .arg(root.join("open311/georeport-v2.xsd"))
        .arg(&dir)
        .output()?;
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "answers that do not conform:\n{report}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok")).count(),
        saved.count
    );

    // the description served is the file, and documents exactly what answers
    let served: serde_json::Value = get(&gateway, "/openapi.json").await?.json().await?;
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("../services/open311/openapi.json"),
    )?)?;
    assert_eq!(served, file);
    let documented: Vec<String> = served["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for path in &documented {
        let concrete = path
            .replace("{service_code}", "illegal-parking")
            .replace("{service_request_id}", &id)
            .replace("{token}", &id);
        let answer = get(&gateway, &concrete).await?;
        let allowed = if served["paths"][path].get("get").is_some() {
            answer.status() != StatusCode::METHOD_NOT_ALLOWED && !answer.text().await?.is_empty()
        } else {
            true
        };
        assert!(allowed, "{path} is documented and answers");
    }
    let mut expected = vec![
        "/discovery.json",
        "/discovery.xml",
        "/services.json",
        "/services.xml",
        "/services/{service_code}.json",
        "/services/{service_code}.xml",
        "/requests.json",
        "/requests.xml",
        "/requests/{service_request_id}.json",
        "/requests/{service_request_id}.xml",
        "/tokens/{token}.json",
        "/tokens/{token}.xml",
        "/openapi.json",
        "/healthz",
    ];
    expected.sort_unstable();
    let mut documented = documented;
    documented.sort_unstable();
    assert_eq!(
        documented, expected,
        "every method the router serves, and only those"
    );
    let unknown = get(&gateway, "/nothing-here.json").await?;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    drop(gateway);
    suite.stop().await
}
