//! Differential test: every scan in `corpus/scans.toml` (real-world shapes of pharmacy, fresh
//! food, logistics and retail codes, each with the reading an independent GS1 parser or the
//! specifications give) must read exactly so through `classify`, `read_element_string` and
//! `parse_element_string`. A disagreement names the scan and both readings.

use kassa_drivers::Scan;
use kassa_drivers::gs1::{
    Gs1Error, Gs1Problem, Gs1Reading, parse_element_string, read_element_string,
};
use kassa_drivers::scanner::{classify, split_aim};
use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    scan: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    note: String,
    data: String,
    /// `product`, `text` (no product code) or `unknown` (a product symbology naming no product).
    kind: String,
    gtin: Option<String>,
    addon: Option<String>,
    /// For text and unknown scans: the text the scan carries.
    text: Option<String>,
    /// For GS1 element strings: whether a strict parse accepts it (`ok` / `error`).
    strict: Option<String>,
    /// `"AI value"` for every valid field.
    fields: Option<Vec<String>>,
    /// `"offset Kind(AI)"` (`"offset UnknownAi"`) for every part left out.
    problems: Option<Vec<String>>,
    #[allow(dead_code)]
    oracle: String,
}

fn problem_key(p: &Gs1Problem) -> String {
    let kind = match &p.error {
        Gs1Error::UnknownAi(_) => return format!("{} UnknownAi", p.at),
        Gs1Error::Empty => return "0 Empty".into(),
        Gs1Error::Truncated(ai) => ("Truncated", ai),
        Gs1Error::TooLong(ai) => ("TooLong", ai),
        Gs1Error::NotNumeric(ai) => ("NotNumeric", ai),
        Gs1Error::CheckDigit(ai) => ("CheckDigit", ai),
        Gs1Error::BadDate(ai) => ("BadDate", ai),
        Gs1Error::BadCharacter(ai) => ("BadCharacter", ai),
        Gs1Error::Invalid(ai, _) => ("Invalid", ai),
    };
    format!("{} {}({})", p.at, kind.0, kind.1)
}

fn field_keys(reading_fields: &[kassa_drivers::gs1::Gs1Field]) -> Vec<String> {
    reading_fields
        .iter()
        .map(|f| format!("{} {}", f.ai, f.value))
        .collect()
}

/// What went wrong with one entry, if anything.
fn disagreement(e: &Entry) -> Option<String> {
    let frame = e.data.as_bytes();
    let scan = classify(frame);
    let mut wrong = Vec::new();
    match (&scan, e.kind.as_str()) {
        (
            Scan::Product {
                gtin,
                addon,
                fields,
                problems,
                ..
            },
            "product",
        ) => {
            if Some(gtin) != e.gtin.as_ref() {
                wrong.push(format!("gtin {gtin} (want {:?})", e.gtin));
            }
            if addon != &e.addon {
                wrong.push(format!("add-on {addon:?} (want {:?})", e.addon));
            }
            if e.strict.is_some() {
                let (got_f, got_p) = (
                    field_keys(fields),
                    problems.iter().map(problem_key).collect::<Vec<_>>(),
                );
                if Some(&got_f) != e.fields.as_ref() {
                    wrong.push(format!("fields {got_f:?} (want {:?})", e.fields));
                }
                if Some(&got_p) != e.problems.as_ref() {
                    wrong.push(format!("problems {got_p:?} (want {:?})", e.problems));
                }
            }
        }
        (Scan::Text { text, .. }, "text") | (Scan::Unknown(text), "unknown") => {
            if e.text.as_ref().is_some_and(|want| want != text) {
                wrong.push(format!("text {text:?} (want {:?})", e.text));
            }
        }
        (other, want) => wrong.push(format!("read as {other:?}, want {want}")),
    }
    if let Some(strict) = &e.strict {
        let (_, data) = split_aim(frame);
        let reading: Gs1Reading = read_element_string(data);
        let fields = field_keys(&reading.fields);
        let problems: Vec<_> = reading.problems.iter().map(problem_key).collect();
        if Some(&fields) != e.fields.as_ref() || Some(&problems) != e.problems.as_ref() {
            wrong.push(format!("element string read as {fields:?} {problems:?}"));
        }
        let parsed = parse_element_string(data);
        match (strict.as_str(), &parsed) {
            ("ok", Ok(f)) if Some(&field_keys(f)) == e.fields.as_ref() => {}
            ("error", Err(_)) => {}
            _ => wrong.push(format!("strict parse {parsed:?}, want {strict}")),
        }
    }
    (!wrong.is_empty()).then(|| format!("{} ({:?}): {}", e.note, e.data, wrong.join("; ")))
}

#[test]
fn every_scan_in_the_corpus_reads_as_expected() {
    let corpus: Corpus =
        toml::from_str(include_str!("corpus/scans.toml")).expect("corpus/scans.toml reads");
    // The corpus is the test's substance: losing entries must not pass silently.
    assert!(corpus.scan.len() >= 140, "{} scans", corpus.scan.len());
    let wrong: Vec<String> = corpus.scan.iter().filter_map(disagreement).collect();
    assert!(
        wrong.is_empty(),
        "{} of {} scans read wrongly:\n{}",
        wrong.len(),
        corpus.scan.len(),
        wrong.join("\n")
    );
}
