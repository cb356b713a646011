//! Units as stored: reading and locking them, what a unit's status, position
//! and job become, its feed, registration, listing, and the precincts'
//! auto-assignment setting. Lock order, as everywhere: the job first, then
//! its unit(s).

use chrono::{DateTime, Utc};
use dispatch311_domain::time::to_timestamp;
use dispatch311_proto::{
    common::v1::GeoPoint,
    dispatch::v1::{AssignmentChange, Unit, UnitStatus},
};
use sqlx::{PgConnection, Row, postgres::PgRow};
use tracing::Instrument;
use uuid::Uuid;

use super::feed;
use crate::jobs::state_machine::unit_status_after_release;

/// A unit as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    pub unit_id: Uuid,
    pub call_sign: String,
    pub precinct: String,
    pub officer_ids: Vec<String>,
    pub status: UnitStatus,
    pub position: Option<(f64, f64)>,
    pub position_reported_at: Option<DateTime<Utc>>,
    pub current_job_id: Option<Uuid>,
}

impl UnitRow {
    pub fn has_officer(&self, officer_id: &str) -> bool {
        self.officer_ids.iter().any(|id| id == officer_id)
    }

    pub fn to_proto(&self) -> Unit {
        Unit {
            unit_id: self.unit_id.to_string(),
            call_sign: self.call_sign.clone(),
            precinct: self.precinct.clone(),
            officer_ids: self.officer_ids.clone(),
            status: self.status as i32,
            position: self.position.map(|(latitude, longitude)| GeoPoint {
                latitude,
                longitude,
            }),
            position_reported_at: self.position_reported_at.map(to_timestamp),
            current_job_id: self
                .current_job_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }
    }
}

pub fn status_name(status: UnitStatus) -> &'static str {
    status.as_str_name().trim_start_matches("UNIT_STATUS_")
}

pub fn unit_row(row: &PgRow) -> UnitRow {
    let latitude: Option<f64> = row.get("latitude");
    let longitude: Option<f64> = row.get("longitude");
    let status: String = row.get("status");
    UnitRow {
        unit_id: row.get("unit_id"),
        call_sign: row.get("call_sign"),
        precinct: row.get("precinct"),
        officer_ids: row.get("officer_ids"),
        status: UnitStatus::from_str_name(&format!("UNIT_STATUS_{status}")).unwrap_or_default(),
        position: latitude.zip(longitude),
        position_reported_at: row.get("position_reported_at"),
        current_job_id: row.get("current_job_id"),
    }
}

/// Reads a unit without locking it.
pub async fn read_unit(
    conn: &mut PgConnection,
    unit_id: Uuid,
) -> Result<Option<UnitRow>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM units WHERE unit_id = $1")
        .bind(unit_id)
        .fetch_optional(conn)
        .instrument(dispatch311_db::statement_span("SELECT", "units"))
        .await?;
    Ok(row.as_ref().map(unit_row))
}

/// Locks a unit's row for the rest of the transaction (after its job's, if any).
pub async fn lock_unit(
    conn: &mut PgConnection,
    unit_id: Uuid,
) -> Result<Option<UnitRow>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM units WHERE unit_id = $1 FOR UPDATE")
        .bind(unit_id)
        .fetch_optional(conn)
        .instrument(dispatch311_db::statement_span("SELECT", "units"))
        .await?;
    Ok(row.as_ref().map(unit_row))
}

/// Locks several units in one order (by id), so two transactions that lock
/// the same units never wait on each other in a circle.
pub async fn lock_units(
    conn: &mut PgConnection,
    unit_ids: &[Uuid],
) -> Result<Vec<UnitRow>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT * FROM units WHERE unit_id = ANY($1) ORDER BY unit_id FOR UPDATE")
            .bind(unit_ids)
            .fetch_all(conn)
            .instrument(dispatch311_db::statement_span("SELECT", "units"))
            .await?;
    Ok(rows.iter().map(unit_row).collect())
}

/// The available units of `precinct` with a known position (the caller
/// ranks them: `units::rank_by_distance`).
pub async fn available_in(
    conn: &mut PgConnection,
    precinct: &str,
) -> Result<Vec<UnitRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT * FROM units WHERE precinct = $1 AND status = 'AVAILABLE' AND current_job_id IS NULL \
            AND latitude IS NOT NULL AND longitude IS NOT NULL",
    )
    .bind(precinct)
    .fetch_all(conn)
    .instrument(dispatch311_db::statement_span("SELECT", "units"))
    .await?;
    Ok(rows.iter().map(unit_row).collect())
}

pub async fn set_position(
    conn: &mut PgConnection,
    unit_id: Uuid,
    position: (f64, f64),
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE units SET latitude = $2, longitude = $3, position_reported_at = $4, updated_at = $4 \
         WHERE unit_id = $1",
    )
    .bind(unit_id)
    .bind(position.0)
    .bind(position.1)
    .bind(at)
    .execute(conn)
    .instrument(dispatch311_db::statement_span("UPDATE", "units"))
    .await?;
    Ok(())
}

/// The locked `unit` takes `job_id`: ASSIGNED, and its feed says so.
pub async fn take(
    conn: &mut PgConnection,
    unit: &UnitRow,
    job_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE units SET status = 'ASSIGNED', current_job_id = $2, updated_at = $3 WHERE unit_id = $1",
    )
    .bind(unit.unit_id)
    .bind(job_id)
    .bind(at)
    .execute(&mut *conn)
    .instrument(dispatch311_db::statement_span("UPDATE", "units"))
    .await?;
    feed::push(conn, unit.unit_id, job_id, AssignmentChange::Assigned, at).await?;
    Ok(())
}

