//! Wires the survey service: for now its gRPC server with health and
//! reflection; the closed-request store and its consumer come with surveys.

use std::future::Future;

use dispatch311_proto::survey::v1::survey_service_server::SurveyServiceServer;
use tokio::net::TcpListener;
use tonic::{server::NamedService, service::Routes};

use crate::{api::SurveyApi, config::SurveyConfig};

pub struct Application {
    listener: TcpListener,
}

impl Application {
    pub async fn build(config: SurveyConfig) -> anyhow::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(config.listen_addr).await?,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let routes = Routes::new(SurveyServiceServer::new(SurveyApi));
        tracing::info!(port = self.port(), "survey serving");
        let names = [<SurveyServiceServer<SurveyApi> as NamedService>::NAME];
        dispatch311_grpc::serve_with_workers(
            self.listener,
            routes,
            &names,
            shutdown,
            dispatch311_grpc::Workers::new(),
        )
        .await
    }
}
