//! Runs the real service binaries as separate processes against real
//! PostgreSQL and Redis, isolated per test: a fresh database, a unique Redis
//! key prefix, free ports. Logs go to files that are printed when a test
//! fails to start the suite.
//!
//! The binaries are the ones `cargo build --bins` put next to the test
//! executable (`make test` builds them first).

use std::{
    collections::{BTreeSet, HashMap},
    net::TcpListener as StdListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;
use dispatch311_auth::{
    Authenticated, BearerToken, DEFAULT_AUDIENCE, DEFAULT_ISSUER, KeyPair, Role, TokenSigner,
};
use dispatch311_grpc::tls::{
    TlsConfig,
    dev::{DevCertificateFiles, DevCertificates},
};
use dispatch311_proto::{
    intake::v1::intake_service_client::IntakeServiceClient,
    routing::v1::routing_service_client::RoutingServiceClient,
    survey::v1::survey_service_client::SurveyServiceClient,
};
use tonic::transport::{Channel, Endpoint};

/// The four services, in start order (consumers before producers is not
/// needed: queues keep jobs until a consumer arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Intake,
    Routing,
    Dispatch,
    Survey,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Intake,
        Service::Routing,
        Service::Dispatch,
        Service::Survey,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Intake => "intake",
            Service::Routing => "routing",
            Service::Dispatch => "dispatch",
            Service::Survey => "survey",
        }
    }

    fn addr_var(self) -> &'static str {
        match self {
            Service::Intake => "DISPATCH311_INTAKE_ADDR",
            Service::Routing => "DISPATCH311_ROUTING_ADDR",
            Service::Dispatch => "DISPATCH311_DISPATCH_ADDR",
            Service::Survey => "DISPATCH311_SURVEY_ADDR",
        }
    }
}

/// How to start a suite.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// Where the services export spans (an `OtlpReceiver`).
    pub otlp_endpoint: Option<String>,
    /// Extra environment for every service.
    pub env: Vec<(String, String)>,
    /// Serve and call over mutual TLS, with certificates made for this suite.
    pub mutual_tls: bool,
    /// The services to start; empty: all four. A test of one service's API
    /// starts that one (the others' ports then refuse connections).
    pub services: Vec<Service>,
    /// A PostgreSQL server of the caller's own for the suite's database
    /// (its admin url); default: the test server (`DISPATCH311_TEST_DATABASE_URL`).
    pub postgres_admin_url: Option<String>,
    /// A Redis of the caller's own; default: `REDIS_URL` or the local one.
    pub redis_url: Option<String>,
}

impl SuiteOptions {
    /// Only `services`, with nothing else changed.
    pub fn only(services: &[Service]) -> Self {
        Self {
            services: services.to_vec(),
            ..Self::default()
        }
    }
}

/// A channel whose calls carry a bearer token.
pub type AuthChannel = Authenticated<Channel>;

/// Who the suite's default clients are.
pub const INTEGRATOR: &str = "test-311-app";
pub const SUPERVISOR: &str = "S-900";
pub const SURVEY_SYSTEM: &str = "test-survey-system";

/// How long the tokens the tests mint live.
const TEST_TOKEN_TTL: Duration = Duration::from_secs(3_600);

/// The suite's token issuer: a key made for this suite only, whose public
/// half every service of the suite trusts.
#[derive(Clone, Debug)]
pub struct Tokens {
    signer: TokenSigner,
}

impl Tokens {
    pub fn new(signer: TokenSigner) -> Self {
        Self { signer }
    }

    /// A valid token for `subject` in `role`.
    pub fn mint(&self, role: Role, subject: &str) -> String {
        self.signer
            .mint(subject, role, TEST_TOKEN_TTL)
            .expect("the suite's key signs")
    }

    pub fn bearer(&self, role: Role, subject: &str) -> anyhow::Result<BearerToken> {
        BearerToken::new(&self.mint(role, subject))
    }

    /// The signer itself, for tokens with unusual claims (expired, other audience).
    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }
}

