//! Complainants' photos. Intake accepts JPEG and PNG uploads, decides the
//! type from the bytes (never a name), strips every piece of metadata (EXIF
//! with its GPS position and device, XMP, comments, text chunks, embedded
//! profiles) without re-encoding the picture, and keeps the result in the
//! photo store; dispatch reads it from there for responders.

pub mod samples;
mod sanitize;
mod store;

pub use sanitize::{MAX_PHOTO_BYTES, PhotoError, Sanitized, sanitize};
pub use store::{PhotoStore, PhotoStoreArgs, PhotoStoreError};
