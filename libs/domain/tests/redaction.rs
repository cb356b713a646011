//! The redactor against a corpus of real-looking obfuscated contact details
//! (each must go) and ordinary complaint text (each must stay exactly), and
//! against every free-text field of the real NYC 311 data, which holds no
//! contact details: whatever it changes there is a false positive.

use std::path::PathBuf;

use dispatch311_domain::redact::for_responders;

const CORPUS: &str = include_str!("redaction-corpus.tsv");

#[test]
fn every_obfuscated_contact_goes_and_every_ordinary_text_stays() {
    let (mut redacted, mut kept) = (0, 0);
    let mut failures = Vec::new();
    for (number, line) in CORPUS.lines().enumerate() {
        let line_number = number + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["REDACT", name, text, secrets] => {
                let out = for_responders(text, name);
                // the marker itself is no leak, whatever names it contains ("Ted")
                let lower = out.replace("[redacted]", "\u{2588}").to_lowercase();
                for secret in secrets.split('|').filter(|s| !s.is_empty()) {
                    if lower.contains(&secret.to_lowercase()) {
                        failures.push(format!("line {line_number}: {secret:?} left in {out:?}"));
                    }
                }
                redacted += 1;
            }
            ["KEEP", name, text] => {
                let out = for_responders(text, name);
                if out != *text {
                    failures.push(format!("line {line_number}: {text:?} became {out:?}"));
                }
                kept += 1;
            }
            _ => panic!("line {line_number} of the corpus is not REDACT or KEEP: {line:?}"),
        }
    }
    assert!(
        redacted >= 100 && kept >= 100,
        "{redacted} REDACT and {kept} KEEP cases"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn data_file(relative: &str) -> Option<PathBuf> {
    let data_dir = std::env::var_os("DISPATCH311_DATA_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
            PathBuf::from,
        );
    let path = data_dir.join(relative);
    if path.is_file() {
        return Some(path);
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED: real data file {} is missing !!!!!!!!\n",
        path.display()
    );
    None
}

/// The real data's free text: what the police wrote when closing, descriptors,
/// addresses, landmarks. Public records, so none of it is a contact detail.
#[test]
fn the_false_positive_rate_on_the_real_311_text_is_below_one_in_a_thousand() {
    let Some(path) = data_file("nyc311/service-requests-2023-02-28.csv") else {
        return;
    };
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let columns: Vec<usize> = [
        "Resolution Description",
        "Descriptor",
        "Incident Address",
        "Street Name",
        "Cross Street 1",
        "Cross Street 2",
        "Landmark",
        "Location Type",
    ]
    .iter()
    .map(|name| header.iter().position(|h| h == *name).unwrap())
    .collect();
    // the city's own texts give its phone numbers ("212-639-9675"): taking
    // those out is the redactor doing its job, not a false positive
    let phone = regex::Regex::new(r"\(?\d{3}\)?[-. ]{0,3}\d{3}[-. ]{0,3}\d{4}").unwrap();
    let (mut texts, mut changed, mut phones) = (0_u32, Vec::new(), 0_u32);
    for record in reader.records() {
        let record = record.unwrap();
        for &column in &columns {
            let text = &record[column];
            if text.trim().is_empty() {
                continue;
            }
            texts += 1;
            let out = for_responders(text, "");
            if out == text {
                continue;
            }
            if for_responders(&phone.replace_all(text, "[redacted]"), "")
                == phone.replace_all(text, "[redacted]")
            {
                phones += 1;
                continue;
            }
            changed.push(format!("{text:?} -> {out:?}"));
        }
    }
    let rate = changed.len() as f64 / f64::from(texts);
    eprintln!(
        "redaction on the real 311 text: {} of {texts} texts changed wrongly ({:.3}%); \
         {phones} more had a phone number of the city's taken out",
        changed.len(),
        rate * 100.0
    );
    for change in &changed {
        eprintln!("  changed: {change}");
    }
    assert!(texts > 10_000, "only {texts} texts read");
    assert!(rate < 0.001, "false-positive rate {:.3}%", rate * 100.0);
}
