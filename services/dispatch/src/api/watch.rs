//! `WatchAssignments`: a unit's device keeps a stream open and receives every
//! change to the unit's assignment from the unit feed (see `feed`), resuming
//! after the last sequence it saw.
//!
//! Each stream reads the feed by sequence (`> last sent`), so it never skips
//! an entry: a unit's entries are written under the unit's row lock and
//! commit in sequence order. What makes a stream read again is a wake-up: one
//! `LISTEN unit_feed` connection per process fans the NOTIFY of every feed
//! write out to the streams (a stream ignores other units), and a poll every
//! two seconds covers notifications lost while that connection reconnects.
//!
//! Each message carries the job as it was when the change committed (a
//! snapshot the feed keeps, see migration 0004), so a replay after a
//! reconnection shows exactly what the live stream showed.
//!
//! With `after_sequence` 0 a stream starts with the unit's current assignment
//! (its latest ASSIGNED entry for the job it holds, and everything since); a
//! unit without a job gets only what happens from then on.
//!
//! A stream ends when the client goes away, with UNAVAILABLE when the server
//! shuts down (the device reconnects elsewhere with its last sequence), and
//! with UNAVAILABLE if the database fails mid-stream.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use dispatch311_domain::time::to_timestamp;
use dispatch311_grpc::status::{self as grpc_status, FieldViolations};
use dispatch311_proto::dispatch::v1::{self as dispatch};
use futures::Stream;
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use uuid::Uuid;

use super::validate;
use crate::{
    store::{JobKey, Store, StoreResult},
    store::{feed, units},
};

pub type AssignmentStream =
    Pin<Box<dyn Stream<Item = Result<dispatch::WatchAssignmentsResponse, Status>> + Send>>;

/// Longest a stream waits before reading the feed again without a wake-up.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Feed entries read per query.
const BATCH: i64 = 100;
/// Wake-ups buffered per stream; a stream that falls behind just reads again.
const WAKEUP_BUFFER: usize = 1024;
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(200);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct Watch {
    store: Store,
    hub: Arc<FeedHub>,
}

impl Watch {
    pub fn new(store: Store) -> Self {
        let (wakeups, _) = broadcast::channel(WAKEUP_BUFFER);
        let hub = FeedHub {
            pool: store.pool().clone(),
            wakeups,
            listening: AtomicBool::new(false),
            closing: CancellationToken::new(),
        };
        Self {
            store,
            hub: Arc::new(hub),
        }
    }

    /// Wraps the server's shutdown signal so that open streams end when it
    /// fires: a graceful shutdown waits for in-flight calls, and a watch
    /// never ends on its own.
    pub fn closing_on(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let closing = self.hub.closing.clone();
        async move {
            shutdown.await;
            closing.cancel();
        }
    }

    /// `officer`: the caller's badge when an officer watches (dispatchers and
    /// supervisors watch any unit).
    pub async fn watch_assignments(
        &self,
        request: dispatch::WatchAssignmentsRequest,
        officer: Option<&str>,
    ) -> Result<AssignmentStream, Status> {
        let mut v = FieldViolations::new();
        let unit_id = validate::uuid(&request.unit_id, "unit_id", &mut v);
        if request.after_sequence < 0 {
            v.add("after_sequence", "must not be negative");
        }
        v.into_result()?;
        let pool = self.store.pool();

        // whether `watcher` (an officer's badge, when an officer asks) crews the unit
        let crews = units::crewed_by(pool, unit_id, officer)
            .await
            .map_err(|e| dispatch311_grpc::status::storage(&e))?;
        match crews {
            None => return Err(grpc_status::not_found("unit", unit_id.to_string())),
            Some(false) => {
                return Err(grpc_status::permission_denied(
                    "an officer watches the assignments of their own unit only",
                ));
            }
            Some(true) => {}
        }

        // subscribe before the first read: a change committed after that read
        // wakes the stream
        let wakeups = self.hub.subscribe();
        let after = match request.after_sequence {
            0 => feed::start_of_current_assignment(pool, unit_id)
                .await
                .map_err(|e| dispatch311_grpc::status::storage(&e))?,
            after => after,
        };
        let (sender, receiver) = mpsc::channel(16);
        let stream = FeedStream {
            store: self.store.clone(),
            unit_id,
            after,
            wakeups,
            sender,
            closing: self.hub.closing.clone(),
        };
        tracing::info!(%unit_id, after_sequence = after, "unit watching its assignments");
        tokio::spawn(stream.run());
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }
}

/// The task behind one open stream.
struct FeedStream {
    store: Store,
    unit_id: Uuid,
    /// The last sequence sent (or the one to resume after).
    after: i64,
    wakeups: broadcast::Receiver<Uuid>,
    sender: mpsc::Sender<Result<dispatch::WatchAssignmentsResponse, Status>>,
    closing: CancellationToken,
}

