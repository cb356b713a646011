//! The connection to Redis: one server, or a Redis Cluster.
//!
//! Both kinds reconnect by themselves, so a queue made while Redis is down
//! starts working when it comes back. On a cluster each command goes to the
//! master of its key's slot, and a failover (a replica promoted after its
//! master died) is followed: the commands of that moment fail with an error
//! the callers already retry (the outbox relay, the consumer loops).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::config::QueueConfig;
use crate::error::Result;

/// Commands fail within this long while a node cannot be reached, so callers
/// log and back off instead of hanging.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// What connections are made from.
pub(crate) enum RedisClient {
    Server(redis::Client),
    // boxed: the cluster client carries its node list and settings, many
    // times the size of a server client
    Cluster(Box<ClusterClient>),
}

/// A connection to the queue's Redis; cheap to clone (clones share it).
#[derive(Clone)]
pub(crate) enum RedisConnection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisClient {
    pub(crate) fn open(config: &QueueConfig) -> Result<Self> {
        Ok(if config.cluster {
            let nodes: Vec<&str> = config
                .redis_url
                .split(',')
                .map(str::trim)
                .filter(|node| !node.is_empty())
                .collect();
            Self::Cluster(Box::new(
                ClusterClient::builder(nodes)
                    .connection_timeout(CONNECTION_TIMEOUT)
                    // a failover takes the cluster's node timeout plus an election
                    // (a few seconds); the callers retry beyond that
                    .retries(4)
                    .build()?,
            ))
        } else {
            Self::Server(redis::Client::open(config.redis_url.as_str())?)
        })
    }

    /// A connection made on first use; `response_timeout` bounds each command.
    pub(crate) fn connect_lazy(&self, response_timeout: Duration) -> Result<RedisConnection> {
        Ok(match self {
            Self::Server(client) => {
                RedisConnection::Server(ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    ConnectionManagerConfig::new()
                        .set_response_timeout(Some(response_timeout))
                        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                        .set_number_of_retries(3)
                        .set_max_delay(Duration::from_secs(1)),
                )?)
            }
            Self::Cluster(client) => RedisConnection::Cluster(
                client.get_pending_async_connection_with_config(
                    ClusterConfig::new()
                        .set_connection_timeout(CONNECTION_TIMEOUT)
                        .set_response_timeout(response_timeout),
                ),
            ),
        })
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}
