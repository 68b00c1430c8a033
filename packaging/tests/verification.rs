//! Cases 1–14 of shared/updates.md: what the verifier and the unpacker accept and refuse, each
//! checked on a terminal in a temporary root with keys made for the test.

mod common;

use std::fs;

use common::*;
use kassa_packaging::Error;
use kassa_packaging::bundle;
use kassa_packaging::install::{self, Outcome, Request, Source};
use kassa_packaging::keys::SecretKey;
use kassa_packaging::state::UpdateState;
use kassa_packaging::trust::FloorReset;

fn nothing_unpacked(t: &Terminal) {
    assert!(
        t.version_dirs().is_empty(),
        "versions/ should be empty, has {:?}",
        t.version_dirs()
    );
}

#[test]
fn case01_valid_bundle_installs() {
    let t = Terminal::new();
    let out = t.install_file(&t.good_bundle(1)).unwrap();
    assert_eq!(
        out,
        Outcome::Installed {
            seq: 1,
            version: "1.1.0".into()
        }
    );
    assert_eq!(t.running_release(), Some(1));
    let status = t.updater().status().unwrap();
    assert_eq!(status.highest_seq, 1);
    assert!(status.trial.is_none());
    // The verify command agrees and changes nothing.
    assert_eq!(
        t.updater().verify(&t.good_bundle(2)).unwrap().manifest.seq,
        2
    );
}

#[test]
fn case02_payload_byte_changed_is_rejected_before_unpacking() {
    let t = Terminal::new();
    let path = t.good_bundle(1);
    let mut f = fs::File::open(&path).unwrap();
    let opened = bundle::open(&mut f, u64::MAX).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let at = (opened.payload_offset + opened.payload_size / 2) as usize;
    bytes[at] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let err = t.install_file(&path).unwrap_err();
    assert!(matches!(err, Error::PayloadMismatch(_)), "{err}");
    nothing_unpacked(&t);
    assert_eq!(t.current_seq(), None);
}

#[test]
fn case03_manifest_byte_changed_fails_the_signature() {
    let t = Terminal::new();
    let path = t.good_bundle(1);
    let mut bytes = fs::read(&path).unwrap();
    let needle = b"\"seq\": 1";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + needle.len()
        - 1;
    bytes[at] = b'7';
    fs::write(&path, bytes).unwrap();
    let err = t.install_file(&path).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    nothing_unpacked(&t);
}

#[test]
fn case04_unknown_revoked_or_other_products_keys_are_rejected() {
    let t = Terminal::new();
    let payload = Terminal::payload(&Terminal::files(1, HEALTHY));
    // Unknown keys.
    let (a, b) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let err = t
        .install_file(&t.write_bundle(&t.release(1), &payload, &[&a, &b]))
        .unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    // Another product's release keys (its own valid root).
    let other = Keys::new();
    let p = t.write_bundle(
        &t.release(1),
        &payload,
        &[&other.release[0], &other.release[1]],
    );
    assert!(matches!(
        t.install_file(&p).unwrap_err(),
        Error::Signature { .. }
    ));
    // Revoked: root v2 drops release key 2; a bundle it co-signed no longer reaches the threshold.
    let k = &t.keys;
    let v2 = root_doc(
        "kassa",
        2,
        &[&k.root[0], &k.root[1], &k.root[2]],
        &[&k.release[0], &k.release[1]],
        &k.channel,
        &[&k.root[0], &k.root[1]],
    );
    t.updater().rotate_root(&v2).unwrap();
    let p = t.write_bundle(&t.release(1), &payload, &[&k.release[0], &k.release[2]]);
    assert!(matches!(
        t.install_file(&p).unwrap_err(),
        Error::Signature { .. }
    ));
    nothing_unpacked(&t);
    // The keys still trusted do work.
    let p = t.write_bundle(&t.release(1), &payload, &[&k.release[0], &k.release[1]]);
    t.install_file(&p).unwrap();
}

#[test]
fn case05_below_threshold_or_repeated_signature_is_rejected() {
    let t = Terminal::new();
    let payload = Terminal::payload(&Terminal::files(1, HEALTHY));
    let one = t.write_bundle(&t.release(1), &payload, &[&t.keys.release[0]]);
    assert!(matches!(
        t.install_file(&one).unwrap_err(),
        Error::Signature { .. }
    ));
    let twice = t.write_bundle(
        &t.release(1),
        &payload,
        &[&t.keys.release[0], &t.keys.release[0]],
    );
    assert!(matches!(
        t.install_file(&twice).unwrap_err(),
        Error::Signature { .. }
    ));
    nothing_unpacked(&t);
}

