//! The real `kassa` binary on a real database: a tampered amount is named by `journal verify`,
//! the manager PIN guards the day close, and archived rows stay verifiable and searchable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kassa_agent::store::{Db, LineInput};

fn till() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("kassa.toml");
    std::fs::write(
        &cfg,
        format!(
            "terminal_id = \"till-1\"\nstore_id = \"s-1\"\ndata_dir = {:?}\ncurrency = \"SEK\"\n\
             [klarna]\nbase_url = \"http://127.0.0.1:9\"\npartner_account_id = \"krn:x\"\n",
            dir.path()
        ),
    )
    .expect("config written");
    let mut db = Db::open(&dir.path().join("kassa.db"), "till-1").expect("db");
    for i in 0..3 {
        let lines = [
            LineInput {
                name: "Teapot".into(),
                reference: Some("SKU-7".into()),
                quantity: 1,
                unit_price: 24_900,
            },
            LineInput {
                name: "Mug".into(),
                reference: None,
                quantity: 2,
                unit_price: 9_900,
            },
        ];
        db.open_sale(
            &format!("sale-{i}"),
            "SEK".parse().expect("SEK"),
            "ann",
            &lines,
            |_| None,
        )
        .expect("sale opens");
    }
    (dir, cfg)
}

fn kassa(cfg: &Path, args: &[&str], pin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kassa"));
    c.args(args).arg("--config").arg(cfg);
    c.env_remove("KASSA_MANAGER_PIN")
        .env_remove("KASSA_MANAGER_OLD_PIN");
    if let Some(p) = pin {
        c.env("KASSA_MANAGER_PIN", p);
    }
    c.stdin(std::process::Stdio::null());
    c.output().expect("kassa runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn editing_one_amount_in_sqlite_makes_journal_verify_name_that_row() {
    let (dir, cfg) = till();
    let ok = kassa(&cfg, &["journal", "verify"], None);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("journal OK"));
    let conn = rusqlite::Connection::open(dir.path().join("kassa.db")).expect("sqlite");
    conn.execute_batch(
        "DROP TRIGGER journal_no_update; DROP TRIGGER journal_no_delete;
         UPDATE journal SET amount = 100 WHERE seq = 5",
    )
    .expect("tampered");
    drop(conn);
    let bad = kassa(&cfg, &["journal", "verify"], None);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("BROKEN at row 5"), "{}", text(&bad));
}

#[test]
fn the_day_close_needs_the_pin_and_archived_rows_stay_searchable() {
    let (_dir, cfg) = till();
    let set = kassa(&cfg, &["manager", "set-pin"], Some("2468"));
    assert!(set.status.success(), "{}", text(&set));

    let wrong = kassa(&cfg, &["report", "z"], Some("1111"));
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));

    let z = kassa(&cfg, &["report", "z", "--format", "json"], Some("2468"));
    assert!(z.status.success(), "{}", text(&z));
    let report: serde_json::Value = serde_json::from_slice(&z.stdout).expect("JSON report");
    assert_eq!(report["close_no"], 1);
    assert_eq!(report["currencies"][0]["sales_opened"], 3);

    let printed = kassa(&cfg, &["report", "x"], None);
    assert!(text(&printed).contains("X-REPORT"), "{}", text(&printed));

    let actions = kassa(
        &cfg,
        &["log", "--kind", "manager", "--format", "csv", "--all"],
        None,
    );
    let mut rd = csv::Reader::from_reader(actions.stdout.as_slice());
    let details: Vec<String> = rd
        .records()
        .map(|r| r.expect("csv row").get(14).unwrap_or("").to_string())
        .collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(details[0].contains("day_close") && details[0].contains("chain_head"));
    assert!(details[1].contains("refused"));
    assert!(details[2].contains("set_pin"));

    let before = kassa(
        &cfg,
        &["log", "--text", "teapot", "--format", "json", "--all"],
        None,
    );
    let archived = kassa(
        &cfg,
        &["journal", "archive", "--older-than-days", "0"],
        None,
    );
    assert!(
        text(&archived).contains("archived rows 1.."),
        "{}",
        text(&archived)
    );
    let after = kassa(
        &cfg,
        &["log", "--text", "teapot", "--format", "json", "--all"],
        None,
    );
    let rows: serde_json::Value = serde_json::from_slice(&after.stdout).expect("JSON log");
    assert_eq!(rows.as_array().map(Vec::len), Some(3));
    assert_eq!(before.stdout, after.stdout);

    let ok = kassa(&cfg, &["journal", "verify"], None);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("1 day closes check out"),
        "{}",
        text(&ok)
    );
}
