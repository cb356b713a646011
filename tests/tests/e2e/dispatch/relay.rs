//! Relayed messages, end to end with the real binaries: the officer of the
//! assigned unit asks the complainant a question through dispatch; intake
//! keeps it for the integrator that filed the request, naming the precinct,
//! never the officer; the complainant's answer comes back on the job's
//! timeline with their name, phone and e-mail taken out; nobody else can
//! send, read or answer.

use std::time::Duration;

use dispatch311_auth::Role;
use dispatch311_proto::{
    dispatch::v1::{EventType, RelayMessageToComplainantRequest},
    intake::v1::{
        AnswerComplainantMessageRequest, ComplainantMessage, ListComplainantMessagesRequest,
    },
};
use dispatch311_tests::{
    cad::{
        COMPLAINANT_EMAIL, COMPLAINANT_NAME, COMPLAINANT_PHONE, EMPIRE_STATE, assign, hydrant_at,
        officer, register_unit, supervisor, timeline,
    },
    suite::{Suite, SuiteOptions, eventually},
};
use tonic::Code;

const QUESTION: &str = "Is the grey van still on the hydrant, and is anyone inside?";

#[tokio::test]
async fn an_officer_asks_the_complainant_through_intake_and_neither_learns_who_the_other_is()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    let unit = register_unit(&dispatch, "14-ASK-1", "14", &["O-14-31"], EMPIRE_STATE).await?;
    assign(&dispatch, &job.job_id, &unit.unit_id).await?;
    let relay = |actor, message: &str| RelayMessageToComplainantRequest {
        actor,
        job_id: job.job_id.clone(),
        message: message.to_string(),
    };

    // only the crew (or a supervisor) writes; an empty message is refused
    let stranger = dispatch
        .clone()
        .relay_message_to_complainant(relay(officer("O-77-1"), QUESTION))
        .await
        .expect_err("not this officer's job");
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let empty = dispatch
        .clone()
        .relay_message_to_complainant(relay(officer("O-14-31"), "  "))
        .await
        .expect_err("nothing to send");
    assert_eq!(empty.code(), Code::InvalidArgument);
    // nor a way to reach the officer, however it is written
    for reachable in [
        "Call me back on 917 555 0123",
        "text me: nine one seven five five five zero one two three",
        "write to o.kelly at nypd dot org",
        "see https://example.com/officer-kelly",
    ] {
        let refused = dispatch
            .clone()
            .relay_message_to_complainant(relay(officer("O-14-31"), reachable))
            .await
            .expect_err("the officer stays anonymous");
        assert_eq!(refused.code(), Code::InvalidArgument, "{reachable}");
        assert!(
            refused.message().contains("precinct"),
            "{}",
            refused.message()
        );
    }
    let long = "Is it still there? ".repeat(60);
    let refused = dispatch
        .clone()
        .relay_message_to_complainant(relay(officer("O-14-31"), &long))
        .await
        .expect_err("a bounded question");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        timeline(&dispatch, &job.job_id)
            .await?
            .iter()
            .all(|e| e.r#type != EventType::MessageToComplainant as i32),
        "nothing refused was recorded"
    );

    let sent = dispatch
        .clone()
        .relay_message_to_complainant(relay(officer("O-14-31"), QUESTION))
        .await?
        .into_inner();
    let asked = timeline(&dispatch, &job.job_id).await?;
    let question_event = asked.last().expect("events");
    assert_eq!(
        question_event.r#type,
        EventType::MessageToComplainant as i32
    );
    assert_eq!(question_event.reason, QUESTION);

    // the filing integrator sees the question, from the precinct
    let mut app = suite.intake().await?;
    let list = ListComplainantMessagesRequest {
        sr_number: job.sr_number.clone(),
    };
    let messages: Vec<ComplainantMessage> =
        eventually(Duration::from_secs(20), "the question in intake", || {
            let mut app = app.clone();
            let list = list.clone();
            async move {
                let messages = app
                    .list_complainant_messages(list)
                    .await?
                    .into_inner()
                    .messages;
                Ok((!messages.is_empty()).then_some(messages))
            }
        })
        .await?;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.message_id, sent.message_id);
    assert_eq!(message.question, QUESTION);
    assert_eq!(message.from, "NYPD precinct 14");
    assert!(
        !format!("{message:?}").contains("O-14-31") && !format!("{message:?}").contains("14-ASK-1"),
        "the complainant's side never learns who asks: {message:?}"
    );

    // another integrator neither reads nor answers it
    let mut partner = suite.intake_as(Role::Integrator, "partner-agency").await?;
    let hidden = partner
        .list_complainant_messages(list.clone())
        .await
        .expect_err("not its request");
    assert_eq!(hidden.code(), Code::NotFound);
    let answer = |text: &str| AnswerComplainantMessageRequest {
        message_id: sent.message_id.clone(),
        answer: text.to_string(),
    };
    let refused = partner
        .answer_complainant_message(answer("no"))
        .await
        .expect_err("not its request");
    assert_eq!(refused.code(), Code::NotFound);

    // the complainant answers, naming themself; responders read it redacted
    let reply = format!(
        "Yes, still there, engine running. I am {COMPLAINANT_NAME}, call {COMPLAINANT_PHONE} or write {COMPLAINANT_EMAIL}."
    );
    let answered = app
        .answer_complainant_message(answer(&reply))
        .await?
        .into_inner()
        .message
        .expect("the answered message");
    assert!(
        answered
            .answer
            .contains("Yes, still there, engine running.")
    );
    let again = app
        .answer_complainant_message(answer("changed my mind"))
        .await
        .expect_err("answered once");
    assert_eq!(again.code(), Code::FailedPrecondition);

    let answer_event = eventually(Duration::from_secs(20), "the answer on the job", || {
        let dispatch = dispatch.clone();
        let job_id = job.job_id.clone();
        async move {
            Ok(timeline(&dispatch, &job_id)
                .await?
                .into_iter()
                .find(|e| e.r#type == EventType::ComplainantAnswered as i32))
        }
    })
    .await?;
    assert!(
        answer_event
            .reason
            .contains("Yes, still there, engine running.")
    );
    for secret in [
        COMPLAINANT_PHONE,
        COMPLAINANT_EMAIL,
        "Dana",
        "Witness-Example",
    ] {
        assert!(
            !answer_event.reason.contains(secret),
            "{secret} reached the officer: {:?}",
            answer_event.reason
        );
    }
    assert_eq!(
        answer_event.actor.map(|a| a.id),
        Some("complainant".to_string())
    );

    // a supervisor may write too; a dispatcher may not
    dispatch
        .clone()
        .relay_message_to_complainant(relay(supervisor(), "Thank you, officers are there."))
        .await?;
    let dispatcher = dispatch
        .clone()
        .relay_message_to_complainant(relay(dispatch311_tests::cad::dispatcher(), QUESTION))
        .await
        .expect_err("dispatchers do not write to complainants");
    assert_eq!(dispatcher.code(), Code::PermissionDenied);

    suite.stop().await
}
