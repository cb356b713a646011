//! `verify-log`: an auditor's own check of dispatch's event log, trusting
//! neither the database nor the service — only the public (verifier) key and
//! the checkpoints exported to the object store.
//!
//! Every event's hash is recomputed from its content, every job's chain is
//! followed, and the whole log is hashed into the Merkle tree the service
//! signs; at each exported checkpoint's size the tree's root must be the
//! signed one, and the log must reach the largest size ever signed.

use std::collections::HashMap;

use dispatch311_domain::event_log::{
    self, Checkpoint, EventContent, Frontier, leaf_hash, parse_verifier_key,
};
use dispatch311_proto::dispatch::v1::{EventLogEntry, EventType, Role};

/// What the audit found.
#[derive(Debug, Default)]
pub struct Report {
    pub events: u64,
    pub checkpoints: usize,
    pub largest_checkpoint: u64,
    pub problems: Vec<String>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Audits `entries` (the whole log, in log order) against `notes` (name and
/// text of every exported checkpoint) with the verifier key `vkey`.
pub fn audit(
    vkey: &str,
    notes: &[(String, String)],
    entries: &[EventLogEntry],
) -> anyhow::Result<Report> {
    let (name, key) = parse_verifier_key(vkey)?;
    let mut report = Report::default();
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    for (file, note) in notes {
        match Checkpoint::open(note, &name, &key) {
            Ok(checkpoint) => checkpoints.push(checkpoint),
            Err(e) => report.problems.push(format!("checkpoint {file}: {e}")),
        }
    }
    checkpoints.sort_by_key(|c| c.size);
    report.checkpoints = checkpoints.len();
    report.largest_checkpoint = checkpoints.last().map_or(0, |c| c.size);
    let mut pending = checkpoints.iter().peekable();

    let mut tree = Frontier::default();
    // per job: the last sequence and hash seen
    let mut chains: HashMap<&str, (i64, String)> = HashMap::new();
    for entry in entries {
        let Some(event) = &entry.event else {
            report
                .problems
                .push(format!("log entry {} has no event", entry.log_index));
            continue;
        };
        if entry.log_index != tree.size() as i64 {
            report.problems.push(format!(
                "the log jumps from entry {} to {}: entries were deleted",
                tree.size() as i64 - 1,
                entry.log_index
            ));
            break;
        }
        let recomputed = recompute(entry)?;
        let job = entry.job_id.as_str();
        if recomputed != event.hash {
            report.problems.push(format!(
                "event {} of job {job} was changed after it was recorded (its content does not give its hash)",
                event.sequence
            ));
        }
        let (last_sequence, last_hash) = chains.get(job).cloned().unwrap_or_default();
        if event.sequence != last_sequence + 1 || event.previous_hash != last_hash {
            report.problems.push(format!(
                "event {} of job {job} does not follow event {last_sequence} of its chain",
                event.sequence
            ));
        }
        chains.insert(job, (event.sequence, event.hash.clone()));
        tree.push(leaf_hash(&recomputed));
        while let Some(checkpoint) = pending.next_if(|c| c.size <= tree.size()) {
            if checkpoint.size == tree.size() && checkpoint.root != tree.root() {
                report.problems.push(format!(
                    "the log's first {} events do not hash to the signed checkpoint of that size: \
                     events were rewritten (and their chains recomputed) or the log was replaced",
                    checkpoint.size
                ));
            }
        }
    }
    report.events = tree.size();
    if report.largest_checkpoint > tree.size() {
        report.problems.push(format!(
            "the log holds {} events but a signed checkpoint vouched for {}: its tail was deleted \
             or the log was rolled back",
            tree.size(),
            report.largest_checkpoint
        ));
    }
    // an empty checkpoint list proves nothing: say so
    if checkpoints.is_empty() && report.problems.is_empty() {
        report
            .problems
            .push("no signed checkpoint to verify against".to_owned());
    }
    Ok(report)
}

/// The event's hash from its content, as the service computes it.
fn recompute(entry: &EventLogEntry) -> anyhow::Result<String> {
    let event = entry.event.as_ref().expect("checked by the caller");
    let job_id: uuid::Uuid = entry.job_id.parse()?;
    let event_type = EventType::try_from(event.r#type)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("EVENT_TYPE_");
    let actor = event.actor.clone().unwrap_or_default();
    let role = Role::try_from(actor.role)
        .unwrap_or_default()
        .as_str_name()
        .trim_start_matches("ROLE_");
    let at = event.occurred_at.unwrap_or_default();
    let unit_id = (!event.unit_id.is_empty())
        .then(|| event.unit_id.parse::<uuid::Uuid>())
        .transpose()?;
    Ok(event_log::event_hash(&EventContent {
        previous_hash: &event.previous_hash,
        job_id,
        sequence: event.sequence,
        event_type,
        occurred_at_micros: at.seconds * 1_000_000 + i64::from(at.nanos) / 1_000,
        actor: &actor.id,
        actor_role: role,
        latitude: event.position.map(|p| p.latitude),
        longitude: event.position.map(|p| p.longitude),
        unit_id,
        reason: &event.reason,
    }))
}

#[cfg(test)]
mod tests {
    use dispatch311_proto::dispatch::v1::{Actor, JobEvent};
    use ed25519_dalek::SigningKey;

    use super::*;

    /// A log of two jobs' events, hashed as the service would.
    fn log() -> Vec<EventLogEntry> {
        let jobs = [uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2)];
        let mut last: HashMap<uuid::Uuid, String> = HashMap::new();
        (0..6)
            .map(|i| {
                let job = jobs[i % 2];
                let mut event = JobEvent {
                    sequence: (i / 2) as i64 + 1,
                    r#type: EventType::Queued as i32,
                    occurred_at: Some(prost_types::Timestamp {
                        seconds: 1_790_000_000 + i as i64,
                        nanos: 0,
                    }),
                    actor: Some(Actor {
                        id: "dispatch".into(),
                        role: Role::System as i32,
                    }),
                    reason: format!("step {i}"),
                    previous_hash: last.get(&job).cloned().unwrap_or_default(),
                    ..Default::default()
                };
                let mut entry = EventLogEntry {
                    log_index: i as i64,
                    job_id: job.to_string(),
                    event: Some(event.clone()),
                };
                event.hash = recompute(&entry).unwrap();
                last.insert(job, event.hash.clone());
                entry.event = Some(event);
                entry
            })
            .collect()
    }

    pub(super) fn signed(entries: &[EventLogEntry], key: &SigningKey) -> (String, String) {
        let leaves: Vec<_> = entries
            .iter()
            .map(|e| leaf_hash(&e.event.as_ref().unwrap().hash))
            .collect();
        let checkpoint = Checkpoint {
            origin: "test/event-log".into(),
            size: entries.len() as u64,
            root: event_log::root(&leaves),
        };
        (
            format!("{:020}", entries.len()),
            checkpoint.sign("test/event-log", key),
        )
    }

    #[test]
    fn an_intact_log_passes_and_each_tampering_is_named() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let vkey = event_log::verifier_key("test/event-log", &key.verifying_key());
        let entries = log();
        let notes = vec![signed(&entries[..4], &key), signed(&entries, &key)];
        let report = audit(&vkey, &notes, &entries).unwrap();
        assert!(report.intact(), "{:?}", report.problems);
        assert_eq!((report.events, report.checkpoints), (6, 2));

        // an event rewritten, its own hash left: named
        let mut rewritten = entries.clone();
        rewritten[2].event.as_mut().unwrap().reason = "moved".into();
        let problems = audit(&vkey, &notes, &rewritten).unwrap().problems;
        assert!(
            problems[0].contains("was changed after it was recorded"),
            "{problems:?}"
        );

        // rewritten and every later hash recomputed: the signed root catches it
        let mut rechained = entries.clone();
        rechained[2].event.as_mut().unwrap().reason = "moved".into();
        let mut last: HashMap<String, String> = HashMap::new();
        for entry in &mut rechained {
            let job = entry.job_id.clone();
            entry.event.as_mut().unwrap().previous_hash =
                last.get(&job).cloned().unwrap_or_default();
            let hash = recompute(entry).unwrap();
            entry.event.as_mut().unwrap().hash = hash.clone();
            last.insert(job, hash);
        }
        let problems = audit(&vkey, &notes, &rechained).unwrap().problems;
        assert!(
            problems
                .iter()
                .all(|p| p.contains("do not hash to the signed checkpoint")),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 2);

        // the tail deleted, or the log rolled back to the first checkpoint
        let problems = audit(&vkey, &notes, &entries[..4]).unwrap().problems;
        assert!(problems[0].contains("vouched for 6"), "{problems:?}");

        // a checkpoint someone else signed
        let other = SigningKey::from_bytes(&[4; 32]);
        let mut forged = notes.clone();
        forged.push(signed(&entries[..5], &other));
        let problems = audit(&vkey, &forged, &entries).unwrap().problems;
        assert!(problems[0].contains("is not signed by"), "{problems:?}");
    }
}

/// Any single change to a log the service signed is reported, whether the
/// changed event keeps its old hash or the whole chain is recomputed after
/// it (as the database's owner could).
#[cfg(test)]
mod properties {
    use std::collections::HashMap;

