//! Wires routing together: rules and precinct map, database, route-job
//! consumer, outbox relay and the gRPC server; runs until told to stop.

use std::{future::Future, sync::Arc};

use dispatch311_domain::jobs::{groups, queues};
use dispatch311_grpc::startup::{Api, Foundations, Server, Started};
use dispatch311_proto::routing::v1::routing_service_server::RoutingServiceServer;
use dispatch311_queue::{JobQueue, outbox::OutboxRelay};
use tonic::{server::NamedService, service::Routes};

use crate::{
    Router, api::RoutingApi, config::RoutingConfig, route_jobs::RouteJobHandler, store::Store,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    server: Server,
    router: Arc<Router>,
    store: Store,
    queue: JobQueue,
}

impl Application {
    pub async fn build(config: RoutingConfig) -> anyhow::Result<Self> {
        let router = Arc::new(Router::load(
            config.rules_path.as_deref(),
            config.precinct_map_path.as_deref(),
        )?);
        tracing::info!(
            rules = router.rules.len(),
            precincts = router.precincts.len(),
            "routing table loaded"
        );
        let Started {
            pool,
            queue,
            server,
        } = Foundations {
            settings: &config.service,
            migrations: &MIGRATOR,
            listen_addr: config.listen_addr,
        }
        .start()
        .await?;
        Ok(Self {
            server,
            router,
            store: Store::new(pool),
            queue,
        })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut workers = dispatch311_grpc::Workers::new();
        let relay = OutboxRelay::new(self.store.pool().clone(), self.queue.clone());
        let handler =
            RouteJobHandler::new(self.router.clone(), self.store.clone(), relay.notifier());
        workers.spawn("outbox relay", relay.run(workers.stop_token()));
        let consumer = self.queue.consumer(queues::ROUTE, groups::ROUTING)?;
        workers.spawn(
            "route job consumer",
            consumer.run(Arc::new(handler), workers.stop_token()),
        );

        let routes = Routes::new(RoutingServiceServer::new(RoutingApi::new(
            self.router.clone(),
            self.store.clone(),
        )));
        tracing::info!(port = self.port(), "routing serving");
        let api = Api {
            routes,
            names: vec![<RoutingServiceServer<RoutingApi> as NamedService>::NAME],
        };
        self.server.serve(api, workers, shutdown).await
    }
}
