//! `kassa bench`: the performance figures of the payment path, the journal and the outbox, each
//! measured side by side with a baseline in the same run (same machine, same disk, same moment),
//! so the ratios mean something on a shared machine. Figures, not pass/fail: see the closing notes.

use std::io::Write;
use std::time::{Duration, Instant};

use kassa_sim::sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

use crate::app::Agent;
use crate::config::{Config, Secret};
use crate::outbox::{NewOperation, Operation, OutboxLimits};
use crate::store::baseline::Baseline;
use crate::store::{Db, JournalEntry, JournalKind, Store};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// p50 and p99 (nearest rank) of a sample, in milliseconds.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| {
        let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
        samples[rank.min(samples.len()) - 1].as_secs_f64() * 1000.0
    };
    if samples.is_empty() {
        (0.0, 0.0)
    } else {
        (at(50.0), at(99.0))
    }
}

fn report(
    name: &str,
    baseline: &str,
    mut ours: Vec<Duration>,
    mut base: Vec<Duration>,
) -> (f64, f64) {
    let (p50, p99) = percentiles(&mut ours);
    let (b50, b99) = percentiles(&mut base);
    println!(
        "{name:<34} p50 {p50:>8.3} ms  p99 {p99:>8.3} ms | {baseline:<26} p50 {b50:>8.3} ms  p99 {b99:>8.3} ms | p99 ratio {:.2}, p99 overhead {:+.3} ms",
        p99 / b99.max(1e-9),
        p99 - b99
    );
    (p99, b99)
}

/// Opens a sale of one T-shirt through the local API; its id.
async fn open_sale(http: &reqwest::Client, api: &str, token: &str) -> BenchResult<String> {
    let sale: serde_json::Value = http
        .post(format!("{api}/v1/sales"))
        .bearer_auth(token)
        .json(&json!({"lines": [{"name": "T-shirt", "quantity": 1, "unit_price": 11800}]}))
        .send()
        .await?
        .json()
        .await?;
    Ok(sale["id"].as_str().ok_or("no sale id")?.to_string())
}

fn test_config(sandbox: &Sandbox, dir: &std::path::Path) -> Config {
    let mut cfg = crate::demo::config_for_sandbox(sandbox, dir);
    // Followers would poll each open request; the benchmark measures the start, not the follow-up.
    cfg.payment.poll_interval_ms = 3_600_000;
    cfg.payment.in_store_timeout_secs = 3600;
    cfg.outbox = OutboxLimits {
        max_count: 100_000,
        default_max_total: i64::MAX / 4,
        ..Default::default()
    };
    cfg
}