    use dispatch311_proto::common::v1::GeoPoint;
    use dispatch311_proto::dispatch::v1::{Actor, EventLogEntry, EventType, JobEvent, Role};
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    use super::tests::signed;
    use super::{audit, recompute};
    use dispatch311_domain::event_log;

    /// One event of a generated log: which job (of three), its type, actor,
    /// reason and optional position.
    #[derive(Debug, Clone)]
    struct Step {
        job: u128,
        event_type: EventType,
        actor: String,
        reason: String,
        position: Option<(f64, f64)>,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            1u128..=3,
            prop::sample::select(vec![
                EventType::Queued,
                EventType::Assigned,
                EventType::Acknowledged,
                EventType::OnScene,
                EventType::Closed,
            ]),
            "[A-Z]-[0-9]{1,4}",
            "[ -~]{0,40}",
            prop::option::of((40.5f64..40.9, -74.2f64..-73.7)),
        )
            .prop_map(|(job, event_type, actor, reason, position)| Step {
                job,
                event_type,
                actor,
                reason,
                position,
            })
    }

    /// The log the service would write for `steps`: each job's events
    /// numbered and chained, every entry in log order.
    fn log(steps: &[Step]) -> Vec<EventLogEntry> {
        let mut entries: Vec<EventLogEntry> = steps
            .iter()
            .enumerate()
            .map(|(i, step)| EventLogEntry {
                log_index: i as i64,
                job_id: uuid::Uuid::from_u128(step.job).to_string(),
                event: Some(JobEvent {
                    r#type: step.event_type as i32,
                    occurred_at: Some(prost_types::Timestamp {
                        seconds: 1_790_000_000 + i as i64,
                        nanos: 0,
                    }),
                    actor: Some(Actor {
                        id: step.actor.clone(),
                        role: Role::Officer as i32,
                    }),
                    reason: step.reason.clone(),
                    position: step.position.map(|(latitude, longitude)| GeoPoint {
                        latitude,
                        longitude,
                    }),
                    ..Default::default()
                }),
            })
            .collect();
        rechain(&mut entries, true);
        entries
    }

