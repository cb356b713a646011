//! What an operator meets before anything serves: `--help` of every service
//! binary lists each setting with its variable and default, and a bad value
//! stops the binary at once with a message that names the variable.

use std::process::Command;

use dispatch311_tests::suite::binary_named;

/// Runs `dispatch311-<name>` with `args` and only `env` set.
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(binary_named(name)?)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()?)
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() -> anyhow::Result<()> {
    for (service, own) in [
        ("intake", "DISPATCH311_CONTACT_KEYS"),
        ("routing", "DISPATCH311_ROUTING_RULES"),
        ("dispatch", "DISPATCH311_ACK_TIMEOUT_SECS"),
        ("survey", "DISPATCH311_SURVEY_TOKEN_DAYS"),
    ] {
        let output = run(service, &["--help"], &[])?;
        assert!(output.status.success(), "{service} --help failed");
        let help = String::from_utf8(output.stdout)?;
        for variable in [
            own,
            "DATABASE_URL",
            "REDIS_URL",
            "DISPATCH311_QUEUE_CONCURRENCY",
            "DISPATCH311_AUTH_JWKS",
            "DISPATCH311_TLS_CERT",
            "RUST_LOG",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            assert!(help.contains(variable), "{service} --help lacks {variable}");
        }
        assert!(
            help.contains("[default: "),
            "{service} --help shows no defaults"
        );
    }
    let help = String::from_utf8(run("dispatch", &["--help"], &[])?.stdout)?;
    assert!(help.contains("[default: 300]"), "the ack timeout's default");
    Ok(())
}

#[test]
fn a_bad_or_missing_value_stops_the_service_naming_the_variable() -> anyhow::Result<()> {
    let output = run(
        "dispatch",
        &[],
        &[
            ("DISPATCH311_ACK_TIMEOUT_SECS", "five minutes"),
            ("DISPATCH311_AUTH_JWKS", "/nonexistent/jwks.json"),
            ("DISPATCH311_EVENT_LOG_KEY", "/nonexistent/key.pem"),
        ],
    )?;
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let error = String::from_utf8(output.stderr)?;
    assert!(error.contains("DISPATCH311_ACK_TIMEOUT_SECS"), "{error}");
    assert!(error.contains("five minutes"), "{error}");

    let output = run("intake", &[], &[("DISPATCH311_AUTH_JWKS", "/nonexistent")])?;
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8(output.stderr)?;
    assert!(
        error.contains("DISPATCH311_CONTACT_KEYS"),
        "the missing key is named: {error}"
    );

    let output = run(
        "survey",
        &[],
        &[
            ("DISPATCH311_AUTH_JWKS", "/nonexistent"),
            ("DISPATCH311_QUEUE_CONCURRENCY", "0"),
        ],
    )?;
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8(output.stderr)?;
    assert!(error.contains("DISPATCH311_QUEUE_CONCURRENCY"), "{error}");
    Ok(())
}
