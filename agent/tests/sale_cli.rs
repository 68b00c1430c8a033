//! `kassa sale` and `kassa staff` against a running agent (the real binary, a child process, a
//! real database): a wrong line comes off, a quantity changes, the sale is paid part by card and
//! the rest in cash with change, and a cashier added with `kassa staff add` can sign in.

mod common;

use std::process::{Command, Output, Stdio};

use kassa_sim::sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

fn kassa(cfg: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kassa"));
    c.args(args)
        .arg("--config")
        .arg(cfg)
        .env("KASSA_API_TOKEN", common::TOKEN)
        .env_remove("KASSA_MANAGER_PIN")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("kassa runs")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_is_edited_and_paid_from_the_command_line() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let cfg = common::write_config(dir.path(), &sandbox, port, "");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut agent = common::spawn(&cfg);
    common::wait_ready(&http, &base).await;

    let sale = common::post(
        &http,
        format!("{base}/v1/sales"),
        json!({"lines": [
            {"name": "Teapot", "quantity": 1, "unit_price": 24_900},
            {"name": "Mug", "quantity": 1, "unit_price": 9_900}]}),
    )
    .await;
    let id = sale["id"].as_str().unwrap().to_string();
    let cli = |args: Vec<&str>, env: Vec<(&str, &str)>| {
        let cfg = cfg.clone();
        let args: Vec<String> = args.into_iter().map(str::to_string).collect();
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> =
                env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            kassa(&cfg, &args, &env)
        })
    };

    let o = cli(vec!["sale", "remove-line", &id, "1"], vec![])
        .await
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(
        vec!["sale", "edit-line", &id, "2", "--quantity", "3"],
        vec![],
    )
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("total 29700"), "{}", text(&o));
    // A price cut with no reason is refused by clap before anything is sent.
    let o = cli(
        vec!["sale", "edit-line", &id, "2", "--unit-price", "100"],
        vec![],
    )
    .await
    .unwrap();
    assert!(!o.status.success());
    let o = cli(
        vec![
            "sale",
            "discount",
            &id,
            "--percent",
            "5",
            "--reason",
            "regular",
        ],
        vec![],
    )
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // 3 × 99.00 less 5 % is 3 × 94.05.
    assert!(text(&o).contains("total 28215"), "{}", text(&o));
    let o = cli(
        vec![
            "sale",
            "tender",
            &id,
            "--amount",
            "10000",
            "--reference",
            "AUTH 9",
        ],
        vec![],
    )
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("left to pay 18215"), "{}", text(&o));
    let o = cli(vec!["sale", "tender", &id, "--given", "18500"], vec![])
        .await
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("change: 285"), "{}", text(&o));
    assert!(text(&o).contains(" paid "), "{}", text(&o));
    // Nothing more is taken for a paid sale, and the command says why.
    let o = cli(vec!["sale", "tender", &id, "--given", "100"], vec![])
        .await
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));

    // The store's staff: a cashier added on the till signs in through the API.
    let o = cli(
        vec![
            "staff", "add", "--id", "ann", "--name", "Ann", "--role", "cashier", "--by", "it",
        ],
        vec![("KASSA_STAFF_PIN", "4711")],
    )
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(vec!["staff", "list"], vec![]).await.unwrap();
    assert!(
        text(&o).contains("ann\tcashier\tactive\tAnn"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("argon2"));
    let signed = common::post(
        &http,
        format!("{base}/v1/staff/sign-in"),
        json!({"id": "ann", "pin": "4711"}),
    )
    .await;
    assert_eq!(signed["staff"]["id"], "ann");

    agent.kill().unwrap();
    agent.wait().unwrap();
    assert!(common::journal_verifies(&cfg));
}
