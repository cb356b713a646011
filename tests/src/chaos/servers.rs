//! The chaos run's own PostgreSQL and Redis, on free loopback ports, so it
//! can restart them and cut their connections without touching the servers
//! other work on the machine uses; and the firewall rules that cut them.

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

    /// The url to create databases with.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
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

/// How a connection fault treats the packets sent to a server's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Answered with a TCP reset: connections in use break at once.
    Reset,
    /// Dropped silently: connections hang until their timeouts.
    Blackhole,
}

impl Cut {
    fn target(self) -> &'static [&'static str] {
        match self {
            Cut::Reset => &["REJECT", "--reject-with", "tcp-reset"],
            Cut::Blackhole => &["DROP"],
        }
    }
}

/// Connection faults through the kernel's packet filter (`iptables`): every
/// packet to a port on loopback is reset or dropped for an interval. Rules
/// still in place are removed when dropped.
#[derive(Default)]
pub struct Firewall {
    active: Vec<(u16, Cut)>,
}

impl Firewall {
    /// Whether `iptables` can be used here (installed, and run as root).
    pub fn available() -> bool {
        running_as_root()
            && Command::new("iptables")
                .args(["-S", "INPUT"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
    }

    pub fn cut(&mut self, port: u16, cut: Cut) -> anyhow::Result<()> {
        run(Command::new("iptables").args(rule("-I", port, cut)))?;
        self.active.push((port, cut));
        Ok(())
    }

    pub fn restore(&mut self, port: u16, cut: Cut) -> anyhow::Result<()> {
        self.active.retain(|active| *active != (port, cut));
        run(Command::new("iptables").args(rule("-D", port, cut)))
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        for (port, cut) in std::mem::take(&mut self.active) {
            let _ = Command::new("iptables")
                .args(rule("-D", port, cut))
                .status();
        }
    }
}

fn rule(action: &str, port: u16, cut: Cut) -> Vec<String> {
    let mut rule: Vec<String> = [action, "INPUT", "-i", "lo", "-p", "tcp", "--dport"]
        .iter()
        .map(|part| part.to_string())
        .collect();
    rule.push(port.to_string());
    rule.push("-j".into());
    rule.extend(cut.target().iter().map(|part| part.to_string()));
    rule
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
