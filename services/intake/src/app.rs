//! Wires intake together: database, queue, outbox relay, status-update and
//! retention-sweep consumers, reconciler and the gRPC server; runs until told
//! to stop.

use std::{future::Future, sync::Arc, time::Duration};

use dispatch311_domain::jobs::{groups, queues};
use dispatch311_grpc::startup::{Api, Foundations, Server, Started};
use dispatch311_proto::intake::v1::intake_service_server::IntakeServiceServer;
use dispatch311_queue::{JobQueue, outbox::OutboxRelay};
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};

use crate::{
    api::IntakeApi,
    complainant_questions::ComplainantQuestionHandler,
    config::IntakeConfig,
    contact_crypto,
    retention::RetentionSweepHandler,
    status_updates::StatusUpdateHandler,
    store::{RetentionPolicy, Store},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    server: Server,
    photos: dispatch311_photos::PhotoStore,
    store: Store,
    queue: JobQueue,
    config: IntakeConfig,
}

impl Application {
    /// Connects to PostgreSQL (applying migrations) and Redis, and binds the
    /// listener, so `port()` is known before serving.
    pub async fn build(config: IntakeConfig) -> anyhow::Result<Self> {
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
        let store = checked_store(pool, &config).await?;
        let photos = config.photos.open()?;
        tracing::info!(photo_store = photos.location(), "photo store");
        Ok(Self {
            server,
            photos,
            store,
            queue,
            config,
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
        let consumer = self.queue.consumer(queues::STATUS, groups::INTAKE)?;
        let handler = Arc::new(StatusUpdateHandler::new(self.store.clone()));
        workers.spawn(
            "status update consumer",
            consumer.run(handler, workers.stop_token()),
        );
        let consumer = self
            .queue
            .consumer(queues::COMPLAINANT_QUESTIONS, groups::INTAKE)?;
        workers.spawn(
            "complainant question consumer",
            consumer.run(
                Arc::new(ComplainantQuestionHandler::new(self.store.clone())),
                workers.stop_token(),
            ),
        );
        let consumer = self.queue.consumer(queues::RETENTION, groups::INTAKE)?;
        let handler = Arc::new(RetentionSweepHandler::new(
            self.store.clone(),
            self.config.retention,
            self.photos.clone(),
        ));
        workers.spawn(
            "retention sweep consumer",
            consumer.run(handler, workers.stop_token()),
        );
        workers.spawn(
            "reconciler",
            reconcile(
                self.store.clone(),
                self.config.reconcile_after,
                self.config.retention,
                workers.stop_token(),
            ),
        );

        let api = IntakeApi::new(
            self.store.clone(),
            self.config.city_bounds,
            relay_wakeup,
            self.photos.clone(),
        );
        // a photo upload is up to 5 MiB of bytes plus framing
        let routes = Routes::new(
            IntakeServiceServer::new(api)
                .max_decoding_message_size(dispatch311_photos::MAX_PHOTO_BYTES + 64 * 1024),
        );
        tracing::info!(port = self.port(), "intake serving");
        let api = Api {
            routes,
            names: vec![<IntakeServiceServer<IntakeApi> as NamedService>::NAME],
        };
        self.server.serve(api, workers, shutdown).await
    }
}

/// Connects to PostgreSQL and applies the migrations (for the command-line
/// tasks; the service starts through `Foundations`), then [`checked_store`].
pub(crate) async fn open_store(config: &IntakeConfig) -> anyhow::Result<Store> {
    let pool = dispatch311_grpc::startup::database(&config.service.db, &MIGRATOR).await?;
    checked_store(pool, config).await
}

/// The store on `pool`, once the configured contact keys are known to open
/// every stored contact: a key removed too early stops the start rather than
/// failing each release later.
async fn checked_store(pool: sqlx::PgPool, config: &IntakeConfig) -> anyhow::Result<Store> {
    let cipher = &config.contact_cipher;
    let store = Store::new(pool, cipher.clone());
    let stored = store.contact_key_ids().await?;
    let missing: Vec<&str> = stored
        .iter()
        .map(String::as_str)
        .filter(|id| !cipher.has_key(id))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "complainant contacts are sealed under key ids {} that {} does not hold: \
         keep those keys (after the current one) until `dispatch311-intake rekey` has re-sealed them",
        missing.join(", "),
        contact_crypto::KEYS_VAR
    );
    let older: Vec<&str> = stored
        .iter()
        .map(String::as_str)
        .filter(|id| *id != cipher.current_key_id())
        .collect();
    if !older.is_empty() {
        tracing::warn!(
            current_key_id = cipher.current_key_id(),
            older_key_ids = %older.join(","),
            "some complainant contacts are sealed under older keys: run `dispatch311-intake rekey`"
        );
    }
    Ok(store)
}

/// Re-publishes route jobs of requests stuck before routing or queueing,
/// which is how requests survive the loss of every key in Redis; and keeps a
/// retention sweep scheduled.
async fn reconcile(
    store: Store,
    after: Duration,
    retention: RetentionPolicy,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let period = (after / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
    // a sweep job may sit unclaimed this long after a crash before it is overdue
    let grace = chrono::Duration::seconds(60);
    loop {
        match store
            .arm_retention(&retention, grace, chrono::Utc::now())
            .await
        {
            Ok(true) => tracing::info!("no retention sweep was pending: scheduled one"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "checking the retention schedule failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(period) => {}
        }
        let older_than = chrono::Utc::now() - after;
        match store.republish_stuck(older_than, 500).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                count = n,
                "re-published route jobs of requests stuck before dispatch"
            ),
            Err(e) => tracing::warn!(error = %e, "reconciler pass failed"),
        }
    }
}