/// Agent overhead on the payment path: local API "start payment" → QR URL, against a bare
/// reqwest authorize call to the same sandbox endpoint.
async fn payment_path(base: &std::path::Path, iterations: usize) -> BenchResult<()> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let dir = tempfile::tempdir_in(base)?;
    let token = "bench-token";
    let agent = Agent::start(
        test_config(&sandbox, dir.path()),
        Secret::new(sandbox.api_key()),
        Secret::new(token),
    )
    .await?;
    let http = reqwest::Client::new();
    let api = format!("http://{}", agent.api_addr);
    let authorize = format!(
        "{}/v2/accounts/{}/payment/authorize",
        sandbox.base_url(),
        sandbox.account_id()
    );
    let body = json!({"currency": "SEK",
        "request_payment_transaction": {"amount": 11800, "payment_transaction_reference": "bench", "capture": "NOW"},
        "supplementary_purchase_data": {"purchase_reference": "bench", "line_items": [
            {"name": "T-shirt", "quantity": 1, "unit_price": 11800, "total_amount": 11800}]},
        "step_up_config": {"payment_request_reference": "bench",
            "customer_interaction_config": {"method": "HANDOVER", "return_url": "https://x.invalid"}},
        "point_of_checkout": {"store_reference": "s"},
        "point_of_transaction": {"type": "TERMINAL", "terminal_reference": "t"}});
    // Three presses, each with its own baseline taken just before it: the sale's prepared draft,
    // a press with a customer code scanned from the customer's Klarna app (the
    // `Klarna-Network-Session-Token` header, which the draft does not hold), and a press whose
    // request differs from the draft (`klarna_network_data` from the customer's app).
    type Press = (&'static str, fn(usize) -> serde_json::Value);
    let presses: [Press; 3] = [
        ("start payment → QR URL (local API)", |_| json!({})),
        (
            "  with a scanned customer token",
            |i| json!({"klarna_network_session_token": format!("krn:payment:eu1:klarna-network-session-token:bench-{i}")}),
        ),
        (
            "  request differs from its draft",
            |i| json!({"klarna_network_data": format!("{{\"loyalty\":\"bench-{i}\"}}")}),
        ),
    ];
    let mut ours = vec![vec![]; presses.len()];
    let mut base = vec![vec![]; presses.len()];
    for i in 0..iterations + 20 {
        for (k, (_, press)) in presses.iter().enumerate() {
            let sale_id = open_sale(&http, &api, token).await?;

            let t = Instant::now();
            let r = http
                .post(&authorize)
                .header("Authorization", format!("Basic {}", sandbox.api_key()))
                .header("Klarna-Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .header("Partner-Correlation-Id", "bench")
                .json(&body)
                .send()
                .await?;
            let v: serde_json::Value = r.json().await?;
            let b = t.elapsed();
            if v["payment_request"]["payment_request_id"].is_null() {
                return Err("baseline authorize failed".into());
            }

            let t = Instant::now();
            let a: serde_json::Value = http
                .post(format!("{api}/v1/sales/{sale_id}/payments"))
                .bearer_auth(token)
                .json(&press(i))
                .send()
                .await?
                .json()
                .await?;
            let o = t.elapsed();
            if a["payment_request_url"].is_null() {
                return Err(format!("agent payment failed: {a}").into());
            }
            // The first iterations warm connections and the eligibility cache.
            if i >= 20 {
                base[k].push(b);
                ours[k].push(o);
            }
        }
    }
    for (k, (name, _)) in presses.iter().enumerate() {
        report(
            name,
            "bare authorize (reqwest)",
            std::mem::take(&mut ours[k]),
            std::mem::take(&mut base[k]),
        );
    }
    // Nothing of this phase may run on into the next one's measurements: the journal rows it
    // wrote are indexed now (the idle indexer would otherwise do it then, a commit of trigram
    // segments every 500 rows, on the same disk) and its WAL checkpointed.
    agent
        .terminal
        .store()
        .call(|db| {
            db.index_journal(None)?;
            db.checkpoint_truncate()
        })
        .await?;
    Ok(())
}

/// A bare SQLite insert with kassa's pragmas, in its own transaction, on the same disk.
fn bare_insert_db(dir: &std::path::Path) -> BenchResult<Baseline> {
    Ok(Baseline::create(&dir.join("bare.db"))?)
}

fn bare_insert(bare: &mut Baseline, i: i64) -> BenchResult<()> {
    Ok(bare.insert(i)?)
}

/// Durable journal append and durable outbox enqueue, each against a bare insert. Both go
/// through the agent's own `Store` (its database thread and background checkpointer), as every
/// write of a running till does.
async fn storage(base: &std::path::Path, iterations: usize) -> BenchResult<()> {
    let dir = tempfile::tempdir_in(base)?;
    let store = Store::open(&dir.path().join("kassa.db"), "bench-till")?;
    let mut bare = bare_insert_db(dir.path())?;
    let limits = OutboxLimits {
        max_count: 1_000_000,
        default_max_total: i64::MAX / 4,
        ..Default::default()
    };
    let (mut journal, mut enqueue, mut base_j, mut base_o) = (vec![], vec![], vec![], vec![]);
    for i in 0..iterations as i64 {
        let t = Instant::now();
        bare_insert(&mut bare, i)?;
        base_j.push(t.elapsed());

        let t = Instant::now();
        store
            .call(move |db| {
                db.write(|w| {
                    let mut e = JournalEntry::new(JournalKind::LineAdded, "bench");
                    e.amount = Some(i);
                    e.currency = Some("SEK".into());
                    w.journal(e)
                })
            })
            .await?;
        journal.push(t.elapsed());

        let t = Instant::now();
        bare_insert(&mut bare, i)?;
        base_o.push(t.elapsed());

        let op = NewOperation {
            operation: Operation::Refund,
            transaction_id: format!("krn:payment:eu1:transaction:{}", i % 50),
            currency: "SEK".into(),
            amount: 100,
            line_items: vec![],
            reference: format!("r-{i}"),
            operator: "bench".into(),
            sale_id: None,
        };
        let l = limits.clone();
        let t = Instant::now();
        store
            .call(move |db| Ok(db.enqueue(&op, &l, None)))
            .await??;
        enqueue.push(t.elapsed());
    }
    report(
        "journal append (synchronous=FULL)",
        "bare insert, same pragmas",
        journal,
        base_j,
    );
    report(
        "outbox enqueue (+ journal row)",
        "bare insert, same pragmas",
        enqueue,
        base_o,
    );

    // The same two writes timed on the database thread itself, as the bare insert is timed on
    // its connection: the storage cost without the hand-over to and from that thread.
    let (journal, enqueue, base_j, base_o) = store
        .call(move |db| {
            let (mut journal, mut enqueue, mut base_j, mut base_o) =
                (vec![], vec![], vec![], vec![]);
            let err = |e: Box<dyn std::error::Error + Send + Sync>| {
                crate::store::StoreError::Invalid(e.to_string())
            };
            for i in 0..iterations as i64 {
                let t = Instant::now();
                bare_insert(&mut bare, i).map_err(err)?;
                base_j.push(t.elapsed());
                let t = Instant::now();
                db.write(|w| {
                    let mut e = JournalEntry::new(JournalKind::LineAdded, "bench");
                    e.amount = Some(i);
                    e.currency = Some("SEK".into());
                    w.journal(e)
                })?;
                journal.push(t.elapsed());
                let t = Instant::now();
                bare_insert(&mut bare, i).map_err(err)?;
                base_o.push(t.elapsed());
                let op = NewOperation {
                    operation: Operation::Refund,
                    transaction_id: format!("krn:payment:eu1:transaction:{}", i % 50),
                    currency: "SEK".into(),
                    amount: 100,
                    line_items: vec![],
                    reference: format!("t-{i}"),
                    operator: "bench".into(),
                    sale_id: None,
                };
                let t = Instant::now();
                db.enqueue(&op, &limits, None)
                    .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
                enqueue.push(t.elapsed());
            }
            Ok((journal, enqueue, base_j, base_o))
        })
        .await?;
    report(
        "journal append, on the db thread",
        "bare insert, same pragmas",
        journal,
        base_j,
    );
    report(
        "outbox enqueue, on the db thread",
        "bare insert, same pragmas",
        enqueue,
        base_o,
    );
    Ok(())
}

/// Pages each kind of commit writes to the WAL (a commit's fsync covers all of them, so this is
/// what the latencies above grow with): measured with checkpoints off on a fresh database.
fn pages_per_commit(base: &std::path::Path) -> BenchResult<()> {
    const N: i64 = 200;
    let dir = tempfile::tempdir_in(base)?;
    let mut db = Db::open(&dir.path().join("kassa.db"), "bench-till")?;
    let mut bare = bare_insert_db(dir.path())?;
    db.stop_autocheckpoint()?;
    bare.stop_autocheckpoint()?;
    let frames = |name: &str| -> BenchResult<f64> {
        let len = std::fs::metadata(dir.path().join(format!("{name}-wal")))?.len();
        Ok(len.saturating_sub(32) as f64 / (4096.0 + 24.0))
    };
    let limits = OutboxLimits {
        max_count: 1_000_000,
        default_max_total: i64::MAX / 4,
        ..Default::default()
    };
    let (b0, k0) = (frames("bare.db")?, frames("kassa.db")?);
    for i in 0..N {
        bare_insert(&mut bare, i)?;
        db.write(|w| {
            let mut e = JournalEntry::new(JournalKind::LineAdded, "bench");
            e.amount = Some(i);
            e.currency = Some("SEK".into());
            w.journal(e)
        })?;
    }
    let (b1, k1) = (frames("bare.db")?, frames("kassa.db")?);
    for i in 0..N {
        let op = NewOperation {
            operation: Operation::Refund,
            transaction_id: format!("krn:payment:eu1:transaction:{}", i % 50),
            currency: "SEK".into(),
            amount: 100,
            line_items: vec![],
            reference: format!("r-{i}"),
            operator: "bench".into(),
            sale_id: None,
        };
        db.enqueue(&op, &limits, None)?;
    }
    let k2 = frames("kassa.db")?;
    let n = N as f64;
    println!(
        "WAL pages per commit                 bare insert {:.1}, journal append {:.1}, outbox enqueue {:.1}",
        (b1 - b0) / n,
        (k1 - k0) / n,
        (k2 - k1) / n
    );
    Ok(())
}

/// Queues `count` refunds while Klarna is down, measures the start-up of a real `kassa run`
/// process with them waiting, then drains them against a sandbox limited to `rate` requests/s.
async fn outbox_drain(base: &std::path::Path, count: usize, rate: f64) -> BenchResult<()> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let dir = tempfile::tempdir_in(base)?;
    let cfg = test_config(&sandbox, dir.path());
    let txs: Vec<String> = (0..count.div_ceil(40))
        .map(|i| {
            sandbox
                .seed_order(
                    "SEK",
                    &format!("web-{i}"),
                    vec![json!({"name": "Order", "quantity": 1,
                    "unit_price": 1_000_000_000, "total_amount": 1_000_000_000})],
                )
                .payment_transaction_id
        })
        .collect();
    {
        let mut db = Db::open(&cfg.database_path(), &cfg.terminal_id)?;
        let t = Instant::now();
        for i in 0..count {
            let op = NewOperation {
                operation: Operation::Refund,
                transaction_id: txs[i % txs.len()].clone(),
                currency: "SEK".into(),
                amount: 100,
                line_items: vec![crate::klarna::wire::LineItem {
                    name: "Item".into(),
                    quantity: 1,
                    unit_price: 100,
                    total_amount: 100,
                    reference: None,
                }],
                reference: format!("r-{i}"),
                operator: "bench".into(),
                sale_id: None,
            };
            db.enqueue(&op, &cfg.outbox, None)?;
        }
        println!(
            "(queued {count} refunds in {:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }

    // Start-up to ready, as a real process, with the queue waiting and Klarna unreachable.
    sandbox.set_outage(true);
    let exe = std::env::current_exe()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let key = dir.path().join("klarna.key");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&key)?;
        f.write_all(sandbox.api_key().as_bytes())?;
    }
    let file = dir.path().join("kassa.toml");
    std::fs::write(
        &file,
        format!(
            "terminal_id = \"{}\"\nstore_id = \"s\"\ndata_dir = \"{}\"\ncurrency = \"SEK\"\n[klarna]\nbase_url = \"{}\"\npartner_account_id = \"{}\"\napi_key_file = \"{}\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n[outbox]\nmax_count = 100000\n",
            cfg.terminal_id,
            dir.path().display(),
            sandbox.base_url(),
            sandbox.account_id(),
            key.display()
        ),
    )?;
    let http = reqwest::Client::new();
    let mut startups = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let mut child = std::process::Command::new(&exe)
            .args(["run", "--config"])
            .arg(&file)
            .env("KASSA_API_TOKEN", "bench")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        loop {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return Err("the agent did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        startups.push(t.elapsed());
        child.kill()?;
        child.wait()?;
    }
    startups.sort();
    println!(
        "start-up to ready, {count} waiting      median {:.0} ms, worst {:.0} ms (process exec to /health answering; 5 runs)",
        startups[2].as_secs_f64() * 1000.0,
        startups[4].as_secs_f64() * 1000.0
    );

    // Drain against a rate-limited sandbox.
    sandbox.set_outage(false);
    sandbox.set_rate_limit(Some(rate));
    let t = Instant::now();
    let agent = Agent::start(cfg, Secret::new(sandbox.api_key()), Secret::new("bench")).await?;
    loop {
        let n = sandbox
            .effects()
            .iter()
            .filter(|e| e.kind == "refund")
            .count();
        if n >= count {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            return Err(format!("drain stalled at {n} of {count}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t.elapsed().as_secs_f64();
    let ideal = count as f64 / rate;
    let effects = sandbox.effects();
    let mut keys: Vec<_> = effects
        .iter()
        .filter(|e| e.kind == "refund")
        .filter_map(|e| e.idempotency_key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    println!(
        "drain {count} refunds at {rate} req/s       {took:.2} s vs ideal {ideal:.2} s: ratio {:.3}; applied {} distinct, {} requests",
        took / ideal,
        keys.len(),
        sandbox.hits("refund")
    );
    drop(agent);
    Ok(())
}

/// The Klarna requests one in-store payment costs when the customer takes `approve_after` to
/// approve (opening the link a fifth of the way in), with the till's default polling: by polling
/// alone, and with signed webhooks delivered to the till. Both run at once, each against its own
/// sandbox, counted by the sandbox per route.
async fn requests_per_payment(base: &std::path::Path, approve_after: Duration) -> BenchResult<()> {
    const KEY_ID: &str = "bench-key";
    const SECRET: &str = "bench-webhook-secret";
    async fn one(
        base: std::path::PathBuf,
        approve_after: Duration,
        webhooks: bool,
    ) -> BenchResult<(String, Duration)> {
        let sandbox = Sandbox::start(SandboxConfig::default()).await?;
        let dir = tempfile::tempdir_in(&base)?;
        let mut cfg = crate::demo::config_for_sandbox(&sandbox, dir.path());
        cfg.payment = Default::default();
        cfg.payment.in_store_timeout_secs = approve_after.as_secs() + 600;
        if webhooks {
            cfg.klarna
                .webhook_signing_keys
                .insert(KEY_ID.into(), SECRET.into());
        }
        let token = "bench-token";
        let agent = Agent::start(cfg, Secret::new(sandbox.api_key()), Secret::new(token)).await?;
        let api = format!("http://{}", agent.api_addr);
        if webhooks {
            sandbox.add_webhook(&format!("{api}/v1/klarna/webhooks"), KEY_ID, SECRET);
        }
        let http = reqwest::Client::new();
        let sale_id = open_sale(&http, &api, token).await?;
        let started = Instant::now();
        let a: serde_json::Value = http
            .post(format!("{api}/v1/sales/{sale_id}/payments"))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        let rid = a["klarna_request_id"]
            .as_str()
            .ok_or("no request")?
            .to_string();
        tokio::time::sleep(approve_after / 5).await;
        sandbox
            .customer(&rid, kassa_sim::sandbox::CustomerAction::Open)
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(approve_after.saturating_sub(started.elapsed())).await;
        sandbox
            .customer(&rid, kassa_sim::sandbox::CustomerAction::Approve)
            .map_err(|e| e.to_string())?;
        let approved = Instant::now();
        loop {
            let v: serde_json::Value = http
                .get(format!("{api}/v1/sales/{sale_id}"))
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            if v["state"] == "paid" {
                break;
            }
            if approved.elapsed() > Duration::from_secs(60) {
                return Err("the payment was not finalized".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let paid_after = approved.elapsed();
        let routes = [
            "authorize",
            "read_request",
            "final_authorize",
            "presentation",
        ];
        let counts: Vec<String> = routes
            .iter()
            .map(|r| format!("{r} {}", sandbox.hits(r)))
            .collect();
        let total: usize = routes.iter().map(|r| sandbox.hits(r)).sum();
        drop(agent);
        Ok((
            format!("{total} requests ({})", counts.join(", ")),
            paid_after,
        ))
    }
    let (polling, webhooks) = tokio::join!(
        one(base.to_path_buf(), approve_after, false),
        one(base.to_path_buf(), approve_after, true)
    );
    let (polling, p_after) = polling?;
    let (webhooks, w_after) = webhooks?;
    let secs = approve_after.as_secs();
    println!(
        "Klarna requests per payment, customer approves after {secs} s:\n  polling alone    {polling}; paid {:.0} ms after approval\n  with webhooks    {webhooks}; paid {:.0} ms after approval",
        p_after.as_secs_f64() * 1000.0,
        w_after.as_secs_f64() * 1000.0
    );
    Ok(())
}

pub struct BenchOptions {
    /// Where the databases live (default: the system temp dir); `/dev/shm` shows the cost
    /// without the disk's fsync.
    pub dir: Option<std::path::PathBuf>,
    pub iterations: usize,
    pub drain_count: usize,
    pub drain_rate: f64,
    /// Seconds the customer takes to approve in the requests-per-payment phase (0 skips it).
    pub approve_after_secs: u64,
}

pub async fn run(opts: BenchOptions) -> BenchResult<()> {
    println!(
        "kassa bench: {} iterations; p99 is nearest-rank; baselines measured in the same run",
        opts.iterations
    );
    let base = opts.dir.unwrap_or_else(std::env::temp_dir);
    println!("databases in {}", base.display());
    if opts.iterations > 0 {
        payment_path(&base, opts.iterations).await?;
        storage(&base, opts.iterations).await?;
        pages_per_commit(&base)?;
    }
    if opts.drain_count > 0 {
        outbox_drain(&base, opts.drain_count, opts.drain_rate).await?;
    }
    if opts.approve_after_secs > 0 {
        requests_per_payment(&base, Duration::from_secs(opts.approve_after_secs)).await?;
    }
    Ok(())
}