impl FeedStream {
    async fn run(mut self) {
        loop {
            match self.send_new_entries().await {
                Ok(Sent::CaughtUp) => {}
                Ok(Sent::More) => continue,
                Ok(Sent::ClientGone) => break,
                Err(e) => {
                    tracing::warn!(unit_id = %self.unit_id, error = %e, "unit feed read failed; ending the stream");
                    let _ = self.sender.send(Err(Status::from(e))).await;
                    break;
                }
            }
            tokio::select! {
                _ = self.closing.cancelled() => {
                    let _ = self
                        .sender
                        .send(Err(Status::unavailable(
                            "dispatch is shutting down; reconnect with the last sequence received",
                        )))
                        .await;
                    break;
                }
                _ = self.sender.closed() => break,
                _ = woken(&mut self.wakeups, self.unit_id) => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        tracing::info!(unit_id = %self.unit_id, last_sequence = self.after, "unit stopped watching its assignments");
    }

    async fn send_new_entries(&mut self) -> StoreResult<Sent> {
        let entries = feed::read_feed(self.store.pool(), self.unit_id, self.after, BATCH).await?;
        let full = entries.len() as i64 == BATCH;
        for entry in entries {
            let job = match entry.job {
                Some(job) => Some(job),
                None => self.store.get(&JobKey::Id(entry.job_id)).await?,
            };
            let response = dispatch::WatchAssignmentsResponse {
                sequence: entry.sequence,
                change: entry.change as i32,
                job,
                occurred_at: Some(to_timestamp(entry.occurred_at)),
            };
            if self.sender.send(Ok(response)).await.is_err() {
                return Ok(Sent::ClientGone);
            }
            self.after = entry.sequence;
        }
        Ok(if full { Sent::More } else { Sent::CaughtUp })
    }
}

enum Sent {
    CaughtUp,
    /// A full batch went out: there may be more.
    More,
    ClientGone,
}

/// Resolves when the unit's feed may have a new entry.
async fn woken(wakeups: &mut broadcast::Receiver<Uuid>, unit_id: Uuid) {
    loop {
        match wakeups.recv().await {
            Ok(unit) if unit == unit_id => return,
            Ok(_) => {}
            // missed some wake-ups: one of them may have been ours
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            // no listener any more: the poll interval takes over
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// The process's one `LISTEN unit_feed` connection, started by the first
/// stream, fanning wake-ups out to every stream.
struct FeedHub {
    pool: PgPool,
    wakeups: broadcast::Sender<Uuid>,
    listening: AtomicBool,
    closing: CancellationToken,
}

impl FeedHub {
    fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        let receiver = self.wakeups.subscribe();
        if !self.listening.swap(true, Ordering::SeqCst) {
            tokio::spawn(listen(
                self.pool.clone(),
                self.wakeups.clone(),
                self.closing.clone(),
            ));
        }
        receiver
    }
}

async fn listen(pool: PgPool, wakeups: broadcast::Sender<Uuid>, closing: CancellationToken) {
    let mut backoff = LISTEN_BACKOFF_MIN;
    loop {
        let connected = tokio::select! {
            _ = closing.cancelled() => return,
            connected = connect_listener(&pool) => connected,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "cannot listen for unit feed changes; streams poll meanwhile");
                tokio::select! {
                    _ = closing.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
                continue;
            }
        };
        backoff = LISTEN_BACKOFF_MIN;
        loop {
            let received = tokio::select! {
                _ = closing.cancelled() => return,
                received = listener.recv() => received,
            };
            match received {
                Ok(notification) => {
                    if let Ok(unit_id) = Uuid::parse_str(notification.payload()) {
                        // no stream open is fine
                        let _ = wakeups.send(unit_id);
                    }
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the unit feed listener; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect_listener(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(feed::CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wakes(wakeups: &mut broadcast::Receiver<Uuid>, unit_id: Uuid) -> bool {
        tokio::time::timeout(Duration::from_millis(50), woken(wakeups, unit_id))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_stream_wakes_for_its_own_unit_only() {
        let (sender, mut wakeups) = broadcast::channel(8);
        let unit = Uuid::now_v7();
        sender.send(Uuid::now_v7()).unwrap();
        sender.send(Uuid::now_v7()).unwrap();
        assert!(!wakes(&mut wakeups, unit).await, "other units' changes");
        sender.send(Uuid::now_v7()).unwrap();
        sender.send(unit).unwrap();
        assert!(wakes(&mut wakeups, unit).await);
    }

    #[tokio::test]
    async fn a_stream_that_missed_wake_ups_reads_again() {
        let (sender, mut wakeups) = broadcast::channel(2);
        let unit = Uuid::now_v7();
        for _ in 0..5 {
            sender.send(Uuid::now_v7()).unwrap();
        }
        assert!(
            wakes(&mut wakeups, unit).await,
            "one of the lost wake-ups may have been for this unit"
        );
    }

    #[tokio::test]
    async fn without_a_listener_a_stream_waits_for_its_poll() {
        let (sender, mut wakeups) = broadcast::channel::<Uuid>(2);
        drop(sender);
        assert!(!wakes(&mut wakeups, Uuid::now_v7()).await);
    }
}