/// The locked `unit` follows its job to `status` (en route, on scene); its
/// feed gets an update.
pub async fn follow(
    conn: &mut PgConnection,
    unit: &UnitRow,
    job_id: Uuid,
    status: UnitStatus,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if unit.current_job_id == Some(job_id) {
        sqlx::query("UPDATE units SET status = $2, updated_at = $3 WHERE unit_id = $1")
            .bind(unit.unit_id)
            .bind(status_name(status))
            .bind(at)
            .execute(&mut *conn)
            .instrument(dispatch311_db::statement_span("UPDATE", "units"))
            .await?;
    }
    feed::push(conn, unit.unit_id, job_id, AssignmentChange::Updated, at).await?;
    Ok(())
}

/// The locked `unit` no longer works `job_id` (closed, cancelled, taken
/// away): available again unless it is on 911 work or out of service; its
/// feed gets `change`.
pub async fn release(
    conn: &mut PgConnection,
    unit: &UnitRow,
    job_id: Uuid,
    change: AssignmentChange,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if unit.current_job_id == Some(job_id) {
        sqlx::query(
            "UPDATE units SET status = $2, current_job_id = NULL, updated_at = $3 WHERE unit_id = $1",
        )
        .bind(unit.unit_id)
        .bind(status_name(unit_status_after_release(unit.status)))
        .bind(at)
        .execute(&mut *conn)
        .instrument(dispatch311_db::statement_span("UPDATE", "units"))
        .await?;
    }
    feed::push(conn, unit.unit_id, job_id, change, at).await?;
    Ok(())
}

/// Whether the precinct turned auto-assignment on.
pub async fn auto_assign_on(conn: &mut PgConnection, precinct: &str) -> Result<bool, sqlx::Error> {
    let enabled: Option<bool> =
        sqlx::query_scalar("SELECT auto_assign FROM precinct_settings WHERE precinct = $1")
            .bind(precinct)
            .fetch_optional(conn)
            .instrument(dispatch311_db::statement_span(
                "SELECT",
                "precinct_settings",
            ))
            .await?;
    Ok(enabled.unwrap_or(false))
}

/// The unit reports a status of its own (available, 911 work, out of
/// service); the caller holds its row lock.
pub async fn set_status(
    conn: &mut PgConnection,
    unit_id: Uuid,
    status: UnitStatus,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE units SET status = $2, updated_at = $3 WHERE unit_id = $1")
        .bind(unit_id)
        .bind(status_name(status))
        .bind(at)
        .execute(conn)
        .instrument(dispatch311_db::statement_span("UPDATE", "units"))
        .await?;
    Ok(())
}

impl super::Store {
    /// Registers a unit available for work; registering a call sign again
    /// updates it and creates nothing (one statement).
    pub async fn register_unit(
        &self,
        call_sign: &str,
        precinct: &str,
        officer_ids: &[String],
        position: Option<(f64, f64)>,
        at: DateTime<Utc>,
    ) -> Result<UnitRow, sqlx::Error> {
        let (latitude, longitude) = position.unzip();
        let row = sqlx::query(
            "INSERT INTO units (unit_id, call_sign, precinct, officer_ids, status, latitude, longitude, \
                position_reported_at, current_job_id, updated_at) \
             VALUES ($1, $2, $3, $4, 'AVAILABLE', $5, $6, $7, NULL, $8) \
             ON CONFLICT (call_sign) DO UPDATE SET \
                precinct = EXCLUDED.precinct, officer_ids = EXCLUDED.officer_ids, \
                latitude = coalesce(EXCLUDED.latitude, units.latitude), \
                longitude = coalesce(EXCLUDED.longitude, units.longitude), \
                position_reported_at = coalesce(EXCLUDED.position_reported_at, units.position_reported_at), \
                updated_at = EXCLUDED.updated_at \
             RETURNING *",
        )
        .bind(Uuid::now_v7())
        .bind(call_sign)
        .bind(precinct)
        .bind(officer_ids)
        .bind(latitude)
        .bind(longitude)
        .bind(position.map(|_| at))
        .bind(at)
        .fetch_one(self.pool())
        .instrument(dispatch311_db::statement_span("INSERT", "units"))
        .await?;
        Ok(unit_row(&row))
    }

    /// Up to `limit` units of `precinct` by call sign, after `after` (call
    /// signs are unique: the last of a page is the cursor).
    pub async fn units_of(
        &self,
        precinct: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UnitRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT * FROM units WHERE precinct = $1 AND ($2::text IS NULL OR call_sign > $2) \
             ORDER BY call_sign LIMIT $3",
        )
        .bind(precinct)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .instrument(dispatch311_db::statement_span("SELECT", "units"))
        .await?;
        Ok(rows.iter().map(unit_row).collect())
    }

    /// Turns a precinct's auto-assignment on or off.
    pub async fn set_auto_assign(&self, precinct: &str, enabled: bool) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO precinct_settings (precinct, auto_assign) VALUES ($1, $2) \
             ON CONFLICT (precinct) DO UPDATE SET auto_assign = EXCLUDED.auto_assign",
        )
        .bind(precinct)
        .bind(enabled)
        .execute(self.pool())
        .instrument(dispatch311_db::statement_span(
            "INSERT",
            "precinct_settings",
        ))
        .await?;
        Ok(())
    }
}

/// Whether `officer` crews the unit (`None` for anyone: a dispatcher or a
/// supervisor); `None` when there is no such unit.
pub async fn crewed_by(
    pool: &sqlx::PgPool,
    unit_id: Uuid,
    officer: Option<&str>,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT $2::text IS NULL OR $2 = ANY(officer_ids) FROM units WHERE unit_id = $1",
    )
    .bind(unit_id)
    .bind(officer)
    .fetch_optional(pool)
    .instrument(dispatch311_db::statement_span("SELECT", "units"))
    .await
}
