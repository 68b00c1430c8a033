//! One agent per till database: a second `kassa run` on the same data refuses to start (two
//! agents would follow the same payments and send the same outbox), and a crashed agent leaves
//! no lock behind.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use kassa_sim::sandbox::{Sandbox, SandboxConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_data_is_refused_and_a_killed_one_leaves_no_lock() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let cfg = common::write_config(dir.path(), &sandbox, port, "");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = common::spawn(&cfg);
    common::wait_ready(&http, &base).await;

    // The same configuration (same data directory) again, as a kiosk session would start it.
    let second = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_kassa"))
                .args(["run", "--config"])
                .arg(&cfg)
                .env("KASSA_API_TOKEN", common::TOKEN)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("kassa runs")
        }
    });
    let second = tokio::time::timeout(Duration::from_secs(60), second)
        .await
        .expect("the second agent gives up instead of running")
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains("another kassa agent is already running"),
        "{stderr}"
    );
    // The first one is untouched.
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert!(health.status().is_success());

    // A crash (SIGKILL) releases the lock: the next agent starts.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut next = common::spawn(&cfg);
    common::wait_ready(&http, &base).await;
    next.kill().unwrap();
    next.wait().unwrap();
    assert!(common::journal_verifies(&cfg));
}
