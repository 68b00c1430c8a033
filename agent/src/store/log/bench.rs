//! The log's benchmark on a year of history (1,000,000 journal rows from a seeded generator):
//! filtered page queries, a day close and a 100,000-row CSV export. Not a test of speed; run with
//! `cargo test --release -p kassa-agent --no-default-features --lib bench_log -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::generated::{self, OPERATORS};
use super::tests::start;
use super::{LogFilter, LogKind, MAX_PAGE};
use crate::export::{ExportFormat, LogWriter};
use crate::store::Db;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn bench_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    // KASSA_BENCH_DB=/path/new.db keeps the loaded database for looking at query plans afterwards.
    let path = std::env::var_os("KASSA_BENCH_DB")
        .map_or_else(|| dir.path().join("k.db"), std::path::PathBuf::from);
    let mut db = Db::open(&path, "till-1").expect("db");
    let t = Instant::now();
    // About 8 rows a sale: 124,600 sales fill a year with about 1,000,000 rows.
    generated::load(&mut db, 2025, 124_600, start(), 190, false).expect("a year loads");
    db.close_day("mia").expect("closes the year so far");
    let last_day = start() + chrono::Duration::days(366);
    generated::load(&mut db, 2026, 380, last_day, 110, false).expect("one more day");
    let rows: i64 = db
        .conn
        .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
        .expect("count");
    println!("loaded {rows} journal rows in {:.1?}", t.elapsed());

    let mut rng = StdRng::seed_from_u64(99);
    let sample: Vec<(String, Option<String>, Option<String>)> = {
        let mut st = db
            .conn
            .prepare("SELECT at, klarna_request_id, sale_id FROM journal WHERE seq % 997 = 0")
            .expect("prepare");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let mut times = Vec::new();
    let mut by_shape: Vec<(&str, Vec<Duration>)> = Vec::new();
    let shapes = [
        "kind",
        "rare kind",
        "operator",
        "date range",
        "amount range",
        "klarna id",
        "sale id",
        "text",
        "state",
        "combined",
        "id and text",
        "live state",
        "next page",
    ];
    for shape in shapes {
        let mut ts = Vec::new();
        for _ in 0..40 {
            let (at, kreq, sale) = &sample[rng.random_range(0..sample.len())];
            let mut f = LogFilter::default();
            let mut before = None;
            match shape {
                "kind" => f.kinds = vec![LogKind::Payment],
                "rare kind" => {
                    f.kinds = vec![
                        [LogKind::Refund, LogKind::Return, LogKind::Manager]
                            [rng.random_range(0..3)],
                    ]
                }
                "operator" => f.operator = Some(OPERATORS[rng.random_range(0..5)].into()),
                "date range" => {
                    f = f
                        .from(&at[..10])
                        .and_then(|f| f.to(&at[..10]))
                        .expect("dates");
                }
                "amount range" => {
                    let lo = rng.random_range(0..100_000);
                    f.min_amount = Some(lo);
                    f.max_amount = Some(lo + 500);
                }
                "klarna id" => f.reference = kreq.clone().or(sale.clone()),
                "sale id" => f.reference = sale.clone(),
                "text" => {
                    f.text = Some(
                        ["teapot", "wrong size", "UNSUPPORTED", "SKU-42"][rng.random_range(0..4)]
                            .into(),
                    )
                }
                "state" => {
                    f.state = Some(
                        ["declined", "failed", "needs_attention"][rng.random_range(0..3)].into(),
                    )
                }
                "combined" => {
                    f.kinds = vec![LogKind::Payment];
                    f.operator = Some(OPERATORS[rng.random_range(0..5)].into());
                    f.currency = Some("EUR".into());
                    f.min_amount = Some(rng.random_range(0..50_000));
                }
                "id and text" => {
                    f.reference = kreq.clone().or(sale.clone());
                    f.text = Some("krn:payment".into());
                }
                "live state" => f.state = Some("awaiting_customer".into()),
                _ => before = Some(rng.random_range(1..rows)),
            }
            let q = Instant::now();
            let page = db.log_page(&f, before, 50).expect("query");
            ts.push(q.elapsed());
            std::hint::black_box(page);
        }
        times.extend(ts.iter().copied());
        by_shape.push((shape, ts));
    }
    for (shape, ts) in &mut by_shape {
        println!(
            "  {shape:<13} p50 {:>8.2?}  p99 {:>8.2?}",
            pct(ts, 0.5),
            pct(ts, 0.99)
        );
    }
    println!(
        "filtered page (50 rows), {} queries: p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        times.len(),
        pct(&mut times, 0.5),
        pct(&mut times, 0.99),
        pct(&mut times, 1.0)
    );

    // The X-report computes what the close does without writing (or syncing) anything.
    let t = Instant::now();
    let x = db.x_report().expect("x report");
    println!("X-report over {} rows: {:.2?}", x.rows, t.elapsed());

    let t = Instant::now();
    let z = db.close_day("mia").expect("day close");
    println!("day close over {} rows: {:.2?}", z.rows, t.elapsed());

    // Reading alone, to tell the database's share of the export from the writer's.
    let t = Instant::now();
    let (mut n, mut before) = (0, None);
    while n < 100_000 {
        let page = db
            .log_page(&LogFilter::default(), before, MAX_PAGE.min(100_000 - n))
            .expect("page");
        n += page.entries.len();
        before = page.next_before;
        std::hint::black_box(page);
    }
    println!("reading {n} rows for the export: {:.2?}", t.elapsed());

    let t = Instant::now();
    let mut w = LogWriter::new(ExportFormat::Csv, Vec::new()).expect("writer");
    let (mut n, mut before) = (0, None);
    while n < 100_000 {
        let page = db
            .log_page(&LogFilter::default(), before, MAX_PAGE.min(100_000 - n))
            .expect("page");
        for e in &page.entries {
            w.write(e).expect("row");
        }
        n += page.entries.len();
        before = page.next_before;
    }
    let bytes = w.finish().expect("finished").len();
    println!(
        "CSV export of {n} rows ({bytes} bytes): {:.2?}",
        t.elapsed()
    );
}
