//! The services (GeoReport's word for request types) the gateway offers:
//! the complaint types of routing's rules, read from routing and kept for a
//! minute. A type's descriptors with a rule of their own are its
//! `descriptor` attribute's values; its other names (aliases) its keywords.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatch311_auth::{Role, client::with_token};
use dispatch311_proto::routing::v1::{
    ListRoutingRulesRequest, RouteOutcome, routing_service_client::RoutingServiceClient,
};
use dispatch311_telemetry::grpc::TracedChannel;
use tokio::sync::Mutex;

use crate::tokens::{GATEWAY_SUBJECT, Tokens};

/// How long the rules read from routing are used before asking again.
const FRESH_FOR: Duration = Duration::from_secs(60);

/// One service: a complaint type.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The complaint type's name in lower case, runs of anything but letters
    /// and digits made one `-`: stable while the type's name is.
    pub code: String,
    /// The complaint type as the city files it.
    pub name: String,
    pub description: String,
    /// The agency code, e.g. "NYPD".
    pub group: String,
    /// Other names of the type.
    pub keywords: Vec<String>,
    /// Descriptors with a rule of their own, in the rules' order.
    pub descriptors: Vec<String>,
    /// Whether a rule takes any descriptor (or none) of the type.
    pub any_descriptor: bool,
}

impl Service {
    /// Whether the service has attributes to ask for (the descriptor).
    pub fn metadata(&self) -> bool {
        !self.descriptors.is_empty()
    }
}

/// `Illegal Parking` → `illegal-parking`; `Noise - Street/Sidewalk` → `noise-street-sidewalk`.
pub fn code_of(complaint_type: &str) -> String {
    let mut code = String::new();
    for c in complaint_type.chars() {
        if c.is_alphanumeric() {
            code.extend(c.to_lowercase());
        } else if !code.is_empty() && !code.ends_with('-') {
            code.push('-');
        }
    }
    code.trim_end_matches('-').to_string()
}

pub struct Catalog {
    routing: RoutingServiceClient<TracedChannel>,
    cached: Mutex<Option<(Instant, Arc<Vec<Service>>)>>,
}

impl Catalog {
    pub fn new(routing: RoutingServiceClient<TracedChannel>) -> Self {
        Self {
            routing,
            cached: Mutex::new(None),
        }
    }

    /// The services, from routing's rules (at most a minute old; the last
    /// ones read when routing does not answer).
    pub async fn services(&self, tokens: &Tokens) -> Result<Arc<Vec<Service>>, tonic::Status> {
        let mut cached = self.cached.lock().await;
        if let Some((read_at, services)) = cached.as_ref()
            && read_at.elapsed() < FRESH_FOR
        {
            return Ok(services.clone());
        }
        match self.read(tokens).await {
            Ok(services) => {
                let services = Arc::new(services);
                *cached = Some((Instant::now(), services.clone()));
                Ok(services)
            }
            Err(status) => match cached.as_ref() {
                Some((_, services)) => {
                    tracing::warn!(%status, "routing did not answer: the rules read last are used");
                    Ok(services.clone())
                }
                None => Err(status),
            },
        }
    }

    /// The service whose code is `code`.
    pub async fn find(
        &self,
        tokens: &Tokens,
        code: &str,
    ) -> Result<Option<Service>, tonic::Status> {
        Ok(self
            .services(tokens)
            .await?
            .iter()
            .find(|service| service.code == code)
            .cloned())
    }

    async fn read(&self, tokens: &Tokens) -> Result<Vec<Service>, tonic::Status> {
        let token = tokens
            .token(Role::Integrator, GATEWAY_SUBJECT)
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        let mut routing = self.routing.clone();
        let mut rules = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = with_token(
                ListRoutingRulesRequest {
                    page_size: 1_000,
                    page_token: page_token.clone(),
                },
                &token,
            )
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
            let page = routing.list_routing_rules(request).await?.into_inner();
            rules.extend(page.rules);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let mut by_code: BTreeMap<String, Service> = BTreeMap::new();
        for rule in rules {
            let code = code_of(&rule.complaint_type);
            if code.is_empty() {
                continue;
            }
            let service = by_code.entry(code.clone()).or_insert_with(|| Service {
                code,
                name: rule.complaint_type.clone(),
                description: String::new(),
                group: rule.agency.clone(),
                keywords: Vec::new(),
                descriptors: Vec::new(),
                any_descriptor: false,
            });
            for alias in &rule.aliases {
                if !service.keywords.contains(alias) {
                    service.keywords.push(alias.clone());
                }
            }
            if rule.descriptor.is_empty() {
                service.any_descriptor = true;
                service.group = rule.agency.clone();
                service.description = describe(&rule.complaint_type, &rule.agency, rule.outcome);
            } else if !service.descriptors.contains(&rule.descriptor) {
                service.descriptors.push(rule.descriptor.clone());
                if service.description.is_empty() {
                    service.description =
                        describe(&rule.complaint_type, &rule.agency, rule.outcome);
                }
            }
        }
        Ok(by_code.into_values().collect())
    }
}

fn describe(complaint_type: &str, agency: &str, outcome: i32) -> String {
    if outcome == RouteOutcome::Dispatch as i32 {
        format!(
            "{complaint_type}: handled by the {agency}; a unit of the precinct of the place is sent, and the request is followed step by step until it is closed"
        )
    } else {
        format!("{complaint_type}: referred to the {agency}, the agency responsible")
    }
}

/// The service of a complaint type as a request carries it (its name or
/// one of its other names).
pub fn service_of<'a>(services: &'a [Service], complaint_type: &str) -> Option<&'a Service> {
    let code = code_of(complaint_type);
    services.iter().find(|service| {
        service.code == code || service.keywords.iter().any(|name| code_of(name) == code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_names_in_lower_case_with_dashes() {
        assert_eq!(code_of("Illegal Parking"), "illegal-parking");
        assert_eq!(code_of("Noise - Street/Sidewalk"), "noise-street-sidewalk");
        assert_eq!(code_of("  Blocked  Driveway "), "blocked-driveway");
        assert_eq!(code_of("---"), "");
    }
}
