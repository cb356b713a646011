//! The end-to-end tests, one binary: the workspace links once, and the tests
//! of every area run side by side (ports are handed out once per process).
//! Each test starts the real service binaries — `make test` builds them
//! first (`cargo build --bins`) — against real Redis and PostgreSQL, in a
//! database and a Redis key prefix of its own (`dispatch311_tests::suite`).
//!
//! Run one area or one test by its path, e.g.
//! `cargo test -p dispatch311-tests --test e2e dispatch::lifecycle`.

/// The console: over HTTP in the browser's place (sign-in, the board, the
/// live queue), and in a real browser (the whole flow, both screens).
mod console;
/// Dispatch: the guarded lifecycle, its rules, units, timers, views, the
/// device feed, the tamper-evident log and messages to the complainant.
mod dispatch;
/// Intake: access control, contact encryption and release, photos, retention.
mod intake;
/// The Open311 GeoReport v2 gateway: the standard's methods, formats and
/// errors through the real gateway and suite.
mod open311;
/// The whole suite: the request's path and trace, crashes, lost Redis,
/// replays and mutual TLS.
mod suite;
/// The satisfaction survey: the closed-request feed, answers, contact, figures.
mod survey;
