//! The command line: subcommands and their flags (clap), the servers, the
//! credentials and mutual TLS (flags or environment). `--help` on the cli or
//! any command lists them; a mistake exits with status 2 and says what.

use std::path::PathBuf;

use dispatch311_auth::{Role, SignerArgs};
use dispatch311_grpc::tls::TlsArgs;
use dispatch311_proto::common::v1::{Channel as IntakeChannel, GeoPoint};

/// File, look up and follow 311 service requests on a running dispatch311 suite.
#[derive(Debug, clap::Parser)]
#[command(name = "dispatch311-cli", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub servers: Servers,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// File a service request; prints its SR number.
    Create(CreateArgs),
    /// A request's status, agency, precinct, priority, SLA, timeline and trace id.
    Get {
        /// e.g. SR-2026-0000042
        sr_number: String,
    },
    /// A precinct's dispatch queue, highest priority first.
    Queue {
        /// A precinct number, e.g. 14.
        precinct: String,
        /// Jobs to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i32).range(1..=1_000))]
        limit: i32,
    },
    /// How routing would route such a request, and why (changes nothing).
    Explain {
        #[arg(long = "type")]
        complaint_type: String,
        #[arg(long, default_value = "")]
        descriptor: String,
        #[command(flatten)]
        place: Place,
        /// A street address (routing needs only to know there is one).
        #[arg(long)]
        address: Option<String>,
    },
    /// The routing rules in force, in matching order.
    Rules,
    /// For SREs: the jobs whose step took longest, slowest first, with each
    /// step's duration and trace ids (read as admin), e.g.
    /// `slow --step assigned --over 2m --since 1h --precinct 14`.
    Slow(crate::slow::SlowArgs),
    /// The two-minute tour: file complaints and follow them through the suite.
    Tour,
    /// A development bearer token.
    Token {
        /// integrator, public, dispatcher, officer, supervisor, survey_system, auditor or admin.
        #[arg(long, value_parser = role)]
        role: Role,
        /// Whom the token is for (default: a development subject of the role).
        #[arg(long)]
        subject: Option<String>,
        /// Hours the token lives (above 0, at most 720).
        #[arg(long, default_value_t = 12.0, value_parser = hours)]
        hours: f64,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// An auditor's check of dispatch's whole event log (read as auditor)
    /// against the signed checkpoints exported to the object store and the
    /// verifier key; trusts neither the database nor the service; exits 1
    /// when the log was rewritten, cut short or rolled back.
    VerifyLog {
        /// The verifier key, or a file holding it.
        #[arg(long)]
        vkey: String,
        /// A copy of the object store's event-log/checkpoints folder.
        #[arg(long)]
        checkpoints: PathBuf,
    },
    /// Makes a development token-signing key and its JWKS in DIR, and the key
    /// dispatch signs its event log with (event-log-key.pem, event-log.vkey);
    /// kept if present.
    DevKeys {
        #[arg(long)]
        dir: PathBuf,
        /// The event log's name, which the verifier key carries.
        #[arg(
            long = "event-log-name",
            env = "DISPATCH311_EVENT_LOG_NAME",
            default_value = "dispatch311/event-log"
        )]
        event_log_name: String,
    },
    /// Makes a development CA and a certificate for localhost in DIR, for
    /// mutual TLS (kept if present); prints the DISPATCH311_TLS_* settings.
    DevCerts {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Prints a shell completion script, e.g. `dispatch311-cli completions bash
    /// > /etc/bash_completion.d/dispatch311-cli`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the suite's services are.
#[derive(Debug, clap::Args)]
pub struct Servers {
    #[arg(
        long,
        env = "DISPATCH311_INTAKE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub intake_url: String,
    #[arg(
        long,
        env = "DISPATCH311_ROUTING_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub routing_url: String,
    #[arg(
        long,
        env = "DISPATCH311_DISPATCH_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub dispatch_url: String,
}

/// A bearer token for every call, or else the development signing key: the
/// cli signs its own tokens, as integrator for intake and routing and as
/// dispatcher for the queue.
#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    /// A bearer token for every call.
    #[arg(long, env = "DISPATCH311_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// `--lat` and `--lon`, both or neither.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Place {
    #[arg(long, requires = "lon", allow_negative_numbers = true, value_parser = coordinate)]
    pub lat: Option<f64>,
    #[arg(long, requires = "lat", allow_negative_numbers = true, value_parser = coordinate)]
    pub lon: Option<f64>,
}

