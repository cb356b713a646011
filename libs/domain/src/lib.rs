//! Domain types shared by the dispatch311 services: service request numbers,
//! complaint type names, the city's bounds, status names and time
//! conversions. No I/O lives here.

pub mod address_columns;
pub mod bounds;
pub mod complaint_type;
pub mod distance;
pub mod duplicates;
pub mod event_log;
pub mod sr_number;
pub mod status;
pub mod time;

pub use bounds::CityBounds;
pub use sr_number::SrNumber;
pub mod jobs;
pub mod redact;
pub mod resolution;
pub mod settings;
