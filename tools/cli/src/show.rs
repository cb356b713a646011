//! How requests, jobs, queues, routing decisions and rules are shown to a
//! person: aligned plain text, local times, short status names.

use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};
use dispatch311_domain::{
    status::{channel_name, priority_name, resolution_name, status_name},
    time::from_timestamp,
};
use dispatch311_proto::{
    Timestamp,
    common::v1::{Address, GeoPoint, Priority},
    dispatch::v1::ListQueueResponse,
    intake::v1::ServiceRequest,
    routing::v1::{RouteDecision, RoutingRule},
};

const NONE: &str = "-";

fn or_none(text: &str) -> &str {
    if text.is_empty() { NONE } else { text }
}

pub fn time(at: Option<&Timestamp>) -> String {
    at.and_then(from_timestamp)
        .map(|at| {
            at.with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| NONE.to_string())
}

/// "in 7h 59m" or "3m ago", from now.
fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (at - now).num_minutes();
    let span = |m: i64| {
        if m >= 60 {
            format!("{}h {}m", m / 60, m % 60)
        } else {
            format!("{m}m")
        }
    };
    if minutes >= 0 {
        format!("in {}", span(minutes))
    } else {
        format!("{} ago", span(-minutes))
    }
}

fn due(at: Option<&Timestamp>) -> String {
    match at.and_then(from_timestamp) {
        Some(due) => format!("{} ({})", time(at), relative(due, Utc::now())),
        None => NONE.to_string(),
    }
}

fn place(location: Option<&GeoPoint>, address: Option<&Address>) -> String {
    let mut parts = Vec::new();
    if let Some(point) = location {
        parts.push(format!("{:.6}, {:.6}", point.latitude, point.longitude));
    }
    if let Some(address) = address {
        let mut text = address.street_address.clone();
        if !address.cross_street.is_empty() {
            let _ = write!(text, " at {}", address.cross_street);
        }
        for part in [&address.borough, &address.postal_code] {
            if !part.is_empty() {
                let _ = write!(text, ", {part}");
            }
        }
        if !text.is_empty() {
            parts.push(text.trim_start_matches(", ").to_string());
        }
    }
    if parts.is_empty() {
        NONE.to_string()
    } else {
        parts.join(" · ")
    }
}

/// Unset until routed.
fn priority(priority: Priority) -> &'static str {
    if priority == Priority::Unspecified {
        NONE
    } else {
        priority_name(priority)
    }
}

fn kind(complaint_type: &str, descriptor: &str) -> String {
    if descriptor.is_empty() {
        complaint_type.to_string()
    } else {
        format!("{complaint_type} / {descriptor}")
    }
}

/// The public record of a request with its timeline.
pub fn service_request(sr: &ServiceRequest) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}", sr.sr_number, status_name(sr.status()));
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "  {name:<11} {value}");
    };
    field("type", &kind(&sr.complaint_type, &sr.descriptor));
    field("where", &place(sr.location.as_ref(), sr.address.as_ref()));
    field("agency", or_none(&sr.agency));
    field("precinct", or_none(&sr.precinct));
    field("priority", priority(sr.priority()));
    field("SLA due", &due(sr.sla_due_at.as_ref()));
    field(
        "filed",
        &format!(
            "{} via {}",
            time(sr.created_at.as_ref()),
            channel_name(sr.channel())
        ),
    );
    field("photos", &sr.photo_count.to_string());
    if let Some(resolution) = &sr.resolution {
        field(
            "resolution",
            &format!(
                "{} at {}: {}",
                resolution_name(resolution.code()),
                time(resolution.resolved_at.as_ref()),
                resolution.text
            ),
        );
    }
    field("trace id", or_none(&sr.trace_id));
    out.push_str("timeline\n");
    out.push_str(&timeline(sr));
    out
}

pub fn timeline(sr: &ServiceRequest) -> String {
    if sr.timeline.is_empty() {
        return format!("  {NONE}\n");
    }
    let mut out = String::new();
    for entry in &sr.timeline {
        let _ = write!(
            out,
            "  {}  {:<12} {:<9} {}",
            time(entry.occurred_at.as_ref()),
            status_name(entry.status()),
            entry.source,
            entry.message
        );
        // where an SRE picks up the step's trace
        if !entry.trace_id.is_empty() {
            let _ = write!(out, "  (trace {})", entry.trace_id);
        }
        out.push('\n');
    }
    out
}

/// Rows under a header, each column as wide as its widest cell; the last
/// column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A precinct's queue; the job of `highlight` (an SR number) is marked.
pub fn queue(precinct: &str, response: &ListQueueResponse, highlight: Option<&str>) -> String {
    let mut out = format!("precinct {precinct}: {} open jobs\n", response.total_queued);
    if response.jobs.is_empty() {
        return out;
    }
    let rows: Vec<Vec<String>> = response
        .jobs
        .iter()
        .map(|job| {
            let marker = if highlight == Some(job.sr_number.as_str()) {
                "*"
            } else {
                ""
            };
            vec![
                marker.to_string(),
                priority(job.priority()).to_string(),
                job.state()
                    .as_str_name()
                    .trim_start_matches("JOB_STATE_")
                    .to_string(),
                job.sr_number.clone(),
                time(job.queued_at.as_ref()),
                time(job.sla_due_at.as_ref()),
                format!(
                    "{} · {}",
                    kind(&job.complaint_type, &job.descriptor),
                    place(job.location.as_ref(), job.address.as_ref())
                ),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "",
            "PRIORITY",
            "STATE",
            "SR NUMBER",
            "QUEUED",
            "SLA DUE",
            "WHAT / WHERE",
        ],
        &rows,
    ));
    let shown = response.jobs.len() as i64;
    if shown < response.total_queued {
        let _ = writeln!(out, "… and {} more", response.total_queued - shown);
    }
    out
}

