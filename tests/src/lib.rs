//! Test support for dispatch311: the harness that runs the real service
//! binaries against real PostgreSQL and Redis, an OTLP receiver that collects
//! the spans they export, a reader for the city's 311 data used by the
//! replay tests and the benchmark, and helpers for the dispatch (CAD) tests.
//! Every client carries a bearer token signed with the suite's own key.

pub mod acting;
pub mod cad;
pub mod chaos;
pub mod identity_provider;
pub mod nyc311;
pub mod otlp;
pub mod picture;
pub mod redis_cluster;
pub mod s3;
pub mod suite;
pub mod survey;
