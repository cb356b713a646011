//! Wires dispatch together: database, queue consumers (dispatch jobs, timers,
//! reopen requests), outbox relay and the gRPC server; runs until told to stop.

use std::{future::Future, sync::Arc};

use dispatch311_domain::jobs::{groups, queues};
use dispatch311_grpc::startup::{Api, Foundations, Server, Started};
use dispatch311_proto::dispatch::v1::dispatch_service_server::DispatchServiceServer;
use dispatch311_queue::{JobQueue, outbox::OutboxRelay};
use tonic::{server::NamedService, service::Routes};

use crate::{
    api::DispatchApi,
    api::{supervision::Supervision, watch::Watch},
    checkpoints::Checkpointer,
    complainant_answers::ComplainantAnswerHandler,
    config::{DispatchConfig, DispatchRules},
    dispatch_jobs::DispatchJobHandler,
    jobs::lifecycle::Lifecycle,
    reopen_requests::ReopenRequestHandler,
    store::Store,
    timers::{TimerHandler, TimerReconciler},
    units::Units,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct Application {
    server: Server,
    photos: dispatch311_photos::PhotoStore,
    store: Store,
    queue: JobQueue,
    rules: DispatchRules,
    checkpoints: Arc<Checkpointer>,
    timer_reconcile: std::time::Duration,
}

impl Application {
    pub async fn build(config: DispatchConfig) -> anyhow::Result<Self> {
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
        let photos = config.photos.open()?;
        tracing::info!(photo_store = photos.location(), "photo store");
        let checkpoints = Arc::new(Checkpointer::new(
            pool.clone(),
            photos.clone(),
            &config.event_log,
        ));
        Ok(Self {
            server,
            checkpoints,
            timer_reconcile: config.timer_reconcile,
            photos,
            store: Store::new(pool).with_sla_override(config.rules.sla_override),
            queue,
            rules: config.rules,
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
        let relay_wakeup = relay.notifier();
        let lifecycle = Lifecycle {
            store: self.store.clone(),
            rules: self.rules.clone(),
            relay_wakeup: relay_wakeup.clone(),
            photos: self.photos.clone(),
        };
        let handler = DispatchJobHandler::new(self.store.clone(), lifecycle.clone());
        workers.spawn("outbox relay", relay.run(workers.stop_token()));
        workers.spawn(
            "event log checkpointer",
            Arc::clone(&self.checkpoints).run(workers.stop_token()),
        );
        let consumer = self.queue.consumer(queues::DISPATCH, groups::DISPATCH)?;
        workers.spawn(
            "dispatch job consumer",
            consumer.run(Arc::new(handler), workers.stop_token()),
        );

        let timers = self
            .queue
            .consumer(queues::DISPATCH_TIMERS, groups::DISPATCH)?;
        workers.spawn(
            "timer reconciler",
            TimerReconciler {
                store: self.store.clone(),
                queue: self.queue.clone(),
                rules: self.rules.clone(),
                interval: self.timer_reconcile,
                relay_wakeup: relay_wakeup.clone(),
            }
            .run(workers.stop_token()),
        );
        let timer_handler = TimerHandler {
            store: self.store.clone(),
            rules: self.rules.clone(),
            relay_wakeup: relay_wakeup.clone(),
        };
        workers.spawn(
            "timer consumer",
            timers.run(Arc::new(timer_handler), workers.stop_token()),
        );

        let answers = self
            .queue
            .consumer(queues::COMPLAINANT_ANSWERS, groups::DISPATCH)?;
        workers.spawn(
            "complainant answer consumer",
            answers.run(
                Arc::new(ComplainantAnswerHandler::new(lifecycle.clone())),
                workers.stop_token(),
            ),
        );

        let reopens = self.queue.consumer(queues::REOPEN, groups::DISPATCH)?;
        workers.spawn(
            "reopen request consumer",
            reopens.run(
                Arc::new(ReopenRequestHandler::new(lifecycle.clone())),
                workers.stop_token(),
            ),
        );

        let watch = Watch::new(self.store.clone());
        // open assignment streams end when the server starts shutting down
        let shutdown = watch.closing_on(shutdown);
        let api = DispatchApi {
            store: self.store.clone(),
            units: Units {
                store: self.store.clone(),
                lifecycle: lifecycle.clone(),
            },
            lifecycle,
            supervision: Supervision {
                store: self.store.clone(),
                checkpoints: Arc::clone(&self.checkpoints),
            },
            watch,
        };
        let routes = Routes::new(DispatchServiceServer::new(api));
        tracing::info!(port = self.port(), "dispatch serving");
        let api = Api {
            routes,
            names: vec![<DispatchServiceServer<DispatchApi> as NamedService>::NAME],
        };
        self.server.serve(api, workers, shutdown).await
    }
}
