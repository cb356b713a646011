//! The total-queue check after the final drain: what the clients were told
//! was accepted against what the services hold — lost, duplicated, dead —
//! read from each service's own tables and the queues.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use sqlx::PgPool;

/// The figures of one run.
#[derive(Debug, Default)]
pub struct Report {
    pub seconds: u64,
    pub faults: BTreeMap<String, u64>,
    /// What the TCP fault proxies did to the services' traffic, by server and effect.
    pub proxy_effects: BTreeMap<String, u64>,
    pub acknowledged: u64,
    pub refused: BTreeMap<String, u64>,
    pub abandoned: u64,
    pub retries: u64,
    pub present_in_intake: u64,
    /// Acknowledged, but absent from intake.
    pub lost_absent: u64,
    /// In intake, but never routed (no decision), or routed to dispatch and no job.
    pub lost_unrouted: u64,
    pub largest_backlog: u64,
    pub closes: u64,
    pub answers: u64,
    pub not_fixed: u64,
    /// Each duplicated effect, by kind.
    pub duplicates: BTreeMap<&'static str, u64>,
    pub dead_letters: u64,
    pub chain_failures: u64,
    pub chain_report: String,
    pub drain: Option<Duration>,
}

impl Report {
    pub fn lost(&self) -> u64 {
        self.lost_absent + self.lost_unrouted
    }

    pub fn duplicated(&self) -> u64 {
        self.duplicates.values().sum()
    }

    /// No loss, no duplicate, nothing dead, every chain intact, drained.
    pub fn passed(&self) -> bool {
        self.lost() == 0
            && self.duplicated() == 0
            && self.dead_letters == 0
            && self.chain_failures == 0
            && self.drain.is_some()
            && self.acknowledged > 0
    }

    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |name: &str, value: String| rows.push((name.to_string(), value));
        row("run (s)", self.seconds.to_string());
        for (fault, count) in &self.faults {
            row(&format!("fault: {fault}"), count.to_string());
        }
        for (effect, count) in &self.proxy_effects {
            row(&format!("  fault proxy, {effect}"), count.to_string());
        }
        row(
            "requests acknowledged to the client",
            self.acknowledged.to_string(),
        );
        row(
            "  retried calls (same request id)",
            self.retries.to_string(),
        );
        row(
            "  refused (not acknowledged)",
            format!("{:?}", self.refused),
        );
        row("  given up after retrying", self.abandoned.to_string());
        row(
            "requests present in intake",
            self.present_in_intake.to_string(),
        );
        row("LOST: acknowledged, absent", self.lost_absent.to_string());
        row(
            "LOST: never routed or never queued",
            self.lost_unrouted.to_string(),
        );
        row(
            "largest dispatch queue in the pause (entries)",
            self.largest_backlog.to_string(),
        );
        row("closes acknowledged", self.closes.to_string());
        row(
            "survey answers / not fixed",
            format!("{} / {}", self.answers, self.not_fixed),
        );
        for (kind, count) in &self.duplicates {
            row(&format!("DUPLICATED: {kind}"), count.to_string());
        }
        row("jobs in dead-letter streams", self.dead_letters.to_string());
        row(
            "hash chains failing verification",
            self.chain_failures.to_string(),
        );
        row(
            "last fault → every queue empty",
            self.drain.map_or("did not drain".to_string(), |d| {
                format!("{:.1} s", d.as_secs_f64())
            }),
        );
        row(
            "result",
            if self.passed() { "PASS" } else { "FAIL" }.to_string(),
        );
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let mut text = String::new();
        for (name, value) in rows {
            let _ = writeln!(text, "{name:<width$}  {value}");
        }
        text
    }
}