/// The variable that holds intake's contact keys (`id:base64,…`, current first).
pub const CONTACT_KEYS_VAR: &str = "DISPATCH311_CONTACT_KEYS";

/// The suite's event-log signing key, in its log directory.
pub const EVENT_LOG_KEY_FILE: &str = "event-log-key.pem";

/// The private half of the suite's token key, for the console's development
/// sign-in (key id "suite").
pub const SIGNING_KEY_FILE: &str = "auth-signing-key.pem";
/// Where the suite's dispatch exports its signed checkpoints (the local
/// photo store's `event-log/checkpoints` folder).
pub const CHECKPOINTS_FOLDER: &str = "photos/event-log/checkpoints";

/// A fresh random contact key named `key_id`, as `DISPATCH311_CONTACT_KEYS`
/// spells one: `key_id:<32 bytes in base64>`.
pub fn random_contact_key(key_id: &str) -> String {
    use base64::Engine as _;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the system random number generator works");
    format!(
        "{key_id}:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// A running suite. Processes are killed when it is dropped; call `stop` to
/// also drop the test database.
pub struct Suite {
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub log_dir: PathBuf,
    /// The suite's own random contact key (`suite:<base64>`), used unless
    /// the options set `DISPATCH311_CONTACT_KEYS`.
    pub contact_keys: String,
    /// Tokens the services of this suite accept.
    pub tokens: Tokens,
    /// The suite's CA and service certificate, when it runs mutual TLS.
    pub tls: Option<(DevCertificates, DevCertificateFiles)>,
    jwks_path: PathBuf,
    options: SuiteOptions,
    ports: HashMap<Service, u16>,
    /// Where each of the suite's own processes serves `/metrics`.
    metrics_ports: HashMap<Service, u16>,
    processes: HashMap<Service, Child>,
}

impl Suite {
    pub async fn start(options: SuiteOptions) -> anyhow::Result<Suite> {
        let database_url = match &options.postgres_admin_url {
            Some(admin_url) => dispatch311_db::testing::create_database_on(admin_url).await?,
            None => dispatch311_db::testing::create_database().await?,
        };
        let redis_prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
        let log_dir = std::env::temp_dir()
            .join("dispatch311-tests")
            .join(redis_prefix.trim_end_matches(':'));
        std::fs::create_dir_all(&log_dir)?;
        let keys = KeyPair::generate("suite")?;
        let jwks_path = log_dir.join("auth-jwks.json");
        std::fs::write(&jwks_path, &keys.jwks_json)?;
        std::fs::write(log_dir.join(SIGNING_KEY_FILE), &keys.private_key_pem)?;
        // dispatch signs its event log's checkpoints with a key of the suite's own
        let event_log_key = KeyPair::generate("event-log")?;
        std::fs::write(
            log_dir.join(EVENT_LOG_KEY_FILE),
            &event_log_key.private_key_pem,
        )?;
        let tokens = Tokens {
            signer: keys.signer(DEFAULT_ISSUER, DEFAULT_AUDIENCE)?,
        };
        let tls = if options.mutual_tls {
            let certificates = DevCertificates::generate("dispatch311 test CA")?;
            let files = certificates.write(&log_dir.join("tls"))?;
            Some((certificates, files))
        } else {
            None
        };
        let mut suite = Suite {
            database_url,
            redis_url: options.redis_url.clone().unwrap_or_else(|| {
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
            }),
            redis_prefix,
            log_dir,
            contact_keys: random_contact_key("suite"),
            tokens,
            tls,
            jwks_path,
            options,
            ports: HashMap::new(),
            metrics_ports: HashMap::new(),
            processes: HashMap::new(),
        };
        for service in Service::ALL {
            suite.ports.insert(service, free_port()?);
            suite.metrics_ports.insert(service, free_port()?);
        }
        let started = if suite.options.services.is_empty() {
            Service::ALL.to_vec()
        } else {
            suite.options.services.clone()
        };
        for service in &started {
            suite.spawn(*service)?;
        }
        for service in started {
            suite.wait_ready(service).await?;
        }
        Ok(suite)
    }

    fn spawn(&mut self, service: Service) -> anyhow::Result<()> {
        let (binary, mut command) =
            self.command(service, self.ports[&service], &self.log_path(service))?;
        command.env(
            "DISPATCH311_METRICS_ADDR",
            format!("127.0.0.1:{}", self.metrics_ports[&service]),
        );
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        self.processes.insert(service, child);
        Ok(())
    }

    /// Starts one more process of `service` (a second replica) on its own
    /// port, with the same database, Redis prefix and environment as the
    /// suite's process, and waits until it serves. It logs to
    /// `<service>-replica-<port>.log` and is killed when the returned
    /// [`Replica`] is dropped.
    pub async fn spawn_replica(&self, service: Service) -> anyhow::Result<Replica> {
        self.spawn_replica_at(service, free_port()?).await
    }

    /// [`Suite::spawn_replica`] on `port`: a replica started again where it
    /// served before (its clients keep their address).
    pub async fn spawn_replica_at(&self, service: Service, port: u16) -> anyhow::Result<Replica> {
        let log_path = self
            .log_dir
            .join(format!("{}-replica-{port}.log", service.name()));
        let (binary, mut command) = self.command(service, port, &log_path)?;
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut replica = Replica {
            port,
            url: self.url_of_port(port),
            tls: self.client_tls(),
            tokens: self.tokens.clone(),
            log_path,
            child,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = replica.child.try_wait()? {
                anyhow::bail!(
                    "{} replica exited during start-up ({status}):\n{}",
                    service.name(),
                    std::fs::read_to_string(&replica.log_path).unwrap_or_default()
                );
            }
            if serving(&replica.url, replica.tls.as_ref()).await {
                return Ok(replica);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("{} replica not serving after 30s", service.name());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The command that runs `service` on `port` with the suite's environment.
    fn command(
        &self,
        service: Service,
        port: u16,
        log_path: &std::path::Path,
    ) -> anyhow::Result<(PathBuf, Command)> {
        let binary = binary_path(service)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)?;
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(service.addr_var(), format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("DISPATCH311_REDIS_PREFIX", &self.redis_prefix)
            .env("DISPATCH311_DB_MAX_CONNECTIONS", "8")
            .env(CONTACT_KEYS_VAR, &self.contact_keys)
            .env("DISPATCH311_AUTH_JWKS", &self.jwks_path)
            .env(
                "DISPATCH311_EVENT_LOG_KEY",
                self.log_dir.join(EVENT_LOG_KEY_FILE),
            )
            // checkpoints every second: tests see a rewrite detected quickly
            .env("DISPATCH311_CHECKPOINT_SECS", "1")
            // replays file thousands of requests as one integrator; the test of
            // the limits sets its own through the options
            .env("DISPATCH311_RATE_LIMIT_PER_SECOND", "1000000")
            // tests file one complaint after another at the same few places:
            // each is a job of its own unless a test of linking says otherwise
            .env("DISPATCH311_LINK_DUPLICATES", "false")
            // where each service reaches the others (survey calls intake)
            .envs(Service::ALL.iter().map(|other| {
                (
                    format!("DISPATCH311_{}_URL", other.name().to_uppercase()),
                    self.url(*other),
                )
            }))
            .env(
                "RUST_LOG",
                std::env::var("TEST_SERVICE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log);
        // intake writes the suite's photos here and dispatch reads them,
        // unless the options name another store (S3)
        if !self
            .options
            .env
            .iter()
            .any(|(k, _)| k == "DISPATCH311_PHOTO_STORE")
        {
            command.env("DISPATCH311_PHOTO_DIR", self.log_dir.join("photos"));
        }
        self.tls_and_telemetry_env(&mut command);
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        Ok((binary, command))
    }

    /// The suite's TLS files (under mutual TLS) and where traces go (its
    /// OTLP receiver, or nowhere), for a process it starts.
    fn tls_and_telemetry_env(&self, command: &mut Command) {
        if let Some((_, files)) = &self.tls {
            command.envs(files.env());
        }
        match &self.options.otlp_endpoint {
            Some(endpoint) => command
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                .env("OTEL_BSP_SCHEDULE_DELAY", "100"),
            None => command.env("OTEL_TRACES_EXPORTER", "none"),
        };
    }

    /// Sets `key` to `value` in the environment of every process started
    /// from now on (a `restart`, a replica, `run_command`), e.g. new contact keys.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.options.env.retain(|(k, _)| k != key);
        self.options.env.push((key.to_string(), value.to_string()));
    }

    /// Runs `service`'s binary with `args` (a one-off command such as
    /// `rekey`) in the suite's environment and waits for it to exit; its
    /// stdout and stderr are returned.
    pub async fn run_command(
        &self,
        service: Service,
        args: &[&str],
    ) -> anyhow::Result<std::process::Output> {
        let (binary, mut command) = self.command(service, 0, &self.log_path(service))?;
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .with_context(|| format!("cannot run {}", binary.display()))?;
        Ok(output)
    }

    /// Runs `dispatch311-cli` with `args` against this suite, calling with a
    /// token of `role`; its stdout and stderr are returned.
    pub async fn run_cli(&self, role: Role, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let binary = binary_named("cli")?;
        let mut command = tokio::process::Command::new(&binary);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DISPATCH311_TOKEN", self.tokens.mint(role, "cli"))
            .envs(Service::ALL.iter().map(|service| {
                (
                    format!("DISPATCH311_{}_URL", service.name().to_uppercase()),
                    self.url(*service),
                )
            }));
        if let Some((_, files)) = &self.tls {
            command.envs(files.env());
        }
        command
            .output()
            .await
            .with_context(|| format!("cannot run {}", binary.display()))
    }

    /// Starts a console (`dispatch311-console`) in front of this suite, with
    /// the development sign-in on and plain-HTTP cookies, and waits until it
    /// answers `/healthz`. Killed when the returned handle is dropped.
    pub async fn spawn_console(&self) -> anyhow::Result<Console> {
        self.spawn_console_with(&[]).await
    }

    /// A console as `spawn_console`, with more settings (e.g. an identity
    /// provider's). Its public URL is its own address; it verifies tokens
    /// with the suite's key set, as the services do.
    pub async fn spawn_console_with(&self, env: &[(&str, &str)]) -> anyhow::Result<Console> {
        let mut session_key = [0u8; 32];
        getrandom::fill(&mut session_key).expect("the system random number generator works");
        let session_key_text =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, session_key);
        let mut settings = vec![
            ("DISPATCH311_DISPATCH_URL", self.url(Service::Dispatch)),
            ("DISPATCH311_SURVEY_URL", self.url(Service::Survey)),
            ("DISPATCH311_CONSOLE_SESSION_KEY", session_key_text),
            ("DISPATCH311_CONSOLE_SECURE_COOKIES", "false".into()),
            ("DISPATCH311_CONSOLE_DEV_SIGN_IN", "true".into()),
        ];
        settings.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
        let web = self.spawn_web("console", &settings).await?;
        Ok(Console {
            url: web.url,
            log_path: web.log_path,
            session_key,
            child: web.child,
        })
    }

    /// Starts an Open311 gateway (`dispatch311-open311`) in front of this
    /// suite: `keys` are its API keys (key, integrator, survey consent),
    /// kept hashed in a file of the suite's; it signs its calls with the
    /// suite's key. Killed when the returned handle is dropped.
    pub async fn spawn_open311(
        &self,
        keys: &[(&str, &str, bool)],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Open311> {
        let keys_file = self
            .log_dir
            .join(format!("open311-keys-{}", uuid::Uuid::new_v4().simple()));
        let lines: Vec<String> = keys
            .iter()
            .map(|(key, integrator, consent)| {
                dispatch311_open311::keys::key_line(key, integrator, *consent)
            })
            .collect();
        std::fs::write(&keys_file, lines.join("\n") + "\n")?;
        let mut settings = vec![
            ("DISPATCH311_INTAKE_URL", self.url(Service::Intake)),
            ("DISPATCH311_ROUTING_URL", self.url(Service::Routing)),
            (
                "DISPATCH311_OPEN311_API_KEYS",
                keys_file.display().to_string(),
            ),
        ];
        settings.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
        let web = self.spawn_web("open311", &settings).await?;
        Ok(Open311 {
            url: web.url,
            log_path: web.log_path,
            keys_file,
            child: web.child,
        })
    }

    /// Starts one of the HTTP binaries (`dispatch311-<name>`) on a free port
    /// (`DISPATCH311_<NAME>_ADDR`), with the suite's signing key and key set,
    /// TLS and tracing, and `env`; waits until it answers `/healthz`.
    async fn spawn_web(&self, name: &str, env: &[(&str, String)]) -> anyhow::Result<WebProcess> {
        let binary = binary_named(name)?;
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let log_path = self.log_dir.join(format!("{name}-{port}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                format!("DISPATCH311_{}_ADDR", name.to_uppercase()),
                format!("127.0.0.1:{port}"),
            )
            .env(
                "DISPATCH311_AUTH_SIGNING_KEY",
                self.log_dir.join(SIGNING_KEY_FILE),
            )
            .env("DISPATCH311_AUTH_KEY_ID", "suite")
            .env("DISPATCH311_AUTH_JWKS", &self.jwks_path)
            .env(
                format!("DISPATCH311_{}_PUBLIC_URL", name.to_uppercase()),
                &url,
            )
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env(
                "RUST_LOG",
                std::env::var("TEST_SERVICE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log);
        self.tls_and_telemetry_env(&mut command);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let process = WebProcess {
            url,
            log_path,
            child,
        };
        let health = format!("{}/healthz", process.url);
        for _ in 0..200 {
            if http_get_ok(&health).await {
                return Ok(process);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "{name} did not answer on {health}: {}",
            std::fs::read_to_string(&process.log_path).unwrap_or_default()
        )
    }

    /// Waits until the service answers its gRPC health check as SERVING.
    async fn wait_ready(&mut self, service: Service) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.processes.get_mut(&service)
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!(
                    "{} exited during start-up ({status}):\n{}",
                    service.name(),
                    self.log_tail(service, 40)
                );
            }
            if self.health(service).await {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "{} not serving after 30s:\n{}",
                    service.name(),
                    self.log_tail(service, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn health(&self, service: Service) -> bool {
        serving(&self.url(service), self.client_tls().as_ref()).await
    }

    pub fn url(&self, service: Service) -> String {
        self.url_of_port(self.ports[&service])
    }

    fn url_of_port(&self, port: u16) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{port}")
    }

    /// What the suite's clients present under mutual TLS: the services' own
    /// certificate (signed by the suite's CA).
    pub fn client_tls(&self) -> Option<TlsConfig> {
        self.tls
            .as_ref()
            .map(|(certificates, _)| certificates.config())
    }

    pub fn log_path(&self, service: Service) -> PathBuf {
        self.log_dir.join(format!("{}.log", service.name()))
    }

    pub fn log_tail(&self, service: Service, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(service)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn pid(&self, service: Service) -> Option<u32> {
        self.processes.get(&service).map(Child::id)
    }

    /// SIGKILL: the process gets no chance to finish or acknowledge anything.
    pub fn kill(&mut self, service: Service) -> anyhow::Result<()> {
        if let Some(mut child) = self.processes.remove(&service) {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then waits for a graceful exit; returns whether it exited cleanly.
    pub async fn terminate(&mut self, service: Service) -> anyhow::Result<bool> {
        let Some(mut child) = self.processes.remove(&service) else {
            return Ok(true);
        };
        // it may have exited by itself (a start-up the test expected to fail)
        if let Some(status) = child.try_wait()? {
            return Ok(status.success());
        }
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if tokio::time::Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                anyhow::bail!("{} did not stop within 20s of SIGTERM", service.name());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a service again (after `kill` or `terminate`) on its old port.
    pub async fn restart(&mut self, service: Service) -> anyhow::Result<()> {
        self.spawn(service)?;
        self.wait_ready(service).await
    }

    /// Intake as the suite's integrator.
    pub async fn intake(&self) -> anyhow::Result<IntakeServiceClient<AuthChannel>> {
        self.intake_as(Role::Integrator, INTEGRATOR).await
    }

    pub async fn intake_as(
        &self,
        role: Role,
        subject: &str,
    ) -> anyhow::Result<IntakeServiceClient<AuthChannel>> {
        Ok(IntakeServiceClient::new(
            self.authenticated(Service::Intake, role, subject).await?,
        ))
    }

    /// Routing as a supervisor (who may call all of it).
    pub async fn routing(&self) -> anyhow::Result<RoutingServiceClient<AuthChannel>> {
        Ok(RoutingServiceClient::new(
            self.authenticated(Service::Routing, Role::Supervisor, SUPERVISOR)
                .await?,
        ))
    }

    /// The tokens this suite's services trust.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The survey system's client.
    pub async fn survey(&self) -> anyhow::Result<SurveyServiceClient<AuthChannel>> {
        self.survey_as(Role::SurveySystem, SURVEY_SYSTEM).await
    }

    pub async fn survey_as(
        &self,
        role: Role,
        subject: &str,
    ) -> anyhow::Result<SurveyServiceClient<AuthChannel>> {
        Ok(SurveyServiceClient::new(
            self.authenticated(Service::Survey, role, subject).await?,
        ))
    }

    /// A connection to `service` whose calls carry a token for `subject` in `role`.
    pub async fn authenticated(
        &self,
        service: Service,
        role: Role,
        subject: &str,
    ) -> anyhow::Result<AuthChannel> {
        Ok(self
            .tokens
            .bearer(role, subject)?
            .wrap(self.channel(service).await?))
    }

    /// A connection to `service` without credentials (over the suite's
    /// mutual TLS when it runs it).
    pub async fn channel(&self, service: Service) -> anyhow::Result<Channel> {
        Ok(endpoint(&self.url(service), self.client_tls().as_ref())?
            .connect()
            .await?)
    }

    /// The verifier key of the suite's event log (what auditors are given).
    pub fn event_log_verifier_key(&self) -> anyhow::Result<String> {
        let pem = std::fs::read_to_string(self.log_dir.join(EVENT_LOG_KEY_FILE))?;
        let key = dispatch311_domain::event_log::signing_key_from_pem(&pem)?;
        Ok(dispatch311_domain::event_log::verifier_key(
            "dispatch311/event-log",
            &key.verifying_key(),
        ))
    }

    /// The JWKS file every service of the suite verifies tokens with (the
    /// services re-read it: see `DISPATCH311_AUTH_JWKS_RELOAD_SECS`).
    pub fn jwks_path(&self) -> &std::path::Path {
        &self.jwks_path
    }

    /// What `service` serves on `/metrics` now (Prometheus' text format).
    pub async fn metrics(&self, service: Service) -> anyhow::Result<String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let port = self.metrics_ports[&service];
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("{} serves no metrics on port {port}", service.name()))?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .context("not an HTTP response")?;
        anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "metrics answered {head}");
        Ok(body.to_owned())
    }

    /// A pool on the test database, for assertions on what services stored.
    pub async fn database(&self) -> anyhow::Result<sqlx::PgPool> {
        Ok(sqlx::PgPool::connect(&self.database_url).await?)
    }

    /// Stops every process and drops the test database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for service in Service::ALL {
            let _ = self.terminate(service).await;
        }
        dispatch311_db::testing::drop_database(&self.database_url).await?;
        let _ = std::fs::remove_dir_all(&self.log_dir);
        Ok(())
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        for (_, mut child) in self.processes.drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A console in front of a suite ([`Suite::spawn_console`]); killed when dropped.
/// A started HTTP binary, before it is wrapped in its handle.
struct WebProcess {
    url: String,
    log_path: PathBuf,
    child: Child,
}

/// A running Open311 gateway of a suite (`Suite::spawn_open311`).
pub struct Open311 {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub log_path: PathBuf,
    /// Its API keys (hashes): tests add and revoke keys by rewriting it.
    pub keys_file: PathBuf,
    child: Child,
}

impl Drop for Open311 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Console {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub log_path: PathBuf,
    /// The key it seals sessions with (a test seals an expired one).
    pub session_key: [u8; 32],
    child: Child,
}

impl Console {
    /// What a browser gets from the sign-in page before posting a sign-in
    /// form: the cookie pairing it with the page (`name=value`) and the
    /// forms' token.
    pub async fn sign_in_form_token(&self) -> anyhow::Result<(String, String)> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let page = reqwest::Client::new()
            .get(format!("{}/sign-in", self.url))
            .send()
            .await?;
        let cookie = page
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("dispatch311-sign-in-csrf="))
            .and_then(|value| value.split(';').next())
            .context("the sign-in page pairs its form token with a cookie")?
            .to_string();
        let html = page.text().await?;
        let token = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .context("the sign-in form carries a token")?
            .to_string();
        Ok((cookie, token))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET url` answers 200 (plain HTTP/1.1 on loopback, no client library).
async fn http_get_ok(url: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut stream) = tokio::net::TcpStream::connect(host).await else {
        return false;
    };
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    answer.starts_with(b"HTTP/1.1 200")
}

/// An extra process of a service, started with [`Suite::spawn_replica`];
/// killed when dropped.
pub struct Replica {
    pub port: u16,
    pub url: String,
    tls: Option<TlsConfig>,
    tokens: Tokens,
    pub log_path: PathBuf,
    child: Child,
}

impl Replica {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A connection to this replica whose calls carry a token for `subject` in `role`.
    pub async fn authenticated(&self, role: Role, subject: &str) -> anyhow::Result<AuthChannel> {
        Ok(self
            .tokens
            .bearer(role, subject)?
            .wrap(endpoint(&self.url, self.tls.as_ref())?.connect().await?))
    }

    /// A connection to this replica, without a token.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        Ok(endpoint(&self.url, self.tls.as_ref())?.connect().await?)
    }

    /// The tokens the replica trusts.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The endpoint at `url`, over mutual TLS with `tls`.
pub fn endpoint(url: &str, tls: Option<&TlsConfig>) -> anyhow::Result<Endpoint> {
    let endpoint = Channel::from_shared(url.to_string())?;
    Ok(match tls {
        Some(tls) => endpoint.tls_config(tls.client())?,
        None => endpoint,
    })
}

/// Whether the gRPC server at `url` answers its health check as SERVING.
async fn serving(url: &str, tls: Option<&TlsConfig>) -> bool {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let Ok(endpoint) = endpoint(url, tls) else {
        return false;
    };
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    matches!(answer, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32)
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn binary_path(service: Service) -> anyhow::Result<PathBuf> {
    binary_named(service.name())
}

/// `dispatch311-<name>` in the profile directory of the running executable.
pub fn binary_named(name: &str) -> anyhow::Result<PathBuf> {
    // test executables live in <target>/<profile>/deps, binaries (such as
    // the chaos run) in <target>/<profile>
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("unexpected executable location")?;
    let profile_dir = if dir.ends_with("deps") {
        dir.parent()
            .context("unexpected test executable location")?
    } else {
        dir
    };
    let binary = profile_dir.join(format!("dispatch311-{name}"));
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: build the services first (`cargo build --bins`; `make test` does it)",
        binary.display()
    );
    Ok(binary)
}

/// A port nobody listens on, and that no other suite of this test process
/// was given: a suite restarting a service on its port must not find
/// another suite's service there (a stopped service frees its port, and the
/// kernel may hand it out again at once).
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
}