pub fn decision(decision: &RouteDecision) -> String {
    let mut out = String::new();
    let outcome = decision
        .outcome()
        .as_str_name()
        .trim_start_matches("ROUTE_OUTCOME_");
    let sla = if decision.sla_minutes == 0 {
        NONE.to_string()
    } else {
        format!("{} min", decision.sla_minutes)
    };
    for (name, value) in [
        ("outcome", outcome),
        ("agency", or_none(&decision.agency)),
        ("precinct", or_none(&decision.precinct)),
        ("priority", priority(decision.priority())),
        ("SLA", &sla),
        ("rule", or_none(&decision.rule_id)),
        ("type", or_none(&decision.complaint_type)),
        ("police", if decision.police_matter { "yes" } else { "no" }),
    ] {
        let _ = writeln!(out, "{name:<9} {value}");
    }
    out.push_str("why\n");
    for (i, reason) in decision.explanation.iter().enumerate() {
        let _ = writeln!(out, "  {}. {reason}", i + 1);
    }
    out
}

pub fn rules(rules: &[RoutingRule]) -> String {
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|rule| {
            let sla = if rule.sla_minutes == 0 {
                NONE.to_string()
            } else {
                format!("{} min", rule.sla_minutes)
            };
            vec![
                rule.rule_id.clone(),
                rule.complaint_type.clone(),
                or_none(&rule.descriptor).to_string(),
                rule.outcome()
                    .as_str_name()
                    .trim_start_matches("ROUTE_OUTCOME_")
                    .to_string(),
                rule.agency.clone(),
                priority(rule.priority()).to_string(),
                sla,
                if rule.needs_location { "yes" } else { "no" }.to_string(),
                if rule.aliases.is_empty() {
                    NONE.to_string()
                } else {
                    rule.aliases.join(", ")
                },
            ]
        })
        .collect();
    let mut out = table(
        &[
            "RULE",
            "COMPLAINT TYPE",
            "DESCRIPTOR",
            "OUTCOME",
            "AGENCY",
            "PRIORITY",
            "SLA",
            "PLACE",
            "ALSO FILED AS",
        ],
        &rows,
    );
    let _ = writeln!(out, "{} rules", rules.len());
    out
}

#[cfg(test)]
mod tests {
    use dispatch311_proto::{common::v1::ServiceRequestStatus, intake::v1::TimelineEntry};

    use super::*;

    #[test]
    fn shows_what_a_person_needs_and_nothing_unset() {
        let sr = ServiceRequest {
            sr_number: "SR-2026-0000042".into(),
            complaint_type: "Illegal Parking".into(),
            descriptor: "Blocked Hydrant".into(),
            location: Some(GeoPoint {
                latitude: 40.7484,
                longitude: -73.9857,
            }),
            address: Some(Address {
                street_address: "350 5th Avenue".into(),
                borough: "MANHATTAN".into(),
                ..Default::default()
            }),
            status: ServiceRequestStatus::Queued as i32,
            agency: "NYPD".into(),
            precinct: "14".into(),
            priority: Priority::High as i32,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            timeline: vec![TimelineEntry {
                status: ServiceRequestStatus::Routed as i32,
                source: "routing".into(),
                message: "routed to NYPD precinct 14".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = service_request(&sr);
        assert!(text.starts_with("SR-2026-0000042  QUEUED\n"), "{text}");
        assert!(text.contains("Illegal Parking / Blocked Hydrant"), "{text}");
        assert!(
            text.contains("40.748400, -73.985700 · 350 5th Avenue, MANHATTAN"),
            "{text}"
        );
        assert!(text.contains("precinct    14"), "{text}");
        assert!(text.contains("priority    HIGH"), "{text}");
        assert!(text.contains("SLA due     -"), "{text}");
        assert!(
            text.contains("trace id    4bf92f3577b34da6a3ce929d0e0e4736"),
            "{text}"
        );
        assert!(
            text.contains("ROUTED       routing   routed to NYPD precinct 14"),
            "{text}"
        );
    }

    #[test]
    fn lines_up_columns_to_the_widest_cell() {
        let rows = vec![
            vec![
                "nypd-illegal-parking-hydrant".to_string(),
                "DISPATCH".to_string(),
            ],
            vec!["dot".to_string(), "REFER".to_string()],
        ];
        assert_eq!(
            table(&["RULE", "OUTCOME"], &rows),
            "RULE                          OUTCOME\n\
             nypd-illegal-parking-hydrant  DISPATCH\n\
             dot                           REFER\n"
        );
    }

    #[test]
    fn says_how_far_away_a_deadline_is() {
        let now = Utc::now();
        assert_eq!(
            relative(now + chrono::Duration::minutes(479), now),
            "in 7h 59m"
        );
        assert_eq!(relative(now - chrono::Duration::minutes(3), now), "3m ago");
    }
}