/// Acknowledged requests absent from intake, and those in intake that never
/// got a route decision or, routed to dispatch, never a job. Whole tables
/// are read and compared here: a database holds only its run.
pub async fn losses(pool: &PgPool, acknowledged: &[String]) -> anyhow::Result<(u64, u64, u64)> {
    let in_intake: HashSet<String> =
        sqlx::query_scalar("SELECT request_id FROM intake.service_requests")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let stuck: HashSet<String> = sqlx::query_scalar(
        "SELECT r.request_id FROM intake.service_requests r
         LEFT JOIN routing.route_decisions d USING (sr_id)
         LEFT JOIN dispatch.jobs j USING (sr_id)
         WHERE d.sr_id IS NULL OR (d.outcome = 'ROUTE_OUTCOME_DISPATCH' AND j.sr_id IS NULL)",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let present = acknowledged
        .iter()
        .filter(|id| in_intake.contains(*id))
        .count() as u64;
    let unrouted = acknowledged.iter().filter(|id| stuck.contains(*id)).count() as u64;
    Ok((present, acknowledged.len() as u64 - present, unrouted))
}

/// Every effect that happened more often than what caused it.
pub async fn duplicates(pool: &PgPool) -> anyhow::Result<BTreeMap<&'static str, u64>> {
    let checks: [(&'static str, &str); 7] = [
        (
            "two jobs for one SR",
            "SELECT count(*) FROM (SELECT sr_id FROM dispatch.jobs GROUP BY sr_id HAVING count(*) > 1) d",
        ),
        (
            "two route decisions for one SR",
            "SELECT count(*) FROM (SELECT sr_id FROM routing.route_decisions GROUP BY sr_id HAVING count(*) > 1) d",
        ),
        (
            "a once-only timeline step twice (RECEIVED, ROUTED, REFERRED)",
            "SELECT count(*) FROM (SELECT sr_id, status FROM intake.timeline_entries
              WHERE status IN ('RECEIVED', 'ROUTED', 'REFERRED')
              GROUP BY sr_id, status HAVING count(*) > 1) d",
        ),
        (
            "more CLOSED timeline entries than closes",
            "WITH entries AS (SELECT sr_id, count(*) AS n FROM intake.timeline_entries
                              WHERE status = 'CLOSED' GROUP BY sr_id),
                  closes AS (SELECT j.sr_id, count(*) AS n FROM dispatch.job_events e
                             JOIN dispatch.jobs j USING (job_id)
                             WHERE e.event_type = 'CLOSED' GROUP BY j.sr_id)
             SELECT count(*) FROM entries LEFT JOIN closes USING (sr_id)
             WHERE entries.n > coalesce(closes.n, 0)",
        ),
        (
            "two closures in the survey for one close",
            "WITH closures AS (SELECT sr_id, count(*) AS n FROM survey.closures GROUP BY sr_id),
                  closes AS (SELECT j.sr_id, count(*) AS n FROM dispatch.job_events e
                             JOIN dispatch.jobs j USING (job_id)
                             WHERE e.event_type = 'CLOSED' GROUP BY j.sr_id)
             SELECT count(*) FROM closures LEFT JOIN closes USING (sr_id)
             WHERE closures.n > coalesce(closes.n, 0)",
        ),
        (
            "two survey rows for one closure",
            "SELECT count(*) FROM (SELECT sr_id, closure_number FROM survey.closures
              GROUP BY sr_id, closure_number HAVING count(*) > 1) d",
        ),
        (
            "two reopenings for one answer",
            "WITH reopenings AS (SELECT j.sr_id, count(*) AS n FROM dispatch.job_events e
                                 JOIN dispatch.jobs j USING (job_id)
                                 WHERE e.event_type = 'REOPENED' GROUP BY j.sr_id),
                  answers AS (SELECT c.sr_id, count(*) AS n FROM survey.responses r
                              JOIN survey.closures c ON c.id = r.closure_id
                              WHERE r.reopen_requested GROUP BY c.sr_id)
             SELECT count(*) FROM reopenings LEFT JOIN answers USING (sr_id)
             WHERE reopenings.n > coalesce(answers.n, 0)",
        ),
    ];
    let mut found = BTreeMap::new();
    for (kind, sql) in checks {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
        found.insert(kind, count as u64);
    }
    Ok(found)
}
