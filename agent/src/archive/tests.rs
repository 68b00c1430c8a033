//! Archiving keeps the chain whole and the rows findable; tampering with a live row or an
//! archive file is found and named.

use crate::store::log::tests::db_with_history;
use crate::store::{LogFilter, LogKind};

fn all_seqs(db: &crate::store::Db, f: &LogFilter) -> Vec<i64> {
    let mut out = Vec::new();
    db.log_each(f, |e| {
        out.push(e.row.seq);
        Ok(())
    })
    .expect("log reads");
    out
}

#[test]
fn archived_rows_still_verify_and_stay_searchable() {
    let (dir, mut db, h) = db_with_history(9, 200);
    let refunds = LogFilter {
        kinds: vec![LogKind::Refund],
        ..Default::default()
    };
    let teapots = LogFilter {
        text: Some("teapot".into()),
        operator: Some("eva".into()),
        ..Default::default()
    };
    let before = (
        all_seqs(&db, &refunds),
        all_seqs(&db, &teapots),
        all_seqs(&db, &LogFilter::default()),
    );
    let archive_dir = dir.path().join("archive");

    // Nothing is archived before the day is closed.
    let now = crate::now_rfc3339();
    assert_eq!(
        db.archive_journal(&archive_dir, &now, "system")
            .expect("runs"),
        None
    );
    let z = db.close_day("mia").expect("day closes");
    let rec = db
        .archive_journal(&archive_dir, &now, "system")
        .expect("archives")
        .expect("something to archive");
    assert_eq!((rec.first_seq, rec.last_seq), (1, z.last_seq));
    assert_eq!(rec.rows, h.rows.len() as i64);
    let live: i64 = db.live_journal_rows().expect("count");
    assert_eq!(live, 2, "the close's row and the archiving's row stay live");

    let audit = db.audit_journal().expect("audit");
    assert_eq!(audit.first_broken, None, "{audit:?}");
    assert_eq!(audit.archived_rows, h.rows.len() as i64);
    assert_eq!(audit.day_closes_checked, 1);

    // The same questions give the same answers from the archive.
    assert_eq!(all_seqs(&db, &refunds), before.0);
    assert_eq!(all_seqs(&db, &teapots), before.1);
    let everything = all_seqs(&db, &LogFilter::default());
    assert_eq!(everything[2..], before.2[..]);

    // New rows chain on from the archive, and a second archive follows the first.
    crate::store::log::generated::load(
        &mut db,
        10,
        5,
        crate::store::log::tests::start(),
        60,
        false,
    )
    .expect("more history");
    db.close_day("mia").expect("second close");
    let rec2 = db
        .archive_journal(&archive_dir, &crate::now_rfc3339(), "system")
        .expect("archives")
        .expect("more to archive");
    assert_eq!(rec2.first_seq, rec.last_seq + 1);
    assert_eq!(rec2.prev_hash, rec.last_hash);
    assert_eq!(db.audit_journal().expect("audit").first_broken, None);

    // A changed archive file is found.
    std::fs::write(&rec.file, b"not zstd").expect("overwrite");
    let audit = db.audit_journal().expect("audit");
    assert_eq!(
        audit.first_broken.as_ref().map(|b| b.0),
        Some(1),
        "{audit:?}"
    );
}

#[test]
fn editing_one_amount_breaks_verify_at_that_row() {
    let (_dir, db, _h) = db_with_history(2, 20);
    db.tamper_journal_amount(17, 100).expect("tampered");
    let r = db.verify_journal().expect("verify runs");
    assert_eq!(r.first_broken.as_ref().map(|b| b.0), Some(17), "{r:?}");
    let a = db.audit_journal().expect("audit runs");
    assert_eq!(a.first_broken.map(|b| b.0), Some(17));
}

#[test]
fn live_rows_cannot_be_deleted_even_after_archiving() {
    let (dir, mut db, _h) = db_with_history(3, 10);
    db.close_day("mia").expect("closes");
    db.archive_journal(&dir.path().join("a"), &crate::now_rfc3339(), "system")
        .expect("archives");
    assert!(db.try_delete_journal().is_err());
}