#[test]
fn case06_root_rotation_only_to_next_version_signed_by_old_and_new_keys() {
    let t = Terminal::new();
    let k = &t.keys;
    let new_root: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate().unwrap()).collect();
    let new_refs: Vec<&SecretKey> = new_root.iter().collect();
    let release = [&k.release[0], &k.release[1], &k.release[2]];
    let both = [&k.root[0], &k.root[1], new_refs[0], new_refs[1]];
    // N → N+2 refused even with every signature.
    let v3 = root_doc("kassa", 3, &new_refs, &release, &k.channel, &both);
    assert!(matches!(
        t.updater().rotate_root(&v3).unwrap_err(),
        Error::Rotation(_)
    ));
    // Signed only by the new keys: refused.
    let v2_new_only = root_doc(
        "kassa",
        2,
        &new_refs,
        &release,
        &k.channel,
        &[new_refs[0], new_refs[1]],
    );
    assert!(matches!(
        t.updater().rotate_root(&v2_new_only).unwrap_err(),
        Error::Rotation(_)
    ));
    // Signed only by the old keys: refused too (new keys must prove they are held).
    let v2_old_only = root_doc(
        "kassa",
        2,
        &new_refs,
        &release,
        &k.channel,
        &[&k.root[0], &k.root[1]],
    );
    assert!(matches!(
        t.updater().rotate_root(&v2_old_only).unwrap_err(),
        Error::Rotation(_)
    ));
    // N → N+1 by both: accepted, and then v3 by the new keys (old ones no longer needed).
    let v2 = root_doc("kassa", 2, &new_refs, &release, &k.channel, &both);
    assert_eq!(t.updater().rotate_root(&v2).unwrap().body.version, 2);
    assert_eq!(t.updater().trust_root().unwrap().body.version, 2);
    let v3 = root_doc(
        "kassa",
        3,
        &new_refs,
        &release,
        &k.channel,
        &[new_refs[1], new_refs[2]],
    );
    assert_eq!(t.updater().rotate_root(&v3).unwrap().body.version, 3);
    // A replay of v2 is now refused.
    assert!(t.updater().rotate_root(&v2).is_err());
}

#[test]
fn case06_a_root_rotation_with_a_floor_reset_recovers_from_a_fast_forward() {
    let t = Terminal::new();
    let k = &t.keys;
    let roots = [&k.root[0], &k.root[1], &k.root[2]];
    let root_signers = [&k.root[0], &k.root[1]];
    t.install_file(&t.good_bundle(11)).unwrap();
    // Release keys 0 and 1 (a threshold) are stolen and sign the highest seq there is.
    let stolen = [&k.release[0], &k.release[1]];
    let payload = Terminal::payload(&Terminal::files(u64::MAX, HEALTHY));
    let fast_forward = t.write_bundle(&t.release(u64::MAX), &payload, &stolen);
    t.install_file(&fast_forward).unwrap();
    assert_eq!(t.running_release(), Some(u64::MAX));

    // Root v2 revokes the stolen keys but says nothing about the floor: still stuck.
    let fresh: Vec<SecretKey> = (0..2).map(|_| SecretKey::generate().unwrap()).collect();
    let release = [&k.release[2], &fresh[0], &fresh[1]];
    let new_signers = [&fresh[0], &fresh[1]];
    let v2 = root_doc("kassa", 2, &roots, &release, &k.channel, &root_signers);
    t.updater().rotate_root(&v2).unwrap();
    let err = t
        .install_file(&t.write_bundle(
            &t.release(12),
            &Terminal::payload(&Terminal::files(12, HEALTHY)),
            &new_signers,
        ))
        .unwrap_err();
    assert!(
        matches!(err, Error::Downgrade(ref m) if m.contains("18446744073709551615")),
        "{err}"
    );

    // Root v3 names the highest seq its signers vouch for: the fast-forwarded floor comes down.
    let v3 = root_doc_with_reset(
        3,
        &roots,
        &release,
        &k.channel,
        &root_signers,
        FloorReset {
            seq: 11,
            epoch: 0,
            channel_version: 0,
        },
    );
    t.updater().rotate_root(&v3).unwrap();
    let status = t.updater().status().unwrap();
    assert_eq!(status.highest_seq, 11);
    assert!(status.bad_seqs.contains(&u64::MAX), "{:?}", status.bad_seqs);
    // Below or at the reset floor: still a downgrade.
    let eleven = t.write_bundle(
        &t.release(11),
        &Terminal::payload(&Terminal::files(11, HEALTHY)),
        &new_signers,
    );
    assert!(matches!(
        t.install_file(&eleven).unwrap_err(),
        Error::Downgrade(_)
    ));
    // The stolen keys no longer sign anything.
    let stolen_13 = t.write_bundle(
        &t.release(13),
        &Terminal::payload(&Terminal::files(13, HEALTHY)),
        &stolen,
    );
    assert!(matches!(
        t.install_file(&stolen_13).unwrap_err(),
        Error::Signature { .. }
    ));
    // The legitimate next release installs; the fast-forwarded version is not kept for rollback.
    let twelve = t.write_bundle(
        &t.release(12),
        &Terminal::payload(&Terminal::files(12, HEALTHY)),
        &new_signers,
    );
    t.install_file(&twelve).unwrap();
    assert_eq!(t.running_release(), Some(12));
    assert_eq!(t.version_dirs(), vec!["11".to_string(), "12".to_string()]);
    // The reset was applied once, when v3 was accepted: the floor now follows the releases.
    let status = t.updater().status().unwrap();
    assert_eq!((status.highest_seq, status.previous_seq), (12, Some(11)));
    assert!(matches!(
        t.install_file(&twelve).unwrap_err(),
        Error::Downgrade(_)
    ));
}

