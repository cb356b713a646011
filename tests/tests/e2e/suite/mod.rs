mod crash;
mod flow;
mod metrics;
mod mutual_tls;
mod redis_loss;
mod replay;
mod settings;
mod trace;
