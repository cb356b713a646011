//! Request validation shared by the RPCs that change jobs and units: each
//! helper records what is wrong in `FieldViolations` and returns a
//! placeholder, so a handler collects every problem before answering
//! INVALID_ARGUMENT once.

use dispatch311_grpc::status::{FieldViolations, permission_denied};
use dispatch311_proto::{
    common::v1::GeoPoint,
    dispatch::v1::{Actor, Role},
};
use tonic::Status;
use uuid::Uuid;

use crate::store::events::ActorRef;

const MAX_ACTOR_ID_CHARS: usize = 64;

/// The actor of a request: an id and a role are required.
pub fn actor(actor: Option<&Actor>, v: &mut FieldViolations) -> ActorRef {
    let Some(actor) = actor else {
        v.add(
            "actor",
            "required: who is doing this, with an id and a role",
        );
        return ActorRef::system();
    };
    let id = actor.id.trim();
    if id.is_empty() {
        v.add("actor.id", "required, e.g. a badge or employee number");
    } else if id.chars().count() > MAX_ACTOR_ID_CHARS || id.chars().any(char::is_control) {
        v.add(
            "actor.id",
            format!("must be at most {MAX_ACTOR_ID_CHARS} printable characters"),
        );
    }
    let role = match Role::try_from(actor.role) {
        Ok(Role::Unspecified) | Err(_) => {
            v.add(
                "actor.role",
                "required: DISPATCHER, OFFICER, SUPERVISOR or SYSTEM",
            );
            Role::Unspecified
        }
        Ok(role) => role,
    };
    ActorRef {
        id: id.to_string(),
        role,
    }
}

/// A required UUID field.
pub fn uuid(value: &str, field: &str, v: &mut FieldViolations) -> Uuid {
    let value = value.trim();
    if value.is_empty() {
        v.add(field, "required");
        return Uuid::nil();
    }
    Uuid::parse_str(value).unwrap_or_else(|_| {
        v.add(field, "must be a UUID");
        Uuid::nil()
    })
}

/// An optional position; when given it must be a point on Earth.
pub fn position(
    point: Option<&GeoPoint>,
    field: &str,
    v: &mut FieldViolations,
) -> Option<(f64, f64)> {
    let point = point?;
    let mut valid = true;
    if !(point.latitude.is_finite() && (-90.0..=90.0).contains(&point.latitude)) {
        v.add(format!("{field}.latitude"), "must be between -90 and 90");
        valid = false;
    }
    if !(point.longitude.is_finite() && (-180.0..=180.0).contains(&point.longitude)) {
        v.add(format!("{field}.longitude"), "must be between -180 and 180");
        valid = false;
    }
    valid.then_some((point.latitude, point.longitude))
}

/// A required position.
pub fn required_position(
    point: Option<&GeoPoint>,
    field: &str,
    why: &str,
    v: &mut FieldViolations,
) -> (f64, f64) {
    if point.is_none() {
        v.add(field, format!("required: {why}"));
    }
    position(point, field, v).unwrap_or_default()
}

/// Free text, trimmed; `required` makes an empty value a violation.
pub fn text(
    value: &str,
    field: &str,
    max_chars: usize,
    required: bool,
    v: &mut FieldViolations,
) -> String {
    let value = value.trim();
    if required && value.is_empty() {
        v.add(field, "required");
    } else if value.chars().count() > max_chars {
        v.add(field, format!("must be at most {max_chars} characters"));
    }
    value.to_string()
}

/// A precinct number such as "14".
pub fn precinct(value: &str, field: &str, v: &mut FieldViolations) -> String {
    let precinct = value.trim();
    if precinct.is_empty() {
        v.add(field, "required, e.g. \"14\"");
    } else if precinct.len() > 16 || !precinct.bytes().all(|b| b.is_ascii_alphanumeric()) {
        v.add(field, "must be a precinct number such as \"14\"");
    }
    precinct.to_string()
}

/// PERMISSION_DENIED unless the actor has one of `roles`.
pub fn role(actor: &ActorRef, roles: &[Role], refusal: &str) -> Result<(), Status> {
    if roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(permission_denied(refusal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_needs_an_id_and_a_role() {
        let mut v = FieldViolations::new();
        actor(None, &mut v);
        actor(
            Some(&Actor {
                id: " ".into(),
                role: 0,
            }),
            &mut v,
        );
        assert_eq!(v.len(), 3);
        let mut v = FieldViolations::new();
        let officer = actor(
            Some(&Actor {
                id: " O-1 ".into(),
                role: Role::Officer as i32,
            }),
            &mut v,
        );
        assert!(v.is_empty());
        assert_eq!(officer.id, "O-1");
        assert_eq!(officer.role, Role::Officer);
    }

    #[test]
    fn positions_must_be_on_earth() {
        let mut v = FieldViolations::new();
        let bad = GeoPoint {
            latitude: 140.0,
            longitude: f64::NAN,
        };
        assert_eq!(position(Some(&bad), "position", &mut v), None);
        assert_eq!(v.len(), 2);
        let mut v = FieldViolations::new();
        assert_eq!(position(None, "position", &mut v), None);
        required_position(None, "position", "where the unit is", &mut v);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn ids_and_precincts_are_checked() {
        let mut v = FieldViolations::new();
        uuid("not-a-uuid", "job_id", &mut v);
        uuid("", "unit_id", &mut v);
        precinct("14; drop", "precinct", &mut v);
        assert_eq!(v.len(), 3);
        let mut v = FieldViolations::new();
        assert_eq!(precinct(" 14 ", "precinct", &mut v), "14");
        assert!(v.is_empty());
    }
}
