//! The GeoReport v2 methods, each answering in the format its path's suffix
//! names, every refusal an `<errors>` list: `services` (discovery, the
//! services, a definition, the OpenAPI description), `filing` (POST
//! requests), `reading` (GET requests, one request, tokens, and the records
//! they answer with). What they share is here: the state, the parameters, the
//! key and jurisdiction checks.

mod filing;
mod reading;
mod services;

pub use filing::{post_requests_json, post_requests_xml};
pub use reading::{get_request, get_requests_json, get_requests_xml, get_token};
pub use services::{
    discovery_json, discovery_xml, openapi, service_definition, services_json, services_xml,
};

use std::collections::HashSet;
use std::sync::Arc;

use axum::{
    extract::{FromRequest as _, Multipart, Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use dispatch311_auth::{Role, client::with_token};
use dispatch311_proto::{
    common::v1::{Address, Channel, GeoPoint, ServiceRequestStatus},
    intake::v1::{
        Complainant, CreateServiceRequestRequest, GetServiceRequestRequest,
        ListServiceRequestsRequest, PhotoReference, ServiceRequest, UploadPhotoRequest,
        get_service_request_request::Key, intake_service_client::IntakeServiceClient,
    },
    routing::v1::{ExplainRouteRequest, routing_service_client::RoutingServiceClient},
};
use dispatch311_telemetry::grpc::TracedChannel;
use futures::{StreamExt as _, TryStreamExt as _};

use crate::catalog::{Catalog, Service, code_of, service_of};
use crate::errors::Open311Error;
use crate::keys::{ApiKeys, Integrator};
use crate::render::{Format, Value, answer};
use crate::tokens::{GATEWAY_SUBJECT, Tokens};

/// The GeoReport v2 specification, as discovery names it.
const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";
/// When this API last changed (discovery's `changeset`).
const CHANGESET: &str = "2026-12-07T00:00:00Z";
/// The longest window of a GET requests, and its most records.
const MAX_WINDOW_DAYS: i64 = 90;
const MAX_RECORDS: usize = 1_000;
/// Requests read from intake per page while filtering a list.
const INTAKE_PAGE: i32 = 1_000;
/// Records fetched one by one at once (ids, extensions).
const CONCURRENT_READS: usize = 8;

/// What every handler shares.
pub struct Gateway {
    pub intake: IntakeServiceClient<TracedChannel>,
    pub routing: RoutingServiceClient<TracedChannel>,
    pub catalog: Catalog,
    pub keys: ApiKeys,
    pub tokens: Tokens,
    pub jurisdiction: Option<String>,
    pub public_url: String,
    pub contact: String,
    pub key_service: String,
}

pub type Shared = State<Arc<Gateway>>;

/// `message` as a call of the token's holder.
fn authorized<T>(message: T, token: &str) -> Result<tonic::Request<T>, Open311Error> {
    with_token(message, token)
        .map_err(|error| Open311Error::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

/// Parameters as sent, repeated ones kept (`attribute[code]` may repeat).
#[derive(Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// `attribute[code]=value` pairs (and `attribute[code][]`), in order.
    fn attributes(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .filter_map(|(key, value)| {
                let code = key.strip_prefix("attribute[")?;
                let code = code.strip_suffix("[]").unwrap_or(code);
                Some((code.strip_suffix(']')?, value.trim()))
            })
            .collect()
    }
}

impl Gateway {
    fn token(&self, role: Role, subject: &str) -> Result<String, Open311Error> {
        self.tokens.token(role, subject).map_err(|error| {
            tracing::error!(%error, "cannot sign a token");
            Open311Error::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the gateway cannot sign its calls",
            )
        })
    }

    fn integrator(&self, params: &Params) -> Result<Integrator, Open311Error> {
        match params.get("api_key") {
            None => Err(Open311Error::forbidden("api_key is required")),
            Some(key) => self
                .keys
                .find(key)
                .ok_or_else(|| Open311Error::forbidden("api_key is not valid")),
        }
    }

    /// 404 for a request that names another jurisdiction than this one.
    fn check_jurisdiction(&self, params: &Params) -> Result<(), Open311Error> {
        match (&self.jurisdiction, params.get("jurisdiction_id")) {
            (Some(ours), Some(asked)) if !asked.eq_ignore_ascii_case(ours) => Err(
                Open311Error::not_found(format!("jurisdiction_id {asked} is not served here")),
            ),
            _ => Ok(()),
        }
    }

    async fn services(&self) -> Result<Arc<Vec<Service>>, Open311Error> {
        self.catalog
            .services(&self.tokens)
            .await
            .map_err(|status| Open311Error::from_status(&status, "routing"))
    }
}
