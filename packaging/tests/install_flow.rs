//! Cases 15–18 of shared/updates.md plus the trial, busy-shop and database-snapshot rules: the real
//! `kassa-update` binary is killed at each stage, run twice at once, and fed failing "new agents".

mod common;

use std::fs;
use std::process::Stdio;

use common::*;
use kassa_packaging::Error;
use kassa_packaging::install::Outcome;

/// After a crash and the next run: old or new version, never a mix, no staging left behind.
fn assert_clean(t: &Terminal) {
    let running = t.running_release();
    assert!(matches!(running, Some(1) | Some(2)), "running {running:?}");
    assert_eq!(t.current_seq(), running);
    for name in t.version_dirs() {
        assert!(!name.ends_with(".tmp"), "staging left: {name}");
    }
    assert!(!t.root.join("opt/kassa/.current.new").exists());
    assert!(
        !t.root
            .join("var/lib/kassa-update/staging/bundle.kup")
            .exists()
    );
    assert!(!t.root.join("var/lib/kassa-update/trial.json").exists());
}

#[test]
fn case15_kill_9_at_each_stage_leaves_old_or_new_never_a_mix() {
    for stage in ["download", "unpack", "fsync", "switch", "commit"] {
        let t = Terminal::new();
        t.install_file(&t.good_bundle(1)).unwrap();
        let bundle = t.good_bundle(2);
        let server = TestServer::start(fs::read(&bundle).unwrap());
        let source = if stage == "download" {
            server.url.clone()
        } else {
            bundle.display().to_string()
        };
        let mut child = t.spawn_paused(&source, stage);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let during = t.running_release();
        assert!(
            matches!(during, Some(1) | Some(2)),
            "{stage}: running {during:?}"
        );

        // The next run (timer or boot) tidies up and decides.
        let out = t.command(&["check-trial"]).output().unwrap();
        assert!(
            out.status.success(),
            "{stage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&t);
        if stage == "commit" {
            // The health check had passed: the next run finishes the commit (see
            // `kill_9_at_commit_after_a_passed_health_check_finishes_the_commit`).
            assert_eq!(t.running_release(), Some(2), "{stage}");
            assert!(matches!(
                t.install_file(&bundle).unwrap_err(),
                Error::Downgrade(_)
            ));
        } else {
            assert_eq!(t.running_release(), Some(1), "{stage}");
            // Nothing was decided against seq 2: installing again completes (resuming the download).
            let out = t.command(&["install", &source]).output().unwrap();
            assert!(
                out.status.success(),
                "{stage}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(t.running_release(), Some(2), "{stage}");
            assert_clean(&t);
        }
        if stage == "download" {
            let ranges = server.state.lock().unwrap().ranges.clone();
            assert!(
                ranges.last().unwrap().starts_with("bytes="),
                "download should resume: {ranges:?}"
            );
        }
    }
}

#[test]
fn kill_9_at_commit_after_a_passed_health_check_finishes_the_commit() {
    // The next run may be the timer's or the first after a reboot: the verdict was recorded
    // before the kill either way.
    for next_run in [&["check-trial"][..], &["check-trial", "--boot"][..]] {
        let t = Terminal::new();
        t.install_file(&t.good_bundle(1)).unwrap();
        let bundle = t.good_bundle(2);
        let mut child = t.spawn_paused(bundle.to_str().unwrap(), "commit");
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let out = t.command(next_run).output().unwrap();
        assert!(
            out.status.success(),
            "{next_run:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.contains("committed"), "{next_run:?}: {report}");
        assert_eq!(t.running_release(), Some(2), "{next_run:?}");
        let status = t.updater().status().unwrap();
        assert!(status.trial.is_none(), "{next_run:?}");
        assert!(
            !status.bad_seqs.contains(&2),
            "{next_run:?}: {:?}",
            status.bad_seqs
        );
        assert_eq!(
            (status.highest_seq, status.previous_seq),
            (2, Some(1)),
            "{next_run:?}"
        );
        assert_clean(&t);
        // Committed for good: the next release installs over it.
        t.install_file(&t.good_bundle(3)).unwrap();
        assert_eq!(t.running_release(), Some(3));
    }
}

#[test]
fn case16_disk_full_while_staging_leaves_the_running_version_untouched() {
    let t = Terminal::new();
    t.install_file(&t.good_bundle(1)).unwrap();
    let bundle = t.good_bundle(2);
    let size = fs::metadata(&bundle).unwrap().len();
    // Room for the private copy but not for unpacking, then not even for the copy.
    for quota in [size + 16, size / 2] {
        t.set_config(&format!("staging_quota_bytes = {quota}"));
        let err = t.install_file(&bundle).unwrap_err();
        assert!(matches!(err, Error::DiskFull(_)), "quota {quota}: {err}");
        assert_eq!(t.running_release(), Some(1));
        assert_eq!(t.version_dirs(), vec!["1".to_string()]);
        assert!(
            !t.root
                .join("var/lib/kassa-update/staging/bundle.kup")
                .exists()
        );
    }
    t.set_config("");
    t.install_file(&bundle).unwrap();
    assert_eq!(t.running_release(), Some(2));
}

#[test]
fn case17_failing_hanging_or_crashing_new_version_is_rolled_back_and_not_retried() {
    let t = Terminal::new();
    t.set_config("health_timeout_secs = 2");
    t.install_file(&t.good_bundle(1)).unwrap();
    let failing = [
        (2, "echo selftest failed >&2; exit 1"),
        (3, "sleep 600"),
        (4, "kill -SEGV $$"),
    ];
    for (seq, selftest) in failing {
        let bundle = t.bundle_with(&t.release(seq), selftest);
        let err = t.install_file(&bundle).unwrap_err();
        assert!(
            matches!(err, Error::HealthCheckFailed { seq: s, .. } if s == seq),
            "{selftest}: {err}"
        );
        assert_eq!(t.running_release(), Some(1));
        assert!(t.updater().status().unwrap().bad_seqs.contains(&seq));
        assert!(matches!(t.install_file(&bundle).unwrap_err(), Error::BadSeq(s) if s == seq));
        assert_eq!(t.version_dirs(), vec!["1".to_string()]);
    }
    // A healthy later release still installs.
    t.install_file(&t.good_bundle(5)).unwrap();
    assert_eq!(t.running_release(), Some(5));
}

#[test]
fn case17_trial_not_committed_before_a_reboot_or_deadline_fails() {
    let t = Terminal::new();
    t.install_file(&t.good_bundle(1)).unwrap();
    // Outside health check: the updater switches and leaves the trial open.
    t.set_config("health_cmd = \"\"\ntrial_secs = 600");
    let out = t.install_file(&t.good_bundle(2)).unwrap();
    assert!(matches!(out, Outcome::OnTrial { seq: 2, .. }));
    assert_eq!(t.running_release(), Some(2));
    // Still within the deadline: status keeps it on trial.
    assert_eq!(t.updater().status().unwrap().trial.unwrap().seq, 2);
    // The machine reboots before anyone committed.
    let report = t.updater().check_trial(true).unwrap().unwrap();
    assert!(report.contains("rolled back"), "{report}");
    assert_eq!(t.running_release(), Some(1));
    assert!(t.updater().status().unwrap().bad_seqs.contains(&2));

    // Deadline passed: the next status call rolls back.
    t.set_config("health_cmd = \"\"\ntrial_secs = 0");
    t.install_file(&t.good_bundle(3)).unwrap();
    wait_for("trial deadline", || {
        kassa_packaging::install::now()
            > t.updater()
                .status()
                .unwrap()
                .trial
                .map_or(0, |tr| tr.deadline)
    });
    assert_eq!(t.running_release(), Some(1));
    assert!(t.updater().status().unwrap().bad_seqs.contains(&3));

    // Committed in time by the health check: kept.
    t.set_config("health_cmd = \"\"\ntrial_secs = 600");
    t.install_file(&t.good_bundle(4)).unwrap();
    let out = t.command(&["commit"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.running_release(), Some(4));
    assert_eq!(t.updater().status().unwrap().highest_seq, 4);
}

#[test]
fn database_snapshot_is_restored_when_an_irreversible_migration_is_rolled_back() {
    let t = Terminal::new();
    t.install_file(&t.good_bundle(1)).unwrap();
    let db = t.root.join("var/lib/kassa/kassa.db");
    fs::write(&db, b"schema v1").unwrap();
    fs::write(t.root.join("var/lib/kassa/kassa.db-wal"), b"wal v1").unwrap();
    let mut r = t.release(2);
    r.irreversible_migration = true;
    let migrate_then_fail = "echo schema v2 > \"$KASSA_ROOT/var/lib/kassa/kassa.db\"; rm -f \"$KASSA_ROOT/var/lib/kassa/kassa.db-wal\"; exit 1";
    let err = t
        .install_file(&t.bundle_with(&r, migrate_then_fail))
        .unwrap_err();
    assert!(matches!(err, Error::HealthCheckFailed { .. }), "{err}");
    assert_eq!(fs::read(&db).unwrap(), b"schema v1");
    assert_eq!(
        fs::read(t.root.join("var/lib/kassa/kassa.db-wal")).unwrap(),
        b"wal v1"
    );
    assert_eq!(t.running_release(), Some(1));
}

#[test]
fn open_sale_postpones_the_switch_and_the_staged_version_is_used_next_run() {
    let t = Terminal::new();
    t.install_file(&t.good_bundle(1)).unwrap();
    let busy = t.root.join("run/kassa/busy");
    fs::create_dir_all(busy.parent().unwrap()).unwrap();
    fs::write(&busy, b"sale 42").unwrap();
    let bundle = t.good_bundle(2);
    let out = t
        .command(&["install", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.running_release(), Some(1));
    assert_eq!(t.version_dirs(), vec!["1".to_string(), "2".to_string()]);
    fs::remove_file(&busy).unwrap();
    t.install_file(&bundle).unwrap();
    assert_eq!(t.running_release(), Some(2));
}

#[test]
fn operator_rollback_returns_to_the_previous_version_and_keeps_one_previous() {
    let t = Terminal::new();
    for seq in 1..=3 {
        t.install_file(&t.good_bundle(seq)).unwrap();
    }
    assert_eq!(t.version_dirs(), vec!["2".to_string(), "3".to_string()]);
    let out = t.command(&["rollback"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.running_release(), Some(2));
    assert!(matches!(
        t.install_file(&t.good_bundle(3)).unwrap_err(),
        Error::BadSeq(3)
    ));
}

#[test]
fn case18_two_installs_at_once_are_serialised_by_the_lock() {
    let t = Terminal::new();
    t.install_file(&t.good_bundle(1)).unwrap();
    let bundle = t.good_bundle(2);
    let path = bundle.to_str().unwrap();
    let first = t.spawn_paused(path, "unpack");
    // A second installer that must not wait fails at once.
    let out = t.command(&["install", "--no-wait", path]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another kassa-update is running"));
    // A second installer that waits blocks until the first is done.
    let mut second = t
        .command(&["install", path])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_lines(second.stderr.take().unwrap());
    wait_for("second installer to wait for the lock", || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("waiting for another update"))
    });
    assert!(
        second.try_wait().unwrap().is_none(),
        "second installer ran past the lock"
    );
    assert_eq!(t.running_release(), Some(1));
    fs::remove_file(t.pause_dir().join("unpack")).unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    let status = second.wait().unwrap();
    // The second one then sees seq 2 already installed.
    assert!(!status.success());
    wait_for("second installer's report", || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("not newer"))
    });
    assert_eq!(t.running_release(), Some(2));
    assert_clean(&t);
}
