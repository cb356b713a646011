//! The gRPC adapter of the survey service: unpacks and checks requests,
//! calls the store or intake, and maps the results to gRPC.

use std::{pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use dispatch311_domain::time::{from_timestamp, to_timestamp};
use dispatch311_grpc::{
    pagination,
    status::{self as grpc_status, FieldViolations},
};
use dispatch311_proto::{
    Timestamp,
    survey::v1::{self as survey, GroupBy, survey_service_server::SurveyService},
};
use dispatch311_telemetry::attributes::{self, set_on_current};
use futures::{Stream, StreamExt as _};
use tokio::sync::Notify;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::{
    answers,
    contact::ContactSource,
    feed::FeedPosition,
    store::{Recorded, StatsQuery, Store, StoreError, Submitted, TokenLookup},
};

pub struct SurveyApi {
    pub store: Store,
    pub contacts: ContactSource,
    pub token_ttl: Duration,
    /// Wakes the outbox relay as soon as an answer (and its status update or
    /// reopen request) commits.
    pub relay_wakeup: Arc<Notify>,
}

#[tonic::async_trait]
impl SurveyService for SurveyApi {
    async fn list_closed_requests(
        &self,
        request: Request<survey::ListClosedRequestsRequest>,
    ) -> Result<Response<survey::ListClosedRequestsResponse>, Status> {
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let limit = pagination::page_size(request.page_size, "page_size", &mut v);
        let after = match pagination::decode_token(&request.cursor, "cursor", &mut v) {
            None => FeedPosition::START,
            Some(text) => FeedPosition::decode(&text).unwrap_or_else(|| {
                v.add("cursor", "is not a cursor from this list");
                FeedPosition::START
            }),
        };
        v.into_result()?;

        let listed = self
            .store
            .closed_after(after, limit, self.token_ttl, Utc::now())
            .await
            .map_err(store_status)?;
        let next_cursor = match listed.last() {
            Some(last) => pagination::encode_token(&last.position.encode()),
            None => request.cursor,
        };
        let tokens = listed
            .iter()
            .filter(|l| !l.closed_request.survey_token.is_empty())
            .count();
        tracing::debug!(closures = listed.len(), tokens, "closed requests listed");
        Ok(Response::new(survey::ListClosedRequestsResponse {
            closed_requests: listed.into_iter().map(|l| l.closed_request).collect(),
            next_cursor,
        }))
    }

    async fn get_survey_contact(
        &self,
        request: Request<survey::GetSurveyContactRequest>,
    ) -> Result<Response<survey::GetSurveyContactResponse>, Status> {
        // intake checks and records the survey system itself: its token goes along
        let caller_token = request.metadata().get("authorization").cloned();
        let mut v = FieldViolations::new();
        let token = answers::survey_token(&request.into_inner().survey_token, &mut v);
        v.into_result()?;
        let sr_number = match self
            .store
            .token_target(&token, Utc::now())
            .await
            .map_err(store_status)?
        {
            TokenLookup::Unknown => return Err(unknown_token()),
            TokenLookup::Expired { expires_at } => return Err(expired_token(expires_at)),
            TokenLookup::Valid { sr_number } => sr_number,
        };
        set_on_current(attributes::SR_NUMBER, sr_number.clone());
        let complainant = self.contacts.release(&sr_number, caller_token).await?;
        // the fact of the release, never its content
        tracing::info!(sr_number = %sr_number, "contact released for the satisfaction survey");
        Ok(Response::new(survey::GetSurveyContactResponse {
            sr_number,
            name: complainant.name,
            phone: complainant.phone,
            email: complainant.email,
        }))
    }

    async fn submit_survey_response(
        &self,
        request: Request<survey::SubmitSurveyResponseRequest>,
    ) -> Result<Response<survey::SubmitSurveyResponseResponse>, Status> {
        let (token, answer) = answers::validate(&request.into_inner())?;
        let submitted = self
            .store
            .submit(&token, &answer, Utc::now())
            .await
            .map_err(store_status)?;
        let recorded = match submitted {
            Submitted::Recorded(recorded) => {
                // the SURVEYED update (and a reopen request) wait in the outbox
                self.relay_wakeup.notify_one();
                set_on_current(attributes::SR_NUMBER, recorded.sr_number.clone());
                tracing::info!(
                    sr_number = %recorded.sr_number,
                    agreement = answers::agreement_name(answer.agreement),
                    reason = answer.reason_name(),
                    reopen_requested = recorded.reopened,
                    "survey answer recorded"
                );
                recorded
            }
            Submitted::Repeated(recorded) => {
                tracing::info!(sr_number = %recorded.sr_number, "repeated survey answer returns the first");
                recorded
            }
            Submitted::AlreadyAnswered { sr_number } => {
                return Err(grpc_status::already_exists("survey answer for", sr_number));
            }
            Submitted::UnknownToken => return Err(unknown_token()),
            Submitted::Expired { expires_at } => return Err(expired_token(expires_at)),
        };
        let Recorded {
            sr_number,
            recorded_at,
            reopened,
        } = recorded;
        Ok(Response::new(survey::SubmitSurveyResponseResponse {
            sr_number,
            recorded_at: Some(to_timestamp(recorded_at)),
            reopened,
        }))
    }

    async fn get_satisfaction_stats(
        &self,
        request: Request<survey::GetSatisfactionStatsRequest>,
    ) -> Result<Response<survey::GetSatisfactionStatsResponse>, Status> {
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let group_by = match GroupBy::try_from(request.group_by) {
            Ok(GroupBy::Unspecified) => "ALL",
            Ok(GroupBy::Agency) => "AGENCY",
            Ok(GroupBy::Precinct) => "PRECINCT",
            Ok(GroupBy::ComplaintType) => "COMPLAINT_TYPE",
            Ok(GroupBy::Month) => "MONTH",
            Err(_) => {
                v.add(
                    "group_by",
                    "is not AGENCY, PRECINCT, COMPLAINT_TYPE or MONTH",
                );
                "ALL"
            }
        };
        let (closed_from, closed_to) = closed_range(
            request.closed_from.as_ref(),
            request.closed_to.as_ref(),
            &mut v,
        );
        v.into_result()?;
        let query = StatsQuery {
            group_by,
            agency: request.agency.trim().to_string(),
            precinct: request.precinct.trim().to_string(),
            complaint_type: request.complaint_type.trim().to_string(),
            closed_from,
            closed_to,
        };
        let groups = self.store.stats(&query).await.map_err(store_status)?;
        Ok(Response::new(survey::GetSatisfactionStatsResponse {
            groups,
        }))
    }

    type ExportSurveyResultsStream =
        Pin<Box<dyn Stream<Item = Result<survey::ExportSurveyResultsResponse, Status>> + Send>>;

    async fn export_survey_results(
        &self,
        request: Request<survey::ExportSurveyResultsRequest>,
    ) -> Result<Response<Self::ExportSurveyResultsStream>, Status> {
        let request = request.into_inner();
        let mut v = FieldViolations::new();
        let (closed_from, closed_to) = closed_range(
            request.closed_from.as_ref(),
            request.closed_to.as_ref(),
            &mut v,
        );
        v.into_result()?;
        let rows = self
            .store
            .export(closed_from, closed_to)
            .map(|row| row.map_err(store_status));
        Ok(Response::new(Box::pin(rows)))
    }
}

/// The closure-time window `[from, to)` of a request; either end may be open.
fn closed_range(
    from: Option<&Timestamp>,
    to: Option<&Timestamp>,
    v: &mut FieldViolations,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut time = |field: &str, ts: Option<&Timestamp>| {
        let ts = ts?;
        let at = from_timestamp(ts);
        if at.is_none() {
            v.add(field, "is not a valid time");
        }
        at
    };
    let from = time("closed_from", from);
    let to = time("closed_to", to);
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        v.add("closed_to", "must be after closed_from");
    }
    (from, to)
}

fn unknown_token() -> Status {
    Status::with_error_details(
        Code::NotFound,
        "survey token not found",
        ErrorDetails::with_resource_info("survey token", "", "", "not found"),
    )
}

fn expired_token(expires_at: DateTime<Utc>) -> Status {
    grpc_status::failed_precondition(
        "TOKEN_EXPIRED",
        "survey token",
        format!(
            "the survey token expired at {}",
            expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    )
}

fn store_status(err: StoreError) -> Status {
    err.into()
}

/// The one place a storage error of this service becomes a gRPC status.
impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        grpc_status::storage(&e)
    }
}
