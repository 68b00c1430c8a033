//! Crash recovery with a real `kassa` process: the agent is killed with SIGKILL while the customer
//! is looking at the QR code, the customer approves meanwhile, and after a restart the sale ends
//! paid with exactly one Klarna transaction and an intact journal.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kassa_sim::sandbox::{CustomerAction, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const TOKEN: &str = "crash-test-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(dir: &Path, sandbox: &Sandbox, port: u16) -> std::path::PathBuf {
    let key = dir.join("klarna.key");
    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(&key).unwrap();
    f.write_all(sandbox.api_key().as_bytes()).unwrap();
    let cfg = dir.join("kassa.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"terminal_id = "till-crash"
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

fn spawn(cfg: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kassa"))
        .args(["run", "--config"])
        .arg(cfg)
        .env("KASSA_API_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kassa starts")
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "kassa did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    let r = http.post(url).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_customer_pays_the_sale_ends_paid_once_after_restart() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), &sandbox, port);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut child = spawn(&cfg);
    wait_ready(&http, &base).await;
    let sale = post(&http, format!("{base}/v1/sales"), json!({"lines": [
        {"name": "Jacket", "quantity": 1, "unit_price": 89900}]}))
    .await;
    let sale_id = sale["id"].as_str().unwrap().to_string();
    let attempt = post(&http, format!("{base}/v1/sales/{sale_id}/payments"), json!({})).await;
    assert_eq!(attempt["state"], "awaiting_customer");
    let rid = attempt["klarna_request_id"].as_str().unwrap().to_string();

    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    sandbox.customer(&rid, CustomerAction::Approve).unwrap();

    let mut child = spawn(&cfg);
    wait_ready(&http, &base).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = http
            .get(format!("{base}/v1/sales/{sale_id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["state"] == "paid" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sale not paid after restart: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let txs = sandbox.transactions();
    assert_eq!(txs.iter().filter(|t| t.payment_transaction_reference.as_deref() == Some(&sale_id)).count(), 1);

    let out = Command::new(env!("CARGO_BIN_EXE_kassa"))
        .args(["journal", "verify", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("journal OK"));
}
