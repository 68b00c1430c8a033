//! `kassa run --window` on a machine without a display: the till says so plainly and exits
//! instead of hanging or running on without the screen the cashier expects.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kassa_sim::sandbox::{Sandbox, SandboxConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_without_a_display_is_a_clear_error_not_a_hang() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &sandbox, common::free_port(), "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kassa"))
        .args(["run", "--window", "--config"])
        .arg(&cfg)
        .env("KASSA_API_TOKEN", common::TOKEN)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("SLINT_BACKEND")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kassa starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`kassa run --window` without a display did not exit");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot open the till's window"),
        "the cashier's window could not open, and the message says so: {stderr}"
    );
    // The agent it started closed its database cleanly: the journal still verifies.
    assert!(common::journal_verifies(&cfg));
}