#[test]
fn case07_older_equal_seq_or_lower_epoch_is_rejected() {
    let t = Terminal::new();
    let mut r = t.release(5);
    r.epoch = 3;
    t.install_file(&t.bundle_with(&r, HEALTHY)).unwrap();
    for seq in [5, 4] {
        let err = t.install_file(&t.good_bundle(seq)).unwrap_err();
        assert!(matches!(err, Error::Downgrade(_)), "seq {seq}: {err}");
    }
    let mut lower_epoch = t.release(6);
    lower_epoch.epoch = 2;
    let err = t
        .install_file(&t.bundle_with(&lower_epoch, HEALTHY))
        .unwrap_err();
    assert!(matches!(err, Error::Downgrade(_)), "{err}");
    // Wiping the state file does not reopen downgrades: the running version is a floor.
    fs::remove_file(t.root.join("var/lib/kassa-update/state.json")).unwrap();
    assert!(matches!(
        t.install_file(&t.good_bundle(4)).unwrap_err(),
        Error::Downgrade(_)
    ));
    assert_eq!(t.running_release(), Some(5));
}

/// Release 10 at epoch 3 under root v2, which revoked release key 0.
fn terminal_at_10_epoch_3_root_v2() -> Terminal {
    let t = Terminal::new();
    let k = &t.keys;
    let mut r = t.release(10);
    r.epoch = 3;
    t.install_file(&t.bundle_with(&r, HEALTHY)).unwrap();
    let v2 = root_doc(
        "kassa",
        2,
        &[&k.root[0], &k.root[1], &k.root[2]],
        &[&k.release[1], &k.release[2]],
        &k.channel,
        &[&k.root[0], &k.root[1]],
    );
    t.updater().rotate_root(&v2).unwrap();
    t
}

/// A bundle of `seq` at `epoch` signed by release keys `a` and `b`.
fn bundle_by(t: &Terminal, seq: u64, epoch: u64, a: usize, b: usize) -> std::path::PathBuf {
    let mut r = t.release(seq);
    r.epoch = epoch;
    let payload = Terminal::payload(&Terminal::files(seq, HEALTHY));
    t.write_bundle(&r, &payload, &[&t.keys.release[a], &t.keys.release[b]])
}

