//! The chaos run's own PostgreSQL and Redis, on free loopback ports, so it
//! can restart them without touching the servers other work on the machine
//! uses; and the TCP fault proxies in front of them that cut, hold and delay
//! their connections.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};

/// A PostgreSQL cluster of the run's own (`initdb` into a temporary folder,
/// trust authentication on loopback), run by the `postgres` user when this
/// runs as root. Stopped and removed when dropped.
pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    pub fn start(work_dir: &Path) -> anyhow::Result<Self> {
        let bin = postgres_bin_dir()?;
        let port = free_port()?;
        let dir = work_dir.join("postgres");
        std::fs::create_dir_all(&dir)?;
        let postgres = Self { dir, bin, port };
        if running_as_root() {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&postgres.dir))?;
        }
        run(postgres
            .as_owner("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(postgres.data()))?;
        run(postgres
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(postgres.data())
            .arg("-l")
            .arg(postgres.dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                // no fsync: the faults kill processes, never the machine, so
                // the page cache survives them; a restart still recovers
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
                postgres.port,
                postgres.dir.display()
            ))
            .arg("start"))?;
        Ok(postgres)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `tool` of this PostgreSQL, run as the cluster's owner.
    fn as_owner(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// The url to create databases with, reached through `port` (this
    /// server's, or a proxy's in front of it).
    pub fn admin_url_on(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }

    /// Restarts the server: `fast` (clients disconnected, a clean shutdown)
    /// or `immediate` (a crash: recovery from the WAL at start).
    pub fn restart(&self, mode: &str) -> anyhow::Result<()> {
        // the log file, or the new server would hold this call's output pipe
        // open (and `run` wait for it) forever
        run(self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-m", mode, "restart"]))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis of the run's own without persistence: a restart comes back empty,
/// as a cache node replaced by the platform would.
pub struct PrivateRedis {
    pub port: u16,
    process: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> anyhow::Result<Self> {
        let mut redis = Self {
            port: free_port()?,
            process: None,
        };
        redis.spawn().await?;
        Ok(redis)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server runs the chaos run's Redis")?;
        self.process = Some(process);
        let client = redis::Client::open(self.url())?;
        for _ in 0..200 {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<()>(&mut connection)
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the chaos run's Redis did not answer on port {}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, then a new empty server on the same port after `pause`.
    pub async fn kill_and_restart(&mut self, pause: Duration) -> anyhow::Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill()?;
            process.wait()?;
        }
        tokio::time::sleep(pause).await;
        self.spawn().await
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// What a fault proxy does to the connections through it for an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFault {
    /// Every connection reset when it next carries traffic.
    Reset,
    /// Traffic held in both directions: connections hang until their timeouts.
    Blackhole,
    /// Every read and write held 100-400 ms: a congested or distant network.
    Delay,
}

impl NetworkFault {
    /// The fault in `fault`'s run document (a chain of one).
    fn spec(self) -> serde_json::Value {
        match self {
            NetworkFault::Reset => serde_json::json!({
                "type": "connection-reset", "flow": "both", "probability": 1.0
            }),
            NetworkFault::Blackhole => serde_json::json!({"type": "blackhole", "flow": "both"}),
            NetworkFault::Delay => serde_json::json!({
                "type": "jitter", "flow": "both",
                "min_delay_ms": 100.0, "max_delay_ms": 400.0, "probability": 1.0
            }),
        }
    }
}

/// A TCP fault proxy in front of one server (`fault`, from crates.io's
/// `fault-cli`): the services connect through it, and the run changes what it
/// does to their traffic by rewriting its run document, which `fault` reloads
/// (`--watch`) without touching the connections themselves. Stopped when
/// dropped.
pub struct FaultProxy {
    pub port: u16,
    upstream: u16,
    document: PathBuf,
    events: PathBuf,
    process: Child,
    reloads: u64,
}

impl FaultProxy {
    /// Whether the `fault` command is installed (deploy/ensure-chaos-tools.sh).
    pub fn available() -> bool {
        Command::new("fault")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// A proxy named `name` on a free port, passing everything to `upstream`.
    pub async fn start(name: &str, upstream: u16, work_dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let document = work_dir.join(format!("fault-{name}.json"));
        let events = work_dir.join(format!("fault-{name}.ndjson"));
        write_run_document(&document, port, upstream, 0, None)?;
        let log = std::fs::File::create(&events)?;
        let process = Command::new("fault")
            .args(["--output", "json", "--color", "never", "run"])
            .arg(&document)
            .arg("--watch")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("the fault command runs the chaos run's TCP fault proxies")?;
        let proxy = Self {
            port,
            upstream,
            document,
            events,
            process,
            reloads: 0,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(proxy);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the fault proxy for {name} did not listen on {port}: {}",
            std::fs::read_to_string(&proxy.events).unwrap_or_default()
        )
    }

    /// Applies `fault` to every connection through the proxy (None: healthy
    /// again), once `fault` says it reloaded.
    pub async fn inject(&mut self, fault: Option<NetworkFault>) -> anyhow::Result<()> {
        let reloaded_before = self.count_events("\"config-reloaded\"");
        let failed_before = self.count_events("\"config-reload-failed\"");
        self.reloads += 1;
        write_run_document(
            &self.document,
            self.port,
            self.upstream,
            self.reloads,
            fault,
        )?;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.count_events("\"config-reloaded\"") > reloaded_before {
                return Ok(());
            }
            ensure!(
                self.count_events("\"config-reload-failed\"") == failed_before,
                "the fault proxy refused its new document: {}",
                std::fs::read_to_string(&self.events).unwrap_or_default()
            );
        }
        bail!("the fault proxy did not reload within 10 s")
    }

    /// What the proxy did to the traffic so far (`fault`'s own counters).
    pub fn effects(&self) -> BTreeMap<String, u64> {
        let events = std::fs::read_to_string(&self.events).unwrap_or_default();
        let Some(last) = events
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["type"] == "run-progress")
        else {
            return BTreeMap::new();
        };
        let effects = &last["transport"]["effects"];
        [
            ("connections", &last["transport"]["tcp"]["opened"]),
            ("reset", &effects["connection_resets"]),
            ("delayed reads and writes", &effects["jitter_applications"]),
            ("blackholed", &effects["blackhole_activations"]),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.as_u64().unwrap_or(0)))
        .collect()
    }

    fn count_events(&self, kind: &str) -> usize {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(kind))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `fault`'s run document: one proxy from `port` to `upstream`, one phase
/// without end applying `fault` (or nothing). The phase is numbered by
/// `step`, so every write differs from the last and is a reload.
fn write_run_document(
    path: &Path,
    port: u16,
    upstream: u16,
    step: u64,
    fault: Option<NetworkFault>,
) -> anyhow::Result<()> {
    let faults: Vec<_> = fault.into_iter().map(NetworkFault::spec).collect();
    let document = serde_json::json!({
        "schema_version": 1,
        "name": "dispatch311 chaos",
        "proxies": [{
            "name": "upstream",
            "protocol": "tcp",
            "listen": format!("127.0.0.1:{port}"),
            "upstream": format!("127.0.0.1:{upstream}"),
        }],
        "phases": [{
            "name": format!("step {step}"),
            "proxies": if faults.is_empty() {
                serde_json::json!([])
            } else {
                serde_json::json!([{"proxy": "upstream", "faults": faults}])
            },
        }],
    });
    // written whole, then renamed: the watcher never reads half a document
    let partial = path.with_extension("partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(&document)?)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL's server binaries (/usr/lib/postgresql) run the chaos run's server")?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
