//! Generated protobuf and gRPC code for every dispatch311 API, compiled once
//! for the whole workspace.

/// Types shared by every API.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("dispatch311.common.v1");
    }
}

/// Messages carried on the Redis job queue.
pub mod jobs {
    pub mod v1 {
        tonic::include_proto!("dispatch311.jobs.v1");
    }
}

pub mod intake {
    pub mod v1 {
        tonic::include_proto!("dispatch311.intake.v1");
    }
}

pub mod routing {
    pub mod v1 {
        tonic::include_proto!("dispatch311.routing.v1");
    }
}

pub mod dispatch {
    pub mod v1 {
        tonic::include_proto!("dispatch311.dispatch.v1");
    }
}

pub mod survey {
    pub mod v1 {
        tonic::include_proto!("dispatch311.survey.v1");
    }
}

/// Descriptor set of every dispatch311 proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("dispatch311_descriptor");

/// Conversions between protobuf timestamps and chrono-free std/epoch values
/// live in the domain crate; this crate stays generated code only.
pub use prost_types::Timestamp;
