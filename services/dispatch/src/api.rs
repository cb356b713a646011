//! The gRPC adapter of the dispatch service.

use dispatch311_domain::SrNumber;
use dispatch311_grpc::{
    pagination,
    status::{self as grpc_status, FieldViolations},
};
use dispatch311_proto::dispatch::v1::{
    GetJobRequest, GetJobResponse, ListQueueRequest, ListQueueResponse,
    dispatch_service_server::DispatchService, get_job_request::Key,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::store::{JobKey, QueuePosition, Store, StoreError};

pub struct DispatchApi {
    store: Store,
}

impl DispatchApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl DispatchService for DispatchApi {
    async fn list_queue(
        &self,
        request: Request<ListQueueRequest>,
    ) -> Result<Response<ListQueueResponse>, Status> {
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let precinct = request.precinct.trim().to_string();
        if precinct.is_empty() {
            v.add("precinct", "required, e.g. \"14\"");
        } else if precinct.len() > 16 || !precinct.bytes().all(|b| b.is_ascii_alphanumeric()) {
            v.add("precinct", "must be a precinct number such as \"14\"");
        }
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after = pagination::decode_token(&request.page_token, "page_token", &mut v).and_then(
            |cursor| {
                let position = QueuePosition::decode(&cursor);
                if position.is_none() {
                    v.add("page_token", "not a token from this list");
                }
                position
            },
        );
        v.into_result()?;

        let (mut jobs, total_queued) = self
            .store
            .queue(&precinct, after, limit + 1)
            .await
            .map_err(store_status)?;
        let next_page_token = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last()
                .and_then(QueuePosition::of)
                .map(|p| pagination::encode_token(&p.encode()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListQueueResponse {
            jobs,
            next_page_token,
            total_queued,
        }))
    }

    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let mut v = FieldViolations::new();
        let (key, shown) = match request.into_inner().key {
            Some(Key::JobId(id)) => match Uuid::parse_str(id.trim()) {
                Ok(parsed) => (Some(JobKey::Id(parsed)), id),
                Err(_) => {
                    v.add("job_id", "must be a UUID");
                    (None, id)
                }
            },
            Some(Key::SrNumber(number)) => match number.parse::<SrNumber>() {
                Ok(parsed) => (Some(JobKey::SrNumber(parsed.to_string())), number),
                Err(e) => {
                    v.add("sr_number", e.to_string());
                    (None, number)
                }
            },
            None => {
                v.add("key", "give job_id or sr_number");
                (None, String::new())
            }
        };
        v.into_result()?;
        let key = key.expect("a key without violations");
        match self.store.get(&key).await.map_err(store_status)? {
            Some(job) => Ok(Response::new(GetJobResponse { job: Some(job) })),
            None => Err(grpc_status::not_found("dispatch job", &shown)),
        }
    }
}

fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::Database(e) if dispatch311_db::is_unavailable(&e) => {
            grpc_status::unavailable("postgresql", &e)
        }
        StoreError::Database(e) => grpc_status::internal(&e),
        other => grpc_status::internal(&other),
    }
}