#[test]
fn case07_deleting_the_state_directory_keeps_the_rotated_root_and_the_floors() {
    let t = terminal_at_10_epoch_3_root_v2();
    let state_dir = t.root.join("var/lib/kassa-update");
    fs::remove_dir_all(&state_dir).unwrap();
    // Not back to the shipped root v1: the revoked key still counts for nothing.
    let err = t.install_file(&bundle_by(&t, 11, 3, 0, 1)).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    assert_eq!(t.updater().trust_root().unwrap().body.version, 2);
    // The epoch floor held too.
    let err = t.install_file(&bundle_by(&t, 11, 0, 1, 2)).unwrap_err();
    assert!(matches!(err, Error::Downgrade(_)), "{err}");
    let status = t.updater().status().unwrap();
    assert_eq!((status.highest_seq, status.epoch), (10, 3));
    assert_eq!(t.running_release(), Some(10));
    // The deleted copy was written again, so now the other copy can go.
    assert!(state_dir.join("state.json").exists() && state_dir.join("root.json").exists());
    fs::remove_dir_all(t.root.join("opt/kassa/update-trust")).unwrap();
    let err = t.install_file(&bundle_by(&t, 11, 0, 1, 2)).unwrap_err();
    assert!(matches!(err, Error::Downgrade(_)), "{err}");
    assert_eq!(t.updater().trust_root().unwrap().body.version, 2);
    // What the floors allow still installs.
    t.install_file(&bundle_by(&t, 11, 3, 1, 2)).unwrap();
    assert_eq!(t.running_release(), Some(11));
}

#[test]
fn case07_deleting_state_json_keeps_the_epoch_floor() {
    let t = terminal_at_10_epoch_3_root_v2();
    fs::remove_file(t.root.join("var/lib/kassa-update/state.json")).unwrap();
    let err = t.install_file(&bundle_by(&t, 11, 0, 1, 2)).unwrap_err();
    assert!(
        matches!(err, Error::Downgrade(ref m) if m.contains("epoch")),
        "{err}"
    );
    assert_eq!(t.running_release(), Some(10));
    assert_eq!(t.updater().status().unwrap().epoch, 3);
}

