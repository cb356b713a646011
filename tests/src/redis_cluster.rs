//! A real Redis Cluster on loopback for the tests: six `redis-server`
//! processes in cluster mode (three masters, a replica each), joined by
//! `redis-cli --cluster create`. The processes are killed when it is dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::suite::eventually;

/// Milliseconds a node may be unreachable before the cluster fails it over:
/// short, so a test's failover takes a couple of seconds.
const NODE_TIMEOUT_MS: u64 = 1_000;

pub struct RedisCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

struct Node {
    port: u16,
    process: Option<Child>,
}

impl RedisCluster {
    /// Starts six nodes on free loopback ports and waits until the cluster
    /// serves every slot.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir()
            .join("dispatch311-tests")
            .join(format!("redis-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut cluster = Self {
            dir,
            nodes: Vec::new(),
        };
        for port in free_cluster_ports(6)? {
            let process = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                // a replica's first sync starts at once, not after 5 s
                .args(["--repl-diskless-sync-delay", "0"])
                .args(["--dir", &cluster.dir.display().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("redis-server (Debian's redis-server package) runs the cluster")?;
            cluster.nodes.push(Node {
                port,
                process: Some(process),
            });
        }
        for node in &cluster.nodes {
            let url = format!("redis://127.0.0.1:{}", node.port);
            eventually(Duration::from_secs(10), "a cluster node to answer", || {
                let url = url.clone();
                async move { Ok(ping(&url).await.ok()) }
            })
            .await?;
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let created = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .context("redis-cli creates the cluster")?;
        if !created.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&created.stdout)
            );
        }
        cluster.wait_until_healthy().await?;
        Ok(cluster)
    }

    /// `REDIS_URL` for the services: every master the cluster started with
    /// (a client discovers the rest, and needs one of these to answer).
    pub fn redis_url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("redis://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Port of the master currently serving `hash_tag`'s slot (e.g. the
    /// `dispatch` of `dispatch311:{dispatch}:stream`).
    pub async fn master_of(&self, hash_tag: &str) -> anyhow::Result<u16> {
        let mut connection = self.any_live_connection().await?;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(format!("{{{hash_tag}}}"))
            .query_async(&mut connection)
            .await?;
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut connection)
            .await?;
        master_serving(&nodes, slot).with_context(|| format!("no master serves slot {slot}"))
    }

    /// Kills the master serving `hash_tag` (SIGKILL, as a crashed host) and
    /// waits until its replica has taken over and the cluster serves every
    /// slot again; returns the dead master's port and how long the slot had
    /// no master.
    pub async fn fail_master_of(&mut self, hash_tag: &str) -> anyhow::Result<(u16, Duration)> {
        let master = self.master_of(hash_tag).await?;
        let killed_at = std::time::Instant::now();
        self.kill(master)?;
        eventually(
            Duration::from_secs(30),
            "a replica to take over the dead master's slots",
            || async {
                Ok(match self.master_of(hash_tag).await {
                    Ok(port) if port != master => Some(()),
                    _ => None,
                })
            },
        )
        .await?;
        let outage = killed_at.elapsed();
        self.wait_until_healthy().await?;
        Ok((master, outage))
    }

    /// Kills the node on `port` at once (SIGKILL), as a crashed host.
    pub fn kill(&mut self, port: u16) -> anyhow::Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .with_context(|| format!("no node on port {port}"))?;
        if let Some(mut process) = node.process.take() {
            process.kill()?;
            process.wait()?;
        }
        Ok(())
    }

    /// Waits until the live nodes agree the cluster serves every slot (after a
    /// failover: a replica was promoted in its dead master's place) and every
    /// live replica is in sync with its master.
    pub async fn wait_until_healthy(&self) -> anyhow::Result<()> {
        let live: Vec<String> = self
            .nodes
            .iter()
            .filter(|node| node.process.is_some())
            .map(|node| format!("redis://127.0.0.1:{}", node.port))
            .collect();
        eventually(
            Duration::from_secs(30),
            "the Redis Cluster to serve every slot",
            || {
                let live = live.clone();
                async move {
                    for url in &live {
                        let client = redis::Client::open(url.as_str())?;
                        let mut connection = client.get_multiplexed_async_connection().await?;
                        let info: String = redis::cmd("CLUSTER")
                            .arg("INFO")
                            .query_async(&mut connection)
                            .await?;
                        if !info.contains("cluster_state:ok")
                            || !info.contains("cluster_slots_ok:16384")
                        {
                            return Ok(None);
                        }
                        // a replica that never synced cannot take over
                        let replication: String = redis::cmd("INFO")
                            .arg("replication")
                            .query_async(&mut connection)
                            .await?;
                        if replication.contains("role:slave")
                            && !replication.contains("master_link_status:up")
                        {
                            return Ok(None);
                        }
                    }
                    Ok(Some(()))
                }
            },
        )
        .await
    }

    async fn any_live_connection(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        for node in self.nodes.iter().filter(|node| node.process.is_some()) {
            let client = redis::Client::open(format!("redis://127.0.0.1:{}", node.port))?;
            if let Ok(connection) = client.get_multiplexed_async_connection().await {
                return Ok(connection);
            }
        }
        bail!("no node of the cluster answers")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn ping(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    redis::cmd("PING")
        .query_async::<()>(&mut connection)
        .await?;
    Ok(())
}

/// `count` ports each free together with its cluster bus port (port + 10000).
fn free_cluster_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let mut ports = Vec::new();
    for _ in 0..200 {
        if ports.len() == count {
            break;
        }
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 10_000) as u16;
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if !ports.contains(&port) && free(port) && free(port + 10_000) {
            ports.push(port);
        }
    }
    if ports.len() < count {
        bail!("found only {} free port pairs for the cluster", ports.len());
    }
    Ok(ports)
}

/// The port of the master whose slot ranges in `CLUSTER NODES` hold `slot`.
fn master_serving(nodes: &str, slot: u16) -> Option<u16> {
    nodes.lines().find_map(|line| {
        // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(2)?;
        if !flags.split(',').any(|flag| flag == "master") || flags.contains("fail") {
            return None;
        }
        let serves = fields.iter().skip(8).any(|range| {
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            match (first.parse::<u16>(), last.parse::<u16>()) {
                (Ok(first), Ok(last)) => (first..=last).contains(&slot),
                _ => false,
            }
        });
        if !serves {
            return None;
        }
        let address = fields.get(1)?.split('@').next()?;
        address.rsplit(':').next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::master_serving;

    #[test]
    fn finds_the_live_master_of_a_slot() {
        let nodes = "\
a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected 5461-10922
c 127.0.0.1:7004@17004 master - 0 0 7 connected 5461-10922
d 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383
e 127.0.0.1:7003@17003 slave a 0 0 1 connected
";
        assert_eq!(master_serving(nodes, 0), Some(7000));
        assert_eq!(master_serving(nodes, 6000), Some(7004));
        assert_eq!(master_serving(nodes, 16383), Some(7002));
    }
}