impl Place {
    pub fn point(self) -> Option<GeoPoint> {
        Some(GeoPoint {
            latitude: self.lat?,
            longitude: self.lon?,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long = "type")]
    pub complaint_type: String,
    #[arg(long, default_value = "")]
    pub descriptor: String,
    #[command(flatten)]
    pub place: Place,
    #[arg(long, default_value = "")]
    pub address: String,
    #[arg(long, default_value = "")]
    pub description: String,
    #[arg(long, default_value = "")]
    pub cross_street: String,
    #[arg(long, default_value = "")]
    pub borough: String,
    #[arg(long, default_value = "")]
    pub zip: String,
    /// mobile_app, web, phone, text, partner_agency or open311 (someone
    /// filing from a terminal is most likely a call-center operator).
    #[arg(long, default_value = "phone", value_parser = channel)]
    pub channel: IntakeChannel,
    /// The idempotency key (default: a fresh one, so running the command
    /// twice files twice, on purpose).
    #[arg(long)]
    pub request_id: Option<String>,
    #[arg(long, default_value = "")]
    pub voice_recording: String,
}

fn coordinate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(format!("{text:?} is not a number")),
    }
}

fn role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: dispatch311_auth::UnknownRole| e.to_string())
}

fn hours(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(h) if h > 0.0 && h <= 24.0 * 30.0 => Ok(h),
        _ => Err("must be above 0 and at most 720".to_owned()),
    }
}

/// A channel as people type it: `phone`, `mobile-app`, `MOBILE_APP`.
pub fn channel(text: &str) -> Result<IntakeChannel, String> {
    let name = format!(
        "CHANNEL_{}",
        text.trim().to_ascii_uppercase().replace('-', "_")
    );
    IntakeChannel::from_str_name(&name)
        .filter(|channel| *channel != IntakeChannel::Unspecified)
        .ok_or_else(|| format!("unknown channel {text:?}"))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("dispatch311-cli").chain(args.iter().copied()))
    }

    #[test]
    fn every_flag_is_defined_once() {
        Cli::command().debug_assert();
    }

    #[test]
    fn reads_commands_flags_and_positionals() {
        let cli = parse(&[
            "create",
            "--type",
            "Illegal Parking",
            "--lat=40.7484",
            "--lon",
            "-73.9857",
        ])
        .unwrap();
        let Command::Create(create) = cli.command else {
            panic!("not create")
        };
        assert_eq!(create.complaint_type, "Illegal Parking");
        // a negative number is a value, not a flag
        assert_eq!(
            create.place.point(),
            Some(GeoPoint {
                latitude: 40.7484,
                longitude: -73.9857
            })
        );
        assert_eq!(create.descriptor, "");
        assert_eq!(create.channel, IntakeChannel::Phone);

        let cli = parse(&["get", "SR-2026-0000042"]).unwrap();
        assert!(
            matches!(cli.command, Command::Get { sr_number } if sr_number == "SR-2026-0000042")
        );
    }

    #[test]
    fn refuses_what_a_command_does_not_take() {
        use clap::error::ErrorKind;
        let kind = |args: &[&str]| parse(args).unwrap_err().kind();
        assert_eq!(
            kind(&["rules", "--colour", "red"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(kind(&["get"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            kind(&["create", "--type", "Noise", "--lat", "north", "--lon", "1"]),
            ErrorKind::ValueValidation
        );
        // a latitude without a longitude places nothing
        assert_eq!(
            kind(&["create", "--type", "Noise", "--lat", "40.7"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(kind(&["create", "--type"]), ErrorKind::InvalidValue);
        assert_eq!(
            kind(&["queue", "14", "--limit", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind(&["--help"]), ErrorKind::DisplayHelp);
    }

    #[test]
    fn reads_channel_names_as_people_type_them() {
        assert_eq!(channel("phone").unwrap(), IntakeChannel::Phone);
        assert_eq!(channel("mobile-app").unwrap(), IntakeChannel::MobileApp);
        assert!(channel("unspecified").is_err());
        assert!(channel("pigeon").is_err());
    }
}
