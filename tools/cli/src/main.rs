//! dispatch311-cli: file, look up and follow 311 service requests on a running
//! dispatch311 suite from a terminal.

mod args;
mod audit;
mod auth;
mod show;
mod tour;

use std::{process::ExitCode, time::Duration};

use anyhow::Context as _;
use args::{Args, UsageError};
use dispatch311_auth::{Authenticated, Role};
use dispatch311_proto::{
    common::v1::{Address, Channel as IntakeChannel, GeoPoint},
    dispatch::v1::{ListQueueRequest, dispatch_service_client::DispatchServiceClient},
    intake::v1::{
        CreateServiceRequestRequest, GetServiceRequestRequest, ServiceRequest,
        get_service_request_request, intake_service_client::IntakeServiceClient,
    },
    routing::v1::{
        ExplainRouteRequest, ListRoutingRulesRequest, routing_service_client::RoutingServiceClient,
    },
};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt as _;

const USAGE: &str = "\
usage: dispatch311-cli <command> [arguments]

commands:
  create --type TYPE [--descriptor D] [--lat LAT --lon LON] [--address STREET]
         [--description TEXT] [--cross-street S] [--borough B] [--zip ZIP]
         [--channel mobile_app|web|phone|text|partner_agency|open311] [--request-id ID]
         [--voice-recording URI]
                 file a service request; prints its SR number
  get SR-NUMBER  a request's status, agency, precinct, priority, SLA, timeline and trace id
  queue PRECINCT [--limit N]
                 a precinct's dispatch queue, highest priority first
  explain --type TYPE [--descriptor D] [--lat LAT --lon LON] [--address STREET]
                 how routing would route such a request, and why (changes nothing)
  rules          the routing rules in force, in matching order
  tour           the two-minute tour: file complaints and follow them through the suite
  token --role ROLE [--subject ID] [--hours H]
                 a development bearer token (roles: integrator, public, dispatcher,
                 officer, supervisor, survey_system, auditor, admin)
  verify-log --vkey FILE|KEY --checkpoints DIR
                 an auditor's check of dispatch's whole event log (read as auditor) against
                 the signed checkpoints exported to the object store (DIR: a copy of its
                 event-log/checkpoints folder) and the verifier key; trusts neither the
                 database nor the service; exits 1 when the log was rewritten, cut short
                 or rolled back
  dev-keys --dir DIR
                 makes a development token-signing key and its JWKS in DIR, and the key
                 dispatch signs its event log with (event-log-key.pem, event-log.vkey)
                 (kept if present)
  dev-certs --dir DIR
                 makes a development CA and a certificate for localhost in DIR, for
                 mutual TLS (kept if present); prints the DISPATCH311_TLS_* settings

servers (environment):
  DISPATCH311_INTAKE_URL    default http://127.0.0.1:50051
  DISPATCH311_ROUTING_URL   default http://127.0.0.1:50052
  DISPATCH311_DISPATCH_URL  default http://127.0.0.1:50053

mutual TLS (environment, all three or none; see dev-certs):
  DISPATCH311_TLS_CERT, DISPATCH311_TLS_KEY, DISPATCH311_TLS_CA  (the urls are then https://)

credentials (environment):
  DISPATCH311_TOKEN         a bearer token for every call, or else
  DISPATCH311_AUTH_SIGNING_KEY  a development signing key (make run sets it): the
                            cli signs its own tokens, as integrator for intake and
                            routing and as dispatcher for the queue";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The suite's three public APIs, each calling with a token of the role the
/// cli uses it in.
pub struct Clients {
    pub intake: IntakeServiceClient<Authenticated<Channel>>,
    pub routing: RoutingServiceClient<Authenticated<Channel>>,
    pub dispatch: DispatchServiceClient<Authenticated<Channel>>,
    intake_url: String,
}

impl Clients {
    fn from_env() -> anyhow::Result<Self> {
        let url = |var: &str, port: u16| {
            std::env::var(var)
                .ok()
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}"))
        };
        let intake_url = url("DISPATCH311_INTAKE_URL", 50051);
        let credentials = auth::Credentials::from_env()?;
        Ok(Self {
            intake: IntakeServiceClient::new(
                credentials
                    .bearer(Role::Integrator)?
                    .wrap(channel("DISPATCH311_INTAKE_URL", &intake_url)?),
            ),
            routing: RoutingServiceClient::new(credentials.bearer(Role::Integrator)?.wrap(
                channel(
                    "DISPATCH311_ROUTING_URL",
                    &url("DISPATCH311_ROUTING_URL", 50052),
                )?,
            )),
            dispatch: DispatchServiceClient::new(credentials.bearer(Role::Dispatcher)?.wrap(
                channel(
                    "DISPATCH311_DISPATCH_URL",
                    &url("DISPATCH311_DISPATCH_URL", 50053),
                )?,
            )),
            intake_url,
        })
    }

    pub async fn get(&mut self, sr_number: &str) -> anyhow::Result<ServiceRequest> {
        let request = GetServiceRequestRequest {
            key: Some(get_service_request_request::Key::SrNumber(
                sr_number.trim().to_string(),
            )),
        };
        let response = self
            .intake
            .get_service_request(request)
            .await
            .context("cannot read the request from intake")?;
        response
            .into_inner()
            .service_request
            .context("intake answered without the request")
    }
}

