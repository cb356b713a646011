//! Open requests near a point, for the "already reported?" view. Reads only
//! the columns anyone may see, plus the coordinates to measure with (which
//! never leave this file).

use super::*;
use crate::validate::NearbyQuery;
use tracing::Instrument;

/// The statuses a request still waits in: filed and not yet closed,
/// surveyed, cancelled or linked to another as its duplicate (its parent is
/// the one to show).
const OPEN_STATUSES: [ServiceRequestStatus; 10] = [
    ServiceRequestStatus::Received,
    ServiceRequestStatus::Routed,
    ServiceRequestStatus::Queued,
    ServiceRequestStatus::Assigned,
    ServiceRequestStatus::Acknowledged,
    ServiceRequestStatus::EnRoute,
    ServiceRequestStatus::OnScene,
    ServiceRequestStatus::Reopened,
    ServiceRequestStatus::Referred,
    ServiceRequestStatus::NeedsTriage,
];

/// Metres per degree of latitude, for the bounding box that narrows the
/// search before distances are measured.
const METRES_PER_DEGREE: f64 = 111_320.0;

/// One open request near the point, with its distance in metres.
#[derive(Debug, Clone)]
pub struct NearbyRow {
    pub sr_number: String,
    pub complaint_type: String,
    pub descriptor: String,
    pub status: ServiceRequestStatus,
    pub created_at: DateTime<Utc>,
    pub distance_m: f64,
}

impl Store {
    /// Open requests of `query.complaint_type` (case and spacing ignored)
    /// within `radius_m` of the point, filed after `filed_after`, nearest
    /// first, then newest.
    pub async fn nearby_open_requests(&self, query: &NearbyQuery) -> StoreResult<Vec<NearbyRow>> {
        let statuses: Vec<&str> = OPEN_STATUSES.iter().map(|s| status_name(*s)).collect();
        let latitude_span = query.radius_m / METRES_PER_DEGREE;
        let longitude_span =
            query.radius_m / (METRES_PER_DEGREE * query.latitude.to_radians().cos().max(0.01));
        let rows = sqlx::query(
            "SELECT sr_number, complaint_type, descriptor, status, created_at, distance_m FROM ( \
                SELECT sr_number, complaint_type, descriptor, status, created_at, \
                    2 * 6371008.8 * asin(sqrt( \
                        power(sin(radians(latitude - $2) / 2), 2) + \
                        cos(radians($2)) * cos(radians(latitude)) * \
                        power(sin(radians(longitude - $3) / 2), 2))) AS distance_m \
                FROM service_requests \
                WHERE status = ANY($4) AND created_at >= $5 \
                  AND lower(regexp_replace(trim(complaint_type), '\\s+', ' ', 'g')) = $1 \
                  AND latitude BETWEEN $2 - $6 AND $2 + $6 \
                  AND longitude BETWEEN $3 - $7 AND $3 + $7) near \
             WHERE distance_m <= $8 ORDER BY distance_m, created_at DESC LIMIT $9",
        )
        .bind(normalised_type(&query.complaint_type))
        .bind(query.latitude)
        .bind(query.longitude)
        .bind(&statuses)
        .bind(query.filed_after)
        .bind(latitude_span)
        .bind(longitude_span)
        .bind(query.radius_m)
        .bind(query.limit)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "service_requests"))
        .await?;
        Ok(rows
            .iter()
            .map(|row| NearbyRow {
                sr_number: row.get("sr_number"),
                complaint_type: row.get("complaint_type"),
                descriptor: row.get("descriptor"),
                status: status_from_name(row.get::<&str, _>("status")).unwrap_or_default(),
                created_at: row.get("created_at"),
                distance_m: row.get("distance_m"),
            })
            .collect())
    }
}

/// Lower case, single spaces: how the view matches complaint types.
fn normalised_type(complaint_type: &str) -> String {
    complaint_type
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}
