//! Checks the built .deb (only when `KASSA_DEB` names one, as CI does after `build-deb.sh`): its
//! file list and modes, the systemd units, conffiles, maintainer scripts, and that the shipped
//! trust root and update.toml are accepted by the updater itself.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use kassa_packaging::config::Config;
use kassa_packaging::trust::TrustRoot;

fn dpkg_deb(args: &[&str], deb: &str) -> Vec<u8> {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("dpkg-deb runs");
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Path → (mode, content) of every regular file in a tar stream.
fn tar_files(bytes: &[u8]) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mode = entry.header().mode().unwrap() & 0o7777;
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(path, (mode, data));
    }
    files
}

fn text(files: &BTreeMap<String, (u32, Vec<u8>)>, path: &str) -> String {
    let (_, data) = files
        .get(path)
        .unwrap_or_else(|| panic!("{path} missing from the package"));
    String::from_utf8(data.clone()).unwrap()
}

#[test]
fn deb_carries_agent_updater_units_and_trust_root() {
    let Ok(deb) = std::env::var("KASSA_DEB") else {
        eprintln!("KASSA_DEB not set: .deb check skipped (run packaging/build-deb.sh first)");
        return;
    };
    assert!(Path::new(&deb).is_file(), "{deb} does not exist");
    let files = tar_files(&dpkg_deb(&["--fsys-tarfile"], &deb));
    for (path, mode) in [
        ("opt/kassa/versions/0/bin/kassa", 0o755),
        ("usr/bin/kassa-update", 0o755),
        ("etc/kassa/root.json", 0o644),
        ("etc/kassa/update.toml", 0o640),
        ("usr/lib/systemd/system/kassa.service", 0o644),
        ("usr/lib/systemd/system/kassa-update.service", 0o644),
        ("usr/lib/systemd/system/kassa-update.timer", 0o644),
        ("usr/lib/systemd/system/kassa-update-boot.service", 0o644),
    ] {
        let (got, _) = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing; have {:?}", files.keys()));
        assert_eq!(*got, mode, "mode of {path}");
    }

    let agent = text(&files, "usr/lib/systemd/system/kassa.service");
    for line in [
        "Type=notify",
        "WatchdogSec=30",
        "NotifyAccess=main",
        "User=kassa",
        "StateDirectory=kassa",
        "ExecStart=/opt/kassa/current/bin/kassa run",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(
            agent.lines().any(|l| l.starts_with(line)),
            "kassa.service lacks {line}"
        );
    }
    let timer = text(&files, "usr/lib/systemd/system/kassa-update.timer");
    assert!(timer.contains("OnUnitActiveSec="));
    let boot = text(&files, "usr/lib/systemd/system/kassa-update-boot.service");
    assert!(boot.contains("check-trial --boot") && boot.contains("Before=kassa.service"));

    // What the package ships is what the updater accepts.
    TrustRoot::bootstrap(&files["etc/kassa/root.json"].1)
        .expect("shipped root.json is a valid self-signed root");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("update.toml");
    std::fs::write(&conf, &files["etc/kassa/update.toml"].1).unwrap();
    Config::load(&conf).expect("shipped update.toml parses");

    let control = tar_files(&dpkg_deb(&["--ctrl-tarfile"], &deb));
    let conffiles = text(&control, "conffiles");
    assert!(
        conffiles.lines().any(|l| l == "/etc/kassa/update.toml"),
        "{conffiles}"
    );
    assert!(
        conffiles.lines().any(|l| l == "/etc/kassa/root.json"),
        "{conffiles}"
    );
    let postinst = text(&control, "postinst");
    assert!(
        postinst.contains("adduser --system") && postinst.contains("chmod 0750 /var/lib/kassa")
    );
    assert_eq!(
        control["postinst"].0 & 0o111,
        0o111,
        "postinst must be executable"
    );
}