/// Connects on first use, so a command that fails to reach a service says
/// which one through the call's UNAVAILABLE status. Over mutual TLS when
/// `DISPATCH311_TLS_*` is set, as for the services.
fn channel(var: &str, url: &str) -> anyhow::Result<Channel> {
    let mut endpoint = Channel::from_shared(url.to_string())
        .with_context(|| format!("{var} is not a url: {url:?}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    if let Some(tls) = dispatch311_grpc::tls::TlsConfig::from_env()? {
        endpoint = endpoint
            .tls_config(tls.client())
            .context("the TLS files (DISPATCH311_TLS_*) are not usable")?;
    }
    Ok(endpoint.connect_lazy())
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = async {
        let args = Args::parse(std::env::args().skip(1))?;
        run(args).await
    }
    .await;
    let Err(error) = result else {
        return ExitCode::SUCCESS;
    };
    if error.is::<UsageError>() {
        eprintln!("dispatch311-cli: {error}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    eprint!("{}", describe_error(&error));
    ExitCode::FAILURE
}

/// What went wrong, with the gRPC status and every field violation the server
/// listed.
fn describe_error(error: &anyhow::Error) -> String {
    let mut text = format!("error: {error}\n");
    let Some(status) = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Status>())
    else {
        for cause in error.chain().skip(1) {
            text.push_str(&format!("  {cause}\n"));
        }
        return text;
    };
    text.push_str(&format!(
        "  {}: {}\n",
        code_name(status.code()),
        status.message()
    ));
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            text.push_str(&format!(
                "  - {}: {}\n",
                violation.field, violation.description
            ));
        }
    }
    if status.code() == Code::Unavailable {
        text.push_str(
            "  is the suite running? start it with `make run`, check it with `make status`\n",
        );
    }
    text
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.help || args.command.is_empty() {
        println!("{USAGE}");
        return Ok(());
    }
    match args.command.as_str() {
        "create" => create(args).await,
        "get" => {
            let sr_number = args.positional("an SR number, e.g. SR-2026-0000042")?;
            args.finish()?;
            let sr = Clients::from_env()?.get(&sr_number).await?;
            print!("{}", show::service_request(&sr));
            Ok(())
        }
        "queue" => {
            let precinct = args.positional("a precinct number, e.g. 14")?;
            let limit = match args.flag("limit") {
                None => 50,
                Some(text) => text
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (1..=1_000).contains(n))
                    .ok_or_else(|| {
                        UsageError(format!("--limit must be between 1 and 1000, got {text:?}"))
                    })?,
            };
            args.finish()?;
            let mut clients = Clients::from_env()?;
            print!("{}", queue(&mut clients, &precinct, limit, None).await?);
            Ok(())
        }
        "explain" => {
            let request = ExplainRouteRequest {
                complaint_type: args.required_flag("type")?,
                descriptor: args.flag("descriptor").unwrap_or_default(),
                location: location(&mut args)?,
                has_street_address: args.flag("address").is_some_and(|a| !a.trim().is_empty()),
            };
            args.finish()?;
            let response = Clients::from_env()?
                .routing
                .explain_route(request)
                .await
                .context("routing could not explain the route")?;
            let decision = response
                .into_inner()
                .decision
                .context("routing answered without a decision")?;
            print!("{}", show::decision(&decision));
            Ok(())
        }
        "rules" => {
            args.finish()?;
            let mut clients = Clients::from_env()?;
            let mut rules = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = ListRoutingRulesRequest {
                    page_size: 1_000,
                    page_token,
                };
                let page = clients
                    .routing
                    .list_routing_rules(request)
                    .await
                    .context("cannot list routing rules")?;
                let page = page.into_inner();
                rules.extend(page.rules);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            print!("{}", show::rules(&rules));
            Ok(())
        }
        "token" => {
            let role: Role = args
                .required_flag("role")?
                .parse()
                .map_err(|e: dispatch311_auth::UnknownRole| UsageError(e.to_string()))?;
            let subject = args
                .flag("subject")
                .unwrap_or_else(|| auth::default_subject(role).to_string());
            let hours = match args.flag("hours") {
                None => 12.0,
                Some(text) => text
                    .parse::<f64>()
                    .ok()
                    .filter(|h| *h > 0.0 && *h <= 24.0 * 30.0)
                    .ok_or_else(|| {
                        UsageError(format!(
                            "--hours must be above 0 and at most 720, got {text:?}"
                        ))
                    })?,
            };
            args.finish()?;
            let signer = dispatch311_auth::signer_from_env()?;
            println!(
                "{}",
                signer.mint(&subject, role, Duration::from_secs_f64(hours * 3_600.0))?
            );
            Ok(())
        }
        "verify-log" => {
            let vkey = args.required_flag("vkey")?;
            let dir = args.required_flag("checkpoints")?;
            args.finish()?;
            verify_log(&vkey, std::path::Path::new(&dir)).await
        }
        "dev-keys" => {
            let dir = args.required_flag("dir")?;
            args.finish()?;
            auth::dev_keys(std::path::Path::new(&dir))
        }
        "dev-certs" => {
            let dir = args.required_flag("dir")?;
            args.finish()?;
            dev_certs(std::path::Path::new(&dir))
        }
        "tour" => {
            args.finish()?;
            tour::run(Clients::from_env()?).await
        }
        other => Err(UsageError(format!("unknown command {other:?}")).into()),
    }
}