#[test]
fn case07_with_every_copy_of_the_floors_gone_the_updater_refuses_to_act() {
    let t = terminal_at_10_epoch_3_root_v2();
    // Both copies of the trusted root gone (the floors are still there): refused, not v1.
    let roots = [
        t.root.join("var/lib/kassa-update/root.json"),
        t.root.join("opt/kassa/update-trust/root.json"),
    ];
    let saved: Vec<Option<Vec<u8>>> = roots.iter().map(|p| fs::read(p).ok()).collect();
    for p in &roots {
        let _ = fs::remove_file(p);
    }
    let err = t.install_file(&bundle_by(&t, 11, 3, 0, 1)).unwrap_err();
    assert!(matches!(err, Error::StateLost(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("restore") && msg.contains("root.json"),
        "{msg}"
    );
    assert_eq!(t.running_release(), Some(10));
    for (p, bytes) in roots.iter().zip(saved) {
        if let Some(bytes) = bytes {
            fs::write(p, bytes).unwrap();
        }
    }
    // Both copies of the floors gone while release 10 runs: refused, naming what to restore.
    for dir in ["var/lib/kassa-update", "opt/kassa/update-trust"] {
        let _ = fs::remove_dir_all(t.root.join(dir));
    }
    let err = t.install_file(&bundle_by(&t, 11, 0, 1, 2)).unwrap_err();
    assert!(matches!(err, Error::StateLost(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("restore")
            && msg.contains("var/lib/kassa-update/state.json")
            && msg.contains("opt/kassa/update-trust/state.json"),
        "{msg}"
    );
    assert_eq!(t.running_release(), Some(10));
    // Refusing wrote nothing that would pass for restored floors.
    let err = t.install_file(&bundle_by(&t, 11, 0, 1, 2)).unwrap_err();
    assert!(matches!(err, Error::StateLost(_)), "{err}");
    let out = t.command(&["status"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("restore"));
}

fn install_online(
    t: &Terminal,
    bundle: &std::path::Path,
    channel: &[u8],
) -> kassa_packaging::Result<Outcome> {
    let ch = t.work.join("channel.json");
    fs::write(&ch, channel).unwrap();
    t.updater().install(&Request {
        bundle: Source::File(bundle.to_path_buf()),
        channel: Some(Source::File(ch)),
        wait_for_lock: true,
    })
}

#[test]
fn case08_expired_or_older_channel_and_clock_stepped_back_are_reported() {
    let t = Terminal::new();
    let now = install::now();
    let key = &t.keys.channel;
    // Expired.
    let err = install_online(
        &t,
        &t.good_bundle(1),
        &channel_doc(key, 1, 1, now - 9 * 86400, now - 2 * 86400),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Channel(_)), "{err}");
    let status = t.updater().status().unwrap();
    assert!(status.last_event.unwrap().contains("expired"));
    // Fresh version 5 accepted; then version 4 refused as older.
    install_online(
        &t,
        &t.good_bundle(1),
        &channel_doc(key, 5, 2, now, now + 86400),
    )
    .unwrap();
    let err = install_online(
        &t,
        &t.good_bundle(2),
        &channel_doc(key, 4, 2, now, now + 86400),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Channel(_)), "{err}");
    // A bundle above the channel's latest seq is refused (fast-forward).
    let err = install_online(
        &t,
        &t.good_bundle(3),
        &channel_doc(key, 6, 2, now, now + 86400),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Channel(_)), "{err}");
    // A channel document signed by a release key is not a channel document.
    let err = install_online(
        &t,
        &t.good_bundle(2),
        &channel_doc(&t.keys.release[0], 7, 2, now, now + 86400),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    // Clock stepped backwards: this terminal already saw a time 10 days ahead of the clock.
    let layout = t.updater().layout;
    let mut state = UpdateState::load(&layout).unwrap();
    state.last_seen = now + 10 * 86400;
    state.save(&layout).unwrap();
    let err = install_online(
        &t,
        &t.good_bundle(2),
        &channel_doc(key, 8, 2, now, now + 86400),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ClockWentBackwards { .. }), "{err}");
    assert!(t.updater().status().unwrap().clock_went_backwards);
    assert_eq!(t.running_release(), Some(1));
}

#[test]
fn case08_a_channel_document_from_the_future_says_so_not_that_the_clock_went_backwards() {
    let t = Terminal::new();
    let now = install::now();
    let key = &t.keys.channel;
    let err = install_online(
        &t,
        &t.good_bundle(1),
        &channel_doc(key, 1, 1, now + 10 * 86400, now + 11 * 86400),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::ChannelFromTheFuture { issued_at, .. } if issued_at == now + 10 * 86400),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("the channel document is dated in the future")
            && msg.contains("check the clock"),
        "{msg}"
    );
    assert!(!msg.contains("went backwards"), "{msg}");
    let status = t.updater().status().unwrap();
    assert!(!status.clock_went_backwards);
    assert!(status.last_event.unwrap().contains("dated in the future"));
    assert_eq!(t.current_seq(), None);
    // A document dated now is accepted.
    install_online(
        &t,
        &t.good_bundle(1),
        &channel_doc(key, 1, 1, now, now + 86400),
    )
    .unwrap();
    assert_eq!(t.running_release(), Some(1));
}

#[test]
fn case09_wrong_arch_product_or_channel_is_rejected() {
    let t = Terminal::new();
    for (field, value) in [
        ("arch", "sparc64"),
        ("product", "kiosk"),
        ("channel", "beta"),
    ] {
        let mut r = t.release(1);
        match field {
            "arch" => r.arch = value.into(),
            "product" => r.product = value.into(),
            _ => r.channel = value.into(),
        }
        let err = t.install_file(&t.bundle_with(&r, HEALTHY)).unwrap_err();
        assert!(
            matches!(err, Error::WrongTarget { field: f, .. } if f == field),
            "{field}: {err}"
        );
    }
    nothing_unpacked(&t);
}

fn hostile(t: &Terminal, mut files: Vec<TestFile>) -> Error {
    let good = Terminal::files(1, HEALTHY);
    let manifest_files = good.iter().map(|f| f.manifest_entry()).collect();
    files.extend(good);
    let tar = raw_tar(&files);
    let payload = bundle::payload_from_tar(tar, manifest_files, 3).unwrap();
    let path = t.write_bundle(&t.release(1), &payload, &t.signers());
    let err = t.install_file(&path).unwrap_err();
    nothing_unpacked(t);
    assert!(!t.dir.path().join("x").exists() && !t.root.join("x").exists());
    err
}

#[test]
fn case10_escaping_or_special_archive_entries_are_rejected() {
    let t = Terminal::new();
    use tar::EntryType as E;
    let cases: Vec<(&str, Vec<TestFile>)> = vec![
        ("../x", vec![TestFile::file("../x", b"evil", 0o644)]),
        ("/etc/x", vec![TestFile::file("/etc/x", b"evil", 0o644)]),
        (
            "a/../../x",
            vec![TestFile::file("a/../../x", b"evil", 0o644)],
        ),
        (
            "symlink then file through it",
            vec![
                TestFile::entry(b"bin", E::Symlink, b"/tmp"),
                TestFile::file("bin/kassa", b"evil", 0o755),
            ],
        ),
        (
            "hard link",
            vec![TestFile::entry(
                b"share/release.txt",
                E::Link,
                b"/etc/shadow",
            )],
        ),
        ("device", vec![TestFile::entry(b"share/dev", E::Char, b"")]),
        ("fifo", vec![TestFile::entry(b"share/fifo", E::Fifo, b"")]),
        ("non-UTF-8 name", vec![TestFile::file("bin/x", b"", 0o644)]),
        ("setuid", vec![TestFile::file("bin/kassa", b"evil", 0o4755)]),
    ];
    for (what, mut files) in cases {
        if what == "non-UTF-8 name" {
            files[0].path = b"bin/\xff\xfe".to_vec();
        }
        let err = hostile(&t, files);
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{what}: {err}");
    }
    // Duplicates: the listed file twice (second copy identical, still refused).
    let dup = Terminal::files(1, HEALTHY).remove(1);
    let good = Terminal::files(1, HEALTHY);
    let manifest_files = good.iter().map(|f| f.manifest_entry()).collect();
    let mut files = good;
    files.push(dup);
    let payload = bundle::payload_from_tar(raw_tar(&files), manifest_files, 3).unwrap();
    let err = t
        .install_file(&t.write_bundle(&t.release(1), &payload, &t.signers()))
        .unwrap_err();
    assert!(
        matches!(err, Error::UnsafeEntry { ref reason, .. } if reason.contains("duplicate")),
        "{err}"
    );
    nothing_unpacked(&t);
}

#[test]
fn case11_unlisted_or_missing_files_are_rejected() {
    let t = Terminal::new();
    // A file not in the manifest.
    let mut files = Terminal::files(1, HEALTHY);
    let manifest_files = files.iter().map(|f| f.manifest_entry()).collect();
    files.push(TestFile::file("bin/extra", b"surprise", 0o755));
    let payload = bundle::payload_from_tar(raw_tar(&files), manifest_files, 3).unwrap();
    let err = t
        .install_file(&t.write_bundle(&t.release(1), &payload, &t.signers()))
        .unwrap_err();
    assert!(
        matches!(err, Error::PayloadMismatch(ref m) if m.contains("not in the manifest")),
        "{err}"
    );
    // A listed file missing.
    let files = Terminal::files(1, HEALTHY);
    let mut manifest_files: Vec<_> = files.iter().map(|f| f.manifest_entry()).collect();
    manifest_files.push(TestFile::file("lib/needed.so", b"x", 0o644).manifest_entry());
    let payload = bundle::payload_from_tar(raw_tar(&files), manifest_files, 3).unwrap();
    let err = t
        .install_file(&t.write_bundle(&t.release(1), &payload, &t.signers()))
        .unwrap_err();
    assert!(
        matches!(err, Error::PayloadMismatch(ref m) if m.contains("missing")),
        "{err}"
    );
    nothing_unpacked(&t);
}

#[test]
fn case12_decompression_bomb_is_aborted_at_the_cap() {
    let t = Terminal::new();
    // The stream is bigger than the declared unpacked size: decompression stops at the cap.
    let blob = TestFile::file("share/blob", &vec![0u8; 4 << 20], 0o644);
    let entry = blob.manifest_entry();
    let mut payload = bundle::payload_from_tar(raw_tar(&[blob]), vec![entry.clone()], 3).unwrap();
    payload.unpacked_size = entry.size; // the tar headers and padding are over this
    assert!(
        payload.compressed.len() < 64 * 1024,
        "test bomb should compress well"
    );
    let err = t
        .install_file(&t.write_bundle(&t.release(1), &payload, &t.signers()))
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
    // A file bigger in the archive than in the manifest is refused before its data is read.
    let big = TestFile::file("share/blob", &vec![0u8; 4 << 20], 0o644);
    let mut small = big.manifest_entry();
    small.size = 10;
    let payload = bundle::payload_from_tar(raw_tar(&[big]), vec![small], 3).unwrap();
    let err = t
        .install_file(&t.write_bundle(&t.release(1), &payload, &t.signers()))
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
    nothing_unpacked(&t);
}

fn install_url(t: &Terminal, url: &str) -> kassa_packaging::Result<Outcome> {
    t.updater().install(&Request {
        bundle: Source::Url(url.to_string()),
        channel: None,
        wait_for_lock: true,
    })
}

#[test]
fn case13_truncated_resumed_and_changed_downloads() {
    // A truncated bundle file (USB copy interrupted) is refused.
    let t = Terminal::new();
    let path = t.good_bundle(1);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        t.install_file(&path).unwrap_err(),
        Error::Malformed { .. }
    ));
    nothing_unpacked(&t);

    // Download cut in the middle: refused; the next run resumes with Range and succeeds.
    let bundle = fs::read(t.good_bundle(1)).unwrap();
    let server = TestServer::start(bundle.clone());
    server.state.lock().unwrap().cut_next_at = Some(bundle.len() / 2);
    let err = install_url(&t, &server.url).unwrap_err();
    assert!(matches!(err, Error::Download(_)), "{err}");
    assert_eq!(t.current_seq(), None);
    let out = install_url(&t, &server.url).unwrap();
    assert_eq!(
        out,
        Outcome::Installed {
            seq: 1,
            version: "1.1.0".into()
        }
    );
    let ranges = server.state.lock().unwrap().ranges.clone();
    assert_eq!(
        ranges,
        vec![String::new(), format!("bytes={}-", bundle.len() / 2)]
    );

    // Resumed over changed bytes: the mix is refused and the partial file is dropped.
    let t = Terminal::new();
    let first = fs::read(t.good_bundle(1)).unwrap();
    let second = fs::read(t.bundle_with(&t.release(1), "echo other build; exit 0")).unwrap();
    let server = TestServer::start(first.clone());
    server.state.lock().unwrap().cut_next_at = Some(first.len() / 2);
    assert!(install_url(&t, &server.url).is_err());
    server.state.lock().unwrap().body = second;
    let err = install_url(&t, &server.url).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PayloadMismatch(_) | Error::Signature { .. } | Error::Malformed { .. }
        ),
        "{err}"
    );
    nothing_unpacked(&t);
    assert!(
        !t.root
            .join("var/lib/kassa-update/staging/download.part")
            .exists()
    );
    // A clean download of the new bytes then works.
    install_url(&t, &server.url).unwrap();
    assert_eq!(t.running_release(), Some(1));
}

