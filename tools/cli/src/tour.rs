//! The two-minute tour: a police complaint followed from intake to its
//! precinct's dispatch queue, then a complaint for another agency that is
//! referred to it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dispatch311_domain::status::status_name;
use dispatch311_proto::{
    common::v1::{Address, Channel, GeoPoint, ServiceRequestStatus},
    intake::v1::{CreateServiceRequestRequest, ServiceRequest},
};

use crate::{Clients, show};

/// How long a request may take to reach the state the tour waits for.
const DEADLINE: Duration = Duration::from_secs(15);
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The Empire State Building, 350 Fifth Avenue: in the NYPD's 14th
/// precinct (Midtown South).
const EMPIRE_STATE: GeoPoint = GeoPoint {
    latitude: 40.7484,
    longitude: -73.9857,
};

fn empire_state_address() -> Address {
    Address {
        street_address: "350 5th Avenue".into(),
        cross_street: "West 34th Street".into(),
        borough: "MANHATTAN".into(),
        postal_code: "10118".into(),
    }
}

fn complaint(
    complaint_type: &str,
    descriptor: &str,
    description: &str,
) -> CreateServiceRequestRequest {
    CreateServiceRequestRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        complaint_type: complaint_type.into(),
        descriptor: descriptor.into(),
        location: Some(EMPIRE_STATE),
        address: Some(empire_state_address()),
        description: description.into(),
        photos: Vec::new(),
        channel: Channel::MobileApp as i32,
        ..Default::default()
    }
}

/// Polls intake until `done` says the request got where it should, or it
/// reaches a status it cannot leave on its own, or the deadline passes.
async fn wait_for(
    clients: &mut Clients,
    sr_number: &str,
    wanted: &str,
    done: impl Fn(ServiceRequestStatus) -> bool,
) -> anyhow::Result<(ServiceRequest, Duration)> {
    use ServiceRequestStatus as S;
    let started = Instant::now();
    loop {
        let sr = clients.get(sr_number).await?;
        let status = sr.status();
        if done(status) {
            return Ok((sr, started.elapsed()));
        }
        let settled = matches!(
            status,
            S::Referred | S::NeedsTriage | S::Duplicate | S::Cancelled | S::Closed
        );
        if settled || started.elapsed() >= DEADLINE {
            print!("{}", indent(&show::service_request(&sr)));
            let waited = if settled {
                String::new()
            } else {
                format!(" after {} s", DEADLINE.as_secs())
            };
            bail!(
                "{sr_number} is {} instead of {wanted}{waited}: see `make logs` for what the services did with it",
                status_name(status)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Where `make run` serves the console (its listen address, from the
/// suite's environment).
fn console_url() -> String {
    let addr =
        std::env::var("DISPATCH311_CONSOLE_ADDR").unwrap_or_else(|_| "127.0.0.1:8311".into());
    format!("http://{}", addr.replace("0.0.0.0", "127.0.0.1"))
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("   {line}\n")).collect()
}

pub async fn run(mut clients: Clients) -> anyhow::Result<()> {
    use ServiceRequestStatus as S;
    println!("dispatch311 tour: two complaints through the suite\n");

    println!(
        "1. Someone reports a car blocking the fire hydrant outside the Empire State Building."
    );
    let filed_at = Instant::now();
    let created = clients
        .intake
        .create_service_request(complaint(
            "Illegal Parking",
            "Blocked Hydrant",
            "Grey sedan parked in front of the hydrant on 34th Street.",
        ))
        .await
        .context("intake did not file the complaint")?;
    let sr = created
        .into_inner()
        .service_request
        .context("intake answered without the request")?;
    println!(
        "   intake filed {} ({}) in {} ms; it is in PostgreSQL and on its way to routing\n",
        sr.sr_number,
        status_name(sr.status()),
        filed_at.elapsed().as_millis()
    );

    println!(
        "2. Routing picks agency, precinct, priority and SLA; dispatch puts it in the precinct's queue."
    );
    let (sr, took) = wait_for(&mut clients, &sr.sr_number, "QUEUED", |status| {
        // a unit may already have taken it: anything on the main path after QUEUED counts
        matches!(
            status,
            S::Queued | S::Assigned | S::Acknowledged | S::EnRoute | S::OnScene
        )
    })
    .await?;
    println!(
        "   {} reached {} after {:.1} s\n",
        sr.sr_number,
        status_name(sr.status()),
        took.as_secs_f64()
    );

    println!("3. Its public record and timeline, as the complainant and integrators see them:");
    print!("{}", indent(&show::service_request(&sr)));
    println!();

    println!(
        "4. Precinct {}'s dispatch queue (our job marked *):",
        sr.precinct
    );
    let queue = crate::queue(&mut clients, &sr.precinct, 10, Some(&sr.sr_number)).await?;
    print!("{}", indent(&queue));
    println!();

    println!("5. One trace follows the request through every service and queue hop:");
    if sr.trace_id.is_empty() {
        println!("   intake recorded no trace id for it");
    } else {
        println!("   trace id {}", sr.trace_id);
        println!(
            "   with traces exported (OTEL_EXPORTER_OTLP_ENDPOINT, see deploy/README.md), search for it in Jaeger"
        );
    }
    println!();

    println!("6. Not everything is police work: a street light out at the same corner.");
    let created = clients
        .intake
        .create_service_request(complaint("Street Light Condition", "Street Light Out", ""))
        .await
        .context("intake did not file the street light complaint")?;
    let light = created
        .into_inner()
        .service_request
        .context("intake answered without the request")?;
    let (light, took) = wait_for(&mut clients, &light.sr_number, "REFERRED", |status| {
        status == S::Referred
    })
    .await?;
    println!(
        "   {} was REFERRED to {} after {:.1} s; no police queue sees it",
        light.sr_number,
        if light.agency.is_empty() {
            "another agency"
        } else {
            &light.agency
        },
        took.as_secs_f64()
    );
    print!("{}", indent(&show::timeline(&light)));
    println!();
    println!("7. The same queue in the browser, live: the console.");
    println!(
        "   open {} and sign in (development sign-in) as a supervisor of precinct {}: {} is on the board;",
        console_url(),
        sr.precinct,
        sr.sr_number
    );
    println!("   open it to send the nearest unit, see its timeline verified and its photos.");
    println!();
    println!(
        "Next: `dispatch311-cli get {}`, `dispatch311-cli explain --type \"Blocked Driveway\" --lat 40.7484 --lon -73.9857`,",
        sr.sr_number
    );
    println!("      `dispatch311-cli rules`, or `make bench` for throughput.");
    Ok(())
}