/// `verify-log`: reads the checkpoints and the whole log, audits, prints.
async fn verify_log(vkey: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let vkey = match std::fs::read_to_string(vkey) {
        Ok(text) => text,
        // not a file: the key itself
        Err(_) => vkey.to_owned(),
    };
    let mut notes = Vec::new();
    let listing = std::fs::read_dir(dir)
        .with_context(|| format!("reading checkpoints in {}", dir.display()))?;
    for file in listing {
        let path = file?.path();
        if path.is_file() {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            notes.push((name, std::fs::read_to_string(&path)?));
        }
    }
    let credentials = auth::Credentials::from_env()?;
    let url = std::env::var("DISPATCH311_DISPATCH_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:50053".to_owned());
    let mut dispatch = DispatchServiceClient::new(
        credentials
            .bearer(Role::Auditor)?
            .wrap(channel("DISPATCH311_DISPATCH_URL", &url)?),
    );
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = dispatch
            .list_event_log(dispatch311_proto::dispatch::v1::ListEventLogRequest {
                page_size: 1_000,
                page_token,
            })
            .await
            .context("cannot read the event log")?
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let report = audit::audit(&vkey, &notes, &entries)?;
    println!(
        "{} events, {} signed checkpoints (the largest of size {})",
        report.events, report.checkpoints, report.largest_checkpoint
    );
    if report.intact() {
        println!(
            "intact: every event matches its hash, every chain holds, every checkpoint matches"
        );
        return Ok(());
    }
    for problem in &report.problems {
        println!("BROKEN: {problem}");
    }
    anyhow::bail!(
        "the event log does not verify ({} problems)",
        report.problems.len()
    )
}

/// Makes development certificates in `dir` unless they exist, and prints
/// the settings that use them.
fn dev_certs(dir: &std::path::Path) -> anyhow::Result<()> {
    use dispatch311_grpc::tls::dev::{DevCertificateFiles, DevCertificates};
    let files = DevCertificateFiles::in_dir(dir);
    if files.exist() {
        println!("# development certificates kept: {}", dir.display());
    } else {
        DevCertificates::generate("dispatch311 development CA")?.write(dir)?;
        println!("# made development certificates in {}", dir.display());
    }
    for (var, path) in files.env() {
        println!("export {var}={}", path.display());
    }
    Ok(())
}

