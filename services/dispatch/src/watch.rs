//! `WatchAssignments`: a unit's device keeps a stream open and receives every
//! change to the unit's assignment from the unit feed (see `feed`), resuming
//! after the last sequence it saw.

use std::pin::Pin;

use dispatch311_proto::dispatch::v1 as dispatch;
use futures::Stream;
use tonic::Status;

use crate::store::Store;

pub type AssignmentStream =
    Pin<Box<dyn Stream<Item = Result<dispatch::WatchAssignmentsResponse, Status>> + Send>>;

pub struct Watch {
    pub store: Store,
}

impl Watch {
    pub async fn watch_assignments(
        &self,
        _request: dispatch::WatchAssignmentsRequest,
    ) -> Result<AssignmentStream, Status> {
        Err(Status::unimplemented("watch_assignments is not built yet"))
    }
}
