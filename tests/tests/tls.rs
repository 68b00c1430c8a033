//! Kassa talks to Klarna over HTTPS with rustls: the sandbox's freshly made CA is pinned and works,
//! an unpinned client refuses the sandbox's certificate, and a production config refuses HTTP.

use kassa_agent::config::{Config, Secret};
use kassa_agent::klarna::{CallOptions, KlarnaClient, KlarnaError};
use kassa_sim::sandbox::{Sandbox, SandboxConfig};
use kassa_tests::CustomerAction;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_over_https_with_the_test_ca_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let sandbox = Sandbox::start(SandboxConfig {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(sandbox.base_url().starts_with("https://localhost:"));
    std::fs::write(&ca, sandbox.ca_pem().unwrap()).unwrap();
    let mut cfg = kassa_agent::demo::config_for_sandbox(&sandbox, dir.path());
    cfg.klarna.ca_file = Some(ca.clone());
    cfg.production = true;
    cfg.validate().unwrap();
    let agent =
        kassa_agent::app::Agent::start(cfg, Secret::new(sandbox.api_key()), Secret::new("t"))
            .await
            .unwrap();
    let t = &agent.terminal;
    let sale = t
        .open_sale(
            None,
            None,
            vec![kassa_agent::store::LineInput {
                name: "Cap".into(),
                reference: None,
                quantity: 1,
                unit_price: 19900,
            }],
        )
        .await
        .unwrap();
    let attempt = t
        .start_payment(&sale.sale.id, None, Default::default())
        .await
        .unwrap();
    sandbox
        .customer(
            attempt.klarna_request_id.as_deref().unwrap(),
            CustomerAction::Approve,
        )
        .unwrap();
    kassa_tests::eventually("paid over https", || sandbox.transactions().len() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_pinned_ca_the_sandbox_certificate_is_refused() {
    let sandbox = Sandbox::start(SandboxConfig {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = kassa_agent::demo::config_for_sandbox(&sandbox, dir.path());
    let client = KlarnaClient::new(&cfg.klarna, Secret::new(sandbox.api_key()), true).unwrap();
    let r = client
        .read_transaction("krn:payment:eu1:transaction:x", CallOptions::default())
        .await;
    assert!(
        matches!(
            r,
            Err(KlarnaError::Unreachable(_) | KlarnaError::UnknownOutcome(_))
        ),
        "{r:?}"
    );
    assert!(sandbox.effects().is_empty());
}

#[test]
fn a_production_terminal_refuses_plain_http_to_klarna() {
    let text = r#"
terminal_id = "till-1"
store_id = "store-1"
data_dir = "/tmp/x"
currency = "SEK"
production = true
[klarna]
base_url = "http://api-global.test.klarna.com"
partner_account_id = "krn:partner:global:account:test:X"
"#;
    let err = Config::parse(text, std::path::Path::new("kassa.toml")).unwrap_err();
    assert!(err.to_string().contains("plain HTTP"), "{err}");
}