/// `--lat` and `--lon`, both or neither.
fn location(args: &mut Args) -> anyhow::Result<Option<GeoPoint>> {
    match (args.number_flag("lat")?, args.number_flag("lon")?) {
        (Some(latitude), Some(longitude)) => Ok(Some(GeoPoint {
            latitude,
            longitude,
        })),
        (None, None) => Ok(None),
        _ => Err(UsageError("give both --lat and --lon, or neither".into()).into()),
    }
}

fn parse_channel(text: &str) -> anyhow::Result<IntakeChannel> {
    let name = format!(
        "CHANNEL_{}",
        text.trim().to_ascii_uppercase().replace('-', "_")
    );
    IntakeChannel::from_str_name(&name)
        .filter(|channel| *channel != IntakeChannel::Unspecified)
        .ok_or_else(|| UsageError(format!("unknown channel {text:?}")).into())
}

async fn create(mut args: Args) -> anyhow::Result<()> {
    let complaint_type = args.required_flag("type")?;
    let location = location(&mut args)?;
    let address = Address {
        street_address: args.flag("address").unwrap_or_default(),
        cross_street: args.flag("cross-street").unwrap_or_default(),
        borough: args.flag("borough").unwrap_or_default(),
        postal_code: args.flag("zip").unwrap_or_default(),
    };
    // someone filing from a terminal is most likely a call-center operator
    let channel = parse_channel(&args.flag("channel").unwrap_or_else(|| "phone".into()))?;
    let request = CreateServiceRequestRequest {
        // a fresh key: running the command twice files twice, on purpose
        request_id: args
            .flag("request-id")
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        complaint_type,
        descriptor: args.flag("descriptor").unwrap_or_default(),
        location,
        address: (address != Address::default()).then_some(address),
        description: args.flag("description").unwrap_or_default(),
        photos: Vec::new(),
        channel: channel as i32,
        complainant: None,
        observed_at: None,
        voice_recording_uri: args.flag("voice-recording").unwrap_or_default(),
        photo_ids: Vec::new(),
    };
    args.finish()?;
    let mut clients = Clients::from_env()?;
    let intake_url = clients.intake_url.clone();
    let response = clients
        .intake
        .create_service_request(request)
        .await
        .with_context(|| format!("intake at {intake_url} did not file the request"))?;
    let sr = response
        .into_inner()
        .service_request
        .context("intake answered without the request")?;
    println!("{}", sr.sr_number);
    Ok(())
}

/// A precinct's queue as text, marking `highlight`'s job.
pub async fn queue(
    clients: &mut Clients,
    precinct: &str,
    limit: i32,
    highlight: Option<&str>,
) -> anyhow::Result<String> {
    let request = ListQueueRequest {
        precinct: precinct.trim().to_string(),
        page_size: limit,
        page_token: String::new(),
    };
    let response = clients
        .dispatch
        .list_queue(request)
        .await
        .with_context(|| format!("cannot read precinct {precinct}'s queue from dispatch"))?;
    Ok(show::queue(
        precinct.trim(),
        &response.into_inner(),
        highlight,
    ))
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;

    #[test]
    fn reports_the_status_and_every_field_violation() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid request: location.latitude: must be between -90 and 90",
            ErrorDetails::with_bad_request(vec![
                FieldViolation::new("location.latitude", "must be between -90 and 90"),
                FieldViolation::new("channel", "required"),
            ]),
        );
        let error = anyhow::Error::new(status).context("intake did not file the request");
        let text = describe_error(&error);
        assert!(
            text.starts_with("error: intake did not file the request\n"),
            "{text}"
        );
        assert!(
            text.contains("  INVALID_ARGUMENT: invalid request: location.latitude"),
            "{text}"
        );
        assert!(
            text.contains("  - location.latitude: must be between -90 and 90\n"),
            "{text}"
        );
        assert!(text.contains("  - channel: required\n"), "{text}");
    }

    #[test]
    fn hints_at_starting_the_suite_when_a_service_is_down() {
        let error = anyhow::Error::new(Status::unavailable("tcp connect error"))
            .context("cannot list routing rules");
        assert!(describe_error(&error).contains("make run"));
    }

    #[test]
    fn reads_channel_names_as_people_type_them() {
        assert_eq!(parse_channel("phone").unwrap(), IntakeChannel::Phone);
        assert_eq!(
            parse_channel("mobile-app").unwrap(),
            IntakeChannel::MobileApp
        );
        assert!(parse_channel("unspecified").is_err());
        assert!(parse_channel("pigeon").is_err());
    }
}
