//! The gRPC adapter of the routing service.

use std::sync::Arc;

use dispatch311_domain::{
    complaint_type::{normalize_complaint_type, normalize_descriptor},
    time::to_timestamp,
};
use dispatch311_grpc::{
    pagination,
    status::{self as grpc_status, FieldViolations},
};
use dispatch311_proto::routing::v1::{
    ExplainRouteRequest, ExplainRouteResponse, GetRoutingDecisionRequest,
    GetRoutingDecisionResponse, ListRoutingRulesRequest, ListRoutingRulesResponse,
    routing_service_server::RoutingService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    Router,
    decision::RouteRequest,
    store::{Store, StoreError},
};

pub struct RoutingApi {
    router: Arc<Router>,
    store: Store,
}

impl RoutingApi {
    pub fn new(router: Arc<Router>, store: Store) -> Self {
        Self { router, store }
    }
}

#[tonic::async_trait]
impl RoutingService for RoutingApi {
    async fn explain_route(
        &self,
        request: Request<ExplainRouteRequest>,
    ) -> Result<Response<ExplainRouteResponse>, Status> {
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        // The same names intake takes: an unknown type is explained (311
        // triage), one intake would refuse is refused here too.
        let complaint_type = normalize_complaint_type(&request.complaint_type)
            .map_err(|e| v.add("complaint_type", e.to_string()))
            .unwrap_or_default();
        let descriptor = normalize_descriptor(&request.descriptor)
            .map_err(|e| v.add("descriptor", e.to_string()))
            .unwrap_or_default();
        if let Some(l) = &request.location {
            if !l.latitude.is_finite() || !(-90.0..=90.0).contains(&l.latitude) {
                v.add("location.latitude", "must be between -90 and 90");
            }
            if !l.longitude.is_finite() || !(-180.0..=180.0).contains(&l.longitude) {
                v.add("location.longitude", "must be between -180 and 180");
            }
        }
        v.into_result()?;
        let decision = self.router.decide(&RouteRequest {
            complaint_type: &complaint_type,
            descriptor: &descriptor,
            location: request.location.map(|l| (l.latitude, l.longitude)),
            has_street_address: request.has_street_address,
        });
        Ok(Response::new(ExplainRouteResponse {
            decision: Some(decision),
        }))
    }

    async fn list_routing_rules(
        &self,
        request: Request<ListRoutingRulesRequest>,
    ) -> Result<Response<ListRoutingRulesResponse>, Status> {
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let offset = match pagination::decode_token(&request.page_token, "page_token", &mut v) {
            None => 0,
            Some(token) => token.parse::<usize>().unwrap_or_else(|_| {
                v.add("page_token", "not a token from this list");
                0
            }),
        };
        v.into_result()?;
        let all = self.router.rules.to_proto();
        let rules: Vec<_> = all.iter().skip(offset).take(limit).cloned().collect();
        let next = offset + rules.len();
        let next_page_token = if next < all.len() {
            pagination::encode_token(&next.to_string())
        } else {
            String::new()
        };
        Ok(Response::new(ListRoutingRulesResponse {
            rules,
            next_page_token,
        }))
    }

    async fn get_routing_decision(
        &self,
        request: Request<GetRoutingDecisionRequest>,
    ) -> Result<Response<GetRoutingDecisionResponse>, Status> {
        let sr_id = request.into_inner().sr_id;
        let Ok(id) = Uuid::parse_str(sr_id.trim()) else {
            return Err(grpc_status::invalid_argument("sr_id", "must be a UUID"));
        };
        match self.store.get(id).await {
            Ok(Some(stored)) => Ok(Response::new(GetRoutingDecisionResponse {
                sr_id: id.to_string(),
                sr_number: stored.sr_number,
                decision: Some(stored.decision),
                decided_at: Some(to_timestamp(stored.decided_at)),
            })),
            Ok(None) => Err(grpc_status::not_found("routing decision", &sr_id)),
            Err(e) => Err(e.into()),
        }
    }
}

/// The one place a storage error of this service becomes a gRPC status.
impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        grpc_status::storage(&e)
    }
}