#[test]
fn case13_an_endless_download_leaves_no_partial_file_in_staging() {
    let t = Terminal::new();
    t.set_config("max_bundle_bytes = 1048576");
    let staging = t.root.join("var/lib/kassa-update/staging");
    let server = TestServer::start(Vec::new());
    server.state.lock().unwrap().endless = true;
    let err = install_url(&t, &server.url).unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
    assert!(!staging.join("download.part").exists());
    assert!(!staging.join("download.url").exists());
    nothing_unpacked(&t);

    // A partial download that can never become a bundle (over the cap, or whose URL is not
    // recorded) is removed when the updater starts; a resumable one is kept (case 15).
    for (bytes, url) in [(1048576 + 1, Some(server.url.as_str())), (1000, None)] {
        fs::create_dir_all(&staging).unwrap();
        fs::write(staging.join("download.part"), vec![0u8; bytes]).unwrap();
        let _ = fs::remove_file(staging.join("download.url"));
        if let Some(url) = url {
            fs::write(staging.join("download.url"), url).unwrap();
        }
        let out = t.command(&["check-trial"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !staging.join("download.part").exists(),
            "{bytes} bytes, url {url:?}"
        );
        assert!(!staging.join("download.url").exists());
    }
}

#[test]
fn case14_bundle_replaced_after_verification_has_no_effect() {
    let t = Terminal::new();
    t.install_file(&t.good_bundle(1)).unwrap();
    let path = t.good_bundle(2);
    let child = t.spawn_paused(path.to_str().unwrap(), "unpack");
    // Swap the file for another validly signed bundle of the same seq, and then for garbage.
    fs::copy(t.bundle_with(&t.release(2), "echo replaced; exit 1"), &path).unwrap();
    fs::write(&path, b"garbage").unwrap();
    fs::remove_file(t.pause_dir().join("unpack")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(t.running_release(), Some(2));
    let script = fs::read_to_string(t.root.join("opt/kassa/current/bin/kassa")).unwrap();
    assert!(!script.contains("replaced"));
}
