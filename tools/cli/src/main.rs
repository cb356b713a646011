//! dispatch311-cli: file, look up and follow 311 service requests on a running
//! dispatch311 suite from a terminal.

mod args;
mod audit;
mod auth;
mod show;
mod slow;
mod tour;

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::Context as _;
use args::{Cli, Command, CreateArgs, CredentialArgs, Servers};
use clap::{CommandFactory as _, Parser as _};
use dispatch311_auth::{Authenticated, Role};
use dispatch311_grpc::tls::TlsConfig;
use dispatch311_proto::{
    common::v1::Address,
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

/// How the cli reaches the suite: where, as whom, over which TLS.
pub struct Connection<'a> {
    servers: &'a Servers,
    credentials: &'a CredentialArgs,
    tls: Option<TlsConfig>,
}

impl<'a> Connection<'a> {
    fn new(cli: &'a Cli) -> anyhow::Result<Self> {
        Ok(Self {
            servers: &cli.servers,
            credentials: &cli.credentials,
            // over mutual TLS when DISPATCH311_TLS_* is set, as for the services
            tls: cli.tls.config()?,
        })
    }

    fn credentials(&self) -> anyhow::Result<auth::Credentials> {
        auth::Credentials::new(self.credentials)
    }

    /// Connects on first use, so a command that fails to reach a service
    /// says which one through the call's UNAVAILABLE status.
    fn channel(&self, var: &str, url: &str) -> anyhow::Result<Channel> {
        let mut endpoint = Channel::from_shared(url.to_string())
            .with_context(|| format!("{var} is not a url: {url:?}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.client())
                .context("the TLS files (DISPATCH311_TLS_*) are not usable")?;
        }
        Ok(endpoint.connect_lazy())
    }
}

impl Clients {
    fn connect(connection: &Connection<'_>) -> anyhow::Result<Self> {
        let servers = connection.servers;
        let credentials = connection.credentials()?;
        Ok(Self {
            intake: IntakeServiceClient::new(
                credentials
                    .bearer(Role::Integrator)?
                    .wrap(connection.channel("DISPATCH311_INTAKE_URL", &servers.intake_url)?),
            ),
            routing: RoutingServiceClient::new(
                credentials
                    .bearer(Role::Integrator)?
                    .wrap(connection.channel("DISPATCH311_ROUTING_URL", &servers.routing_url)?),
            ),
            dispatch: DispatchServiceClient::new(
                credentials
                    .bearer(Role::Dispatcher)?
                    .wrap(connection.channel("DISPATCH311_DISPATCH_URL", &servers.dispatch_url)?),
            ),
            intake_url: servers.intake_url.clone(),
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

#[tokio::main]
async fn main() -> ExitCode {
    // a usage mistake exits 2 with clap's message; --help and --version exit 0
    let cli = Cli::parse();
    let Err(error) = run(&cli).await else {
        return ExitCode::SUCCESS;
    };
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

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let connection = || Connection::new(cli);
    match &cli.command {
        Command::Create(create_args) => create(&connection()?, create_args).await,
        Command::Get { sr_number } => {
            let sr = Clients::connect(&connection()?)?.get(sr_number).await?;
            print!("{}", show::service_request(&sr));
            Ok(())
        }
        Command::Queue { precinct, limit } => {
            let mut clients = Clients::connect(&connection()?)?;
            print!("{}", queue(&mut clients, precinct, *limit, None).await?);
            Ok(())
        }
        Command::Explain {
            complaint_type,
            descriptor,
            place,
            address,
        } => {
            let request = ExplainRouteRequest {
                complaint_type: complaint_type.clone(),
                descriptor: descriptor.clone(),
                location: place.point(),
                has_street_address: address.as_ref().is_some_and(|a| !a.trim().is_empty()),
            };
            let response = Clients::connect(&connection()?)?
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
        Command::Rules => {
            let mut clients = Clients::connect(&connection()?)?;
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
        Command::Token {
            role,
            subject,
            hours,
            signer,
        } => {
            let subject = subject
                .clone()
                .unwrap_or_else(|| auth::default_subject(*role).to_string());
            let signer = signer.signer()?;
            println!(
                "{}",
                signer.mint(&subject, *role, Duration::from_secs_f64(hours * 3_600.0))?
            );
            Ok(())
        }
        Command::VerifyLog { vkey, checkpoints } => {
            verify_log(&connection()?, vkey, checkpoints).await
        }
        Command::DevKeys {
            dir,
            event_log_name,
        } => auth::dev_keys(dir, event_log_name),
        Command::DevCerts { dir } => dev_certs(dir),
        Command::Slow(args) => {
            let connection = connection()?;
            let mut dispatch = DispatchServiceClient::new(
                connection.credentials()?.bearer(Role::Admin)?.wrap(
                    connection
                        .channel("DISPATCH311_DISPATCH_URL", &connection.servers.dispatch_url)?,
                ),
            );
            let response = dispatch
                .list_slow_jobs(args.request())
                .await
                .context("cannot list slow jobs from dispatch")?;
            print!("{}", slow::show(args.step, &response.into_inner()));
            Ok(())
        }
        Command::Tour => tour::run(Clients::connect(&connection()?)?).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "dispatch311-cli",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// `verify-log`: reads the checkpoints and the whole log, audits, prints.
async fn verify_log(connection: &Connection<'_>, vkey: &str, dir: &Path) -> anyhow::Result<()> {
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
    let mut dispatch =
        DispatchServiceClient::new(connection.credentials()?.bearer(Role::Auditor)?.wrap(
            connection.channel("DISPATCH311_DISPATCH_URL", &connection.servers.dispatch_url)?,
        ));
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
fn dev_certs(dir: &Path) -> anyhow::Result<()> {
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

async fn create(connection: &Connection<'_>, args: &CreateArgs) -> anyhow::Result<()> {
    let address = Address {
        street_address: args.address.clone(),
        cross_street: args.cross_street.clone(),
        borough: args.borough.clone(),
        postal_code: args.zip.clone(),
    };
    let request = CreateServiceRequestRequest {
        request_id: args
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        complaint_type: args.complaint_type.clone(),
        descriptor: args.descriptor.clone(),
        location: args.place.point(),
        address: (address != Address::default()).then_some(address),
        description: args.description.clone(),
        photos: Vec::new(),
        channel: args.channel as i32,
        complainant: None,
        observed_at: None,
        voice_recording_uri: args.voice_recording.clone(),
        photo_ids: Vec::new(),
    };
    let mut clients = Clients::connect(connection)?;
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
}
