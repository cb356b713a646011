//! `shutdown_signal` in its own test binary: it installs a SIGTERM handler
//! for the whole process.

use std::time::Duration;

#[tokio::test]
async fn shutdown_signal_resolves_on_sigterm() {
    let mut signal = Box::pin(dispatch311_grpc::shutdown_signal());
    // Polling it installs the handlers; nothing has asked the process to stop yet.
    let early = tokio::time::timeout(Duration::from_millis(100), &mut signal).await;
    assert!(early.is_err(), "resolved without a signal");

    let sent = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", std::process::id())])
        .status()
        .unwrap();
    assert!(sent.success());

    tokio::time::timeout(Duration::from_secs(5), signal)
        .await
        .expect("resolves once SIGTERM arrives");
}
