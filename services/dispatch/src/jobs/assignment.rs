//! Which unit may take a job, and which is nearest: the rules dispatchers,
//! auto-assignment and recommendations share. 911 comes first: a unit busy
//! with an emergency is never offered 311 work.

use dispatch311_domain::distance::meters_between;
use dispatch311_proto::dispatch::v1::UnitStatus;

use crate::{
    jobs::state_machine::Refusal,
    store::{JobRow, units::UnitRow},
};

/// Why `unit` cannot take `job`, if it cannot. 911 work is named first: it
/// is the reason a dispatcher most needs to hear.
pub fn why_cannot_take(unit: &UnitRow, job: &JobRow) -> Option<Refusal> {
    let call_sign = &unit.call_sign;
    match unit.status {
        UnitStatus::BusyEmergency => {
            return Some(Refusal::new(
                "UNIT_ON_EMERGENCY",
                format!(
                    "unit {call_sign} is on a 911 emergency; 311 work never takes a unit off an emergency"
                ),
            ));
        }
        UnitStatus::OutOfService => {
            return Some(Refusal::new(
                "UNIT_OUT_OF_SERVICE",
                format!("unit {call_sign} is out of service"),
            ));
        }
        _ => {}
    }
    if unit.precinct != job.precinct {
        return Some(Refusal::new(
            "UNIT_OF_ANOTHER_PRECINCT",
            format!(
                "unit {call_sign} belongs to precinct {}; the job is in precinct {}",
                unit.precinct, job.precinct
            ),
        ));
    }
    if unit.current_job_id.is_some() || unit.status != UnitStatus::Available {
        return Some(Refusal::new(
            "UNIT_BUSY",
            format!("unit {call_sign} is already working another job"),
        ));
    }
    None
}

/// Units with a position, nearest to `location` first (call sign breaks ties).
pub fn rank_by_distance(
    units: impl IntoIterator<Item = UnitRow>,
    location: (f64, f64),
) -> Vec<(UnitRow, f64)> {
    let mut ranked: Vec<(UnitRow, f64)> = units
        .into_iter()
        .filter_map(|unit| {
            let distance = meters_between(unit.position?, location);
            Some((unit, distance))
        })
        .collect();
    ranked.sort_by(|(a, da), (b, db)| da.total_cmp(db).then_with(|| a.call_sign.cmp(&b.call_sign)));
    ranked
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn unit(call_sign: &str, status: UnitStatus, position: Option<(f64, f64)>) -> UnitRow {
        UnitRow {
            unit_id: Uuid::now_v7(),
            call_sign: call_sign.into(),
            precinct: "14".into(),
            officer_ids: vec!["O-1".into()],
            status,
            position,
            position_reported_at: None,
            current_job_id: None,
        }
    }

    fn queued_job(precinct: &str) -> JobRow {
        let now = Utc::now();
        JobRow {
            precinct: precinct.into(),
            created_at: now,
            queued_at: now,
            ..JobRow::sample()
        }
    }

    #[test]
    fn only_an_available_unit_of_the_precinct_takes_a_job() {
        let job = queued_job("14");
        assert_eq!(
            why_cannot_take(&unit("14-ADAM-1", UnitStatus::Available, None), &job),
            None
        );
        let refusal =
            why_cannot_take(&unit("14-ADAM-2", UnitStatus::BusyEmergency, None), &job).unwrap();
        assert_eq!(refusal.rule, "UNIT_ON_EMERGENCY");
        assert_eq!(
            refusal.description,
            "unit 14-ADAM-2 is on a 911 emergency; 311 work never takes a unit off an emergency"
        );
        assert_eq!(
            why_cannot_take(&unit("14-ADAM-3", UnitStatus::OutOfService, None), &job)
                .unwrap()
                .rule,
            "UNIT_OUT_OF_SERVICE"
        );
        assert_eq!(
            why_cannot_take(
                &unit("14-ADAM-4", UnitStatus::Available, None),
                &queued_job("18")
            )
            .unwrap()
            .rule,
            "UNIT_OF_ANOTHER_PRECINCT"
        );
        let busy = UnitRow {
            current_job_id: Some(Uuid::now_v7()),
            ..unit("14-ADAM-5", UnitStatus::Assigned, None)
        };
        assert_eq!(why_cannot_take(&busy, &job).unwrap().rule, "UNIT_BUSY");
    }

    #[test]
    fn the_911_refusal_wins_over_every_other() {
        let emergency_elsewhere = UnitRow {
            precinct: "18".into(),
            ..unit("18-BOY-1", UnitStatus::BusyEmergency, None)
        };
        assert_eq!(
            why_cannot_take(&emergency_elsewhere, &queued_job("14"))
                .unwrap()
                .rule,
            "UNIT_ON_EMERGENCY"
        );
    }

    #[test]
    fn units_rank_by_distance_and_those_without_a_position_are_left_out() {
        let incident = (40.7484, -73.9857);
        let ranked = rank_by_distance(
            [
                unit(
                    "14-ADAM-3",
                    UnitStatus::Available,
                    Some((40.7574, -73.9857)),
                ),
                unit(
                    "14-ADAM-1",
                    UnitStatus::Available,
                    Some((40.7494, -73.9857)),
                ),
                unit("14-ADAM-9", UnitStatus::Available, None),
                unit(
                    "14-ADAM-2",
                    UnitStatus::Available,
                    Some((40.7444, -73.9857)),
                ),
            ],
            incident,
        );
        let order: Vec<&str> = ranked.iter().map(|(u, _)| u.call_sign.as_str()).collect();
        assert_eq!(order, ["14-ADAM-1", "14-ADAM-2", "14-ADAM-3"]);
        assert!((ranked[0].1 - 111.0).abs() < 2.0, "{}", ranked[0].1);
    }

    #[test]
    fn a_unit_knows_its_officers() {
        let unit = UnitRow {
            officer_ids: vec!["O-1".into(), "O-2".into()],
            ..unit("14-ADAM-1", UnitStatus::Available, None)
        };
        assert!(unit.has_officer("O-2"));
        assert!(!unit.has_officer("O-3"));
        assert_eq!(unit.to_proto().status, UnitStatus::Available as i32);
    }
}