    /// Numbers (when `renumber`) and hashes every job's events again, in log order.
    fn rechain(entries: &mut [EventLogEntry], renumber: bool) {
        let mut last: HashMap<String, (i64, String)> = HashMap::new();
        for entry in entries.iter_mut() {
            let (sequence, previous) = last.get(&entry.job_id).cloned().unwrap_or_default();
            let event = entry.event.as_mut().unwrap();
            if renumber {
                event.sequence = sequence + 1;
            }
            event.previous_hash = previous;
            let hash = recompute(entry).unwrap();
            let event = entry.event.as_mut().unwrap();
            event.hash = hash.clone();
            last.insert(entry.job_id.clone(), (event.sequence, hash));
        }
    }

    /// One change to one recorded event.
    #[derive(Debug, Clone)]
    enum Edit {
        Reason(String),
        Actor(String),
        Type(EventType),
        Time(i64),
        Sequence(i64),
        Position(f64),
        Job(u128),
        Delete,
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            "[ -~]{0,40}".prop_map(Edit::Reason),
            "[A-Z]-[0-9]{1,4}".prop_map(Edit::Actor),
            prop::sample::select(vec![
                EventType::Cancelled,
                EventType::Reopened,
                EventType::Flagged
            ])
            .prop_map(Edit::Type),
            (1i64..100_000).prop_map(Edit::Time),
            (1i64..5).prop_map(Edit::Sequence),
            (0.000_001f64..0.01).prop_map(Edit::Position),
            (4u128..6).prop_map(Edit::Job),
            Just(Edit::Delete),
        ]
    }

    /// Applies `edit` to entry `at`; false when it changes nothing.
    fn apply(entries: &mut Vec<EventLogEntry>, at: usize, edit: &Edit) -> bool {
        if let Edit::Delete = edit {
            entries.remove(at);
            return true;
        }
        let entry = &mut entries[at];
        let event = entry.event.as_mut().unwrap();
        match edit {
            Edit::Reason(reason) if *reason != event.reason => event.reason = reason.clone(),
            Edit::Actor(actor) if event.actor.as_ref().unwrap().id != *actor => {
                event.actor.as_mut().unwrap().id = actor.clone();
            }
            Edit::Type(event_type) => event.r#type = *event_type as i32,
            Edit::Time(delta) => event.occurred_at.as_mut().unwrap().seconds += delta,
            Edit::Sequence(delta) => event.sequence += delta,
            Edit::Position(delta) => {
                let position = event.position.get_or_insert(GeoPoint {
                    latitude: 40.7,
                    longitude: -73.9,
                });
                position.latitude += delta;
            }
            Edit::Job(job) => entry.job_id = uuid::Uuid::from_u128(*job).to_string(),
            _ => return false,
        }
        true
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_single_edit_of_a_signed_log_is_reported(
            steps in prop::collection::vec(step(), 1..24),
            at in any::<prop::sample::Index>(),
            edit in edit(),
            rechained in any::<bool>(),
        ) {
            let key = SigningKey::from_bytes(&[7; 32]);
            let vkey = event_log::verifier_key("test/event-log", &key.verifying_key());
            let entries = log(&steps);
            let notes = vec![signed(&entries, &key)];
            prop_assert!(audit(&vkey, &notes, &entries).unwrap().intact());

            let mut tampered = entries.clone();
            let at = at.index(tampered.len());
            prop_assume!(apply(&mut tampered, at, &edit));
            if rechained {
                // the owner recomputes every hash after the edit, keeping
                // the edited sequence numbers
                rechain(&mut tampered, false);
            }
            let report = audit(&vkey, &notes, &tampered).unwrap();
            prop_assert!(!report.intact(), "{edit:?} at {at} (rechained: {rechained}) went unnoticed");
        }
    }
}
