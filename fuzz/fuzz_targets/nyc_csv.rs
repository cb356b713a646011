//! The city's 311 exports are read by the replay tests and the benchmark:
//! any file reads as rows and rejected rows with a reason, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = dispatch311_tests::nyc311::read_rows_from(data) {
        for row in &rows.requests {
            let _ = row.why_not_fileable();
            let _ = row.to_create_request("fuzz");
        }
    }
});
