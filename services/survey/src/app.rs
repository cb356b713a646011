//! Wires the survey service together: database, `closed` consumer, outbox
//! relay for reopen requests, the intake client and the gRPC server; runs
//! until told to stop.

use std::{future::Future, sync::Arc, time::Duration};

use dispatch311_domain::jobs::{groups, queues};
use dispatch311_grpc::startup::{Api, Foundations, Server, Started};
use dispatch311_proto::survey::v1::survey_service_server::SurveyServiceServer;
use dispatch311_queue::{JobQueue, outbox::OutboxRelay};
use tonic::{server::NamedService, service::Routes};

use crate::{
    api::SurveyApi, closed_events::ClosedEventHandler, config::SurveyConfig,
    contact::ContactSource, store::Store,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    server: Server,
    store: Store,
    queue: JobQueue,
    contacts: ContactSource,
    token_ttl: Duration,
    token_purge_after: Duration,
    purge_every: Duration,
}

impl Application {
    /// Connects to PostgreSQL (applying migrations) and Redis, and binds the
    /// listener, so `port()` is known before serving. Intake is reached on
    /// first use: the service starts without it.
    pub async fn build(config: SurveyConfig) -> anyhow::Result<Self> {
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
        let contacts =
            ContactSource::connect_lazy(&config.intake_url, config.service.tls.as_ref())?;
        Ok(Self {
            server,
            store: Store::new(pool),
            queue,
            contacts,
            token_ttl: config.token_ttl,
            token_purge_after: config.token_purge_after,
            purge_every: config.purge_every,
        })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serves until `shutdown` resolves, then stops taking requests, lets
    /// in-flight RPCs and jobs finish, and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut workers = dispatch311_grpc::Workers::new();
        let relay = OutboxRelay::new(self.store.pool().clone(), self.queue.clone());
        let relay_wakeup = relay.notifier();
        workers.spawn("outbox relay", relay.run(workers.stop_token()));
        let consumer = self.queue.consumer(queues::CLOSED, groups::SURVEY)?;
        let handler = Arc::new(ClosedEventHandler::new(self.store.clone()));
        workers.spawn(
            "closed event consumer",
            consumer.run(handler, workers.stop_token()),
        );

        workers.spawn(
            "expired token purge",
            purge_expired_tokens(
                self.store.clone(),
                self.token_purge_after,
                self.purge_every,
                workers.stop_token(),
            ),
        );

        let api = SurveyApi {
            store: self.store.clone(),
            contacts: self.contacts.clone(),
            token_ttl: self.token_ttl,
            relay_wakeup,
        };
        let routes = Routes::new(SurveyServiceServer::new(api));
        tracing::info!(port = self.port(), "survey serving");
        let api = Api {
            routes,
            names: vec![<SurveyServiceServer<SurveyApi> as NamedService>::NAME],
        };
        self.server.serve(api, workers, shutdown).await
    }
}

/// Deletes unused expired tokens' hashes every `every`, `after` past their expiry.
async fn purge_expired_tokens(
    store: Store,
    after: Duration,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = ticks.tick() => {}
        }
        // a purge age too large for the calendar purges nothing
        let before = chrono::Duration::from_std(after)
            .ok()
            .and_then(|after| chrono::Utc::now().checked_sub_signed(after))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        match store.purge_expired_tokens(before).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired survey tokens purged"),
            Err(error) => tracing::warn!(%error, "purging expired survey tokens failed"),
        }
    }
}
