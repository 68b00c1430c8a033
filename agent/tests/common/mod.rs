//! Helpers for tests that run the real `kassa` binary as a child process against an in-process
//! Klarna sandbox: a config file with a 0600 key file, spawning, readiness, and API calls.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kassa_sim::sandbox::Sandbox;
use serde_json::Value;

pub const TOKEN: &str = "child-process-test-token";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `kassa.toml` (and the key file) pointing at the sandbox; `extra` is appended verbatim.
pub fn write_config(dir: &Path, sandbox: &Sandbox, port: u16, extra: &str) -> PathBuf {
    let key = dir.join("klarna.key");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&key)
        .unwrap();
    f.write_all(sandbox.api_key().as_bytes()).unwrap();
    let cfg = dir.join("kassa.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"terminal_id = "till-child"
store_id = "store-1"
data_dir = "{data}"
currency = "SEK"
[klarna]
base_url = "{base}"
partner_account_id = "{account}"
api_key_file = "{key}"
[payment]
poll_interval_ms = 100
[api]
listen = "127.0.0.1:{port}"
{extra}
"#,
            data = dir.join("data").display(),
            base = sandbox.base_url(),
            account = sandbox.account_id(),
            key = key.display(),
        ),
    )
    .unwrap();
    cfg
}

pub fn spawn(cfg: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kassa"))
        .args(["run", "--config"])
        .arg(cfg)
        .env("KASSA_API_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kassa starts")
}

pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kassa did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    let r = http
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

pub async fn get(http: &reqwest::Client, url: String) -> Value {
    http.get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs `kassa journal verify` on the config's database and returns whether it passed.
pub fn journal_verifies(cfg: &Path) -> bool {
    let out = Command::new(env!("CARGO_BIN_EXE_kassa"))
        .args(["journal", "verify", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("journal OK")
}
