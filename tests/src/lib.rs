//! Shared harness for kassa's end-to-end tests: a Klarna sandbox and a whole agent (store, client,
//! local API) started in-process on loopback, and a small client for the local API.

use std::time::Duration;

use kassa_agent::app::Agent;
use kassa_agent::config::{Config, Secret};
use kassa_agent::demo::config_for_sandbox;
use kassa_sim::sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

pub use kassa_sim::sandbox::{CustomerAction, Fault};

/// A till wired to its own sandbox, with a throwaway data directory.
pub struct Till {
    pub sandbox: Sandbox,
    pub agent: Option<Agent>,
    pub cfg: Config,
    pub token: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl Till {
    pub async fn start() -> Till {
        Self::start_with(SandboxConfig::default(), |_| {}).await
    }

    /// Starts a sandbox and an agent; `tune` adjusts the agent's config before it starts.
    pub async fn start_with(sandbox_cfg: SandboxConfig, tune: impl FnOnce(&mut Config)) -> Till {
        // KASSA_LOG=debug shows the agent's reasoning when a test needs explaining.
        if let Ok(filter) = std::env::var("KASSA_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let sandbox = Sandbox::start(sandbox_cfg).await.expect("sandbox starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config_for_sandbox(&sandbox, dir.path());
        cfg.payment.poll_interval_ms = 50;
        tune(&mut cfg);
        let token = "test-token-0123456789".to_string();
        let agent = Agent::start(
            cfg.clone(),
            Secret::new(sandbox.api_key()),
            Secret::new(&token),
        )
        .await
        .expect("agent starts");
        Till {
            sandbox,
            agent: Some(agent),
            cfg,
            token,
            http: reqwest::Client::new(),
            dir,
        }
    }

    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("agent running")
    }

    /// Stops the agent and starts a new one on the same database (a clean restart).
    pub async fn restart(&mut self) {
        self.agent = None;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let agent = Agent::start(
            self.cfg.clone(),
            Secret::new(self.sandbox.api_key()),
            Secret::new(&self.token),
        )
        .await
        .expect("agent restarts");
        self.agent = Some(agent);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.agent().api_addr, path)
    }

    /// POSTs JSON with the bearer token; returns status and body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send_json(self.http.post(self.url(path)), body).await
    }

    /// PATCHes JSON with the bearer token; returns status and body.
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send_json(self.http.patch(self.url(path)), body).await
    }

    async fn send_json(&self, request: reqwest::RequestBuilder, body: Value) -> (u16, Value) {
        let r = request
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("API answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends `body` as the staff member whose session is `session` (`Kassa-Staff-Session`).
    pub async fn send_as(
        &self,
        session: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let request = self
            .http
            .request(method, self.url(path))
            .header("Kassa-Staff-Session", session);
        self.send_json(request, body).await
    }

    /// Adds a member of staff (as `kassa staff add` does); their name is their id in capitals.
    pub async fn add_staff(&self, id: &str, role: kassa_agent::store::staff::Role, pin: &str) {
        let (id, pin) = (id.to_string(), pin.to_string());
        let phc = tokio::task::spawn_blocking(move || kassa_agent::manager::hash_pin(&pin))
            .await
            .expect("hashing runs")
            .expect("a valid PIN");
        self.agent()
            .terminal
            .store()
            .call(move |db| db.put_staff(&id, &id.to_uppercase(), role, &phc, "it"))
            .await
            .expect("the account is stored");
    }

    /// Signs in; returns the status and the answer (its `session` on success).
    pub async fn sign_in(&self, id: &str, pin: &str) -> (u16, Value) {
        self.post("/v1/staff/sign-in", json!({"id": id, "pin": pin}))
            .await
    }

    /// Signs in and returns the session, which must be given.
    pub async fn session(&self, id: &str, pin: &str) -> String {
        let (status, v) = self.sign_in(id, pin).await;
        assert_eq!(status, 201, "{id} signs in: {v}");
        v["session"].as_str().expect("a session").to_string()
    }

    /// The OpenAPI document the agent serves (no token needed).
    pub async fn openapi(&self) -> Value {
        self.http
            .get(self.url("/openapi.json"))
            .send()
            .await
            .expect("API answers")
            .json()
            .await
            .expect("the document is JSON")
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("API answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Opens a sale of a T-shirt (118.00) and two pairs of socks (2 × 49.50) through the API.
    pub async fn open_sale(&self) -> String {
        let (status, sale) = self
            .post(
                "/v1/sales",
                json!({"currency": "SEK", "lines": [
                    {"name": "T-shirt", "reference": "SKU-1", "quantity": 1, "unit_price": 11800},
                    {"name": "Socks", "reference": "SKU-7", "quantity": 2, "unit_price": 4950}]}),
            )
            .await;
        assert_eq!(status, 201, "{sale}");
        sale["id"].as_str().expect("sale id").to_string()
    }

    /// Starts a Klarna payment through the API and returns the attempt as JSON.
    pub async fn start_payment(&self, sale_id: &str) -> (u16, Value) {
        self.post(&format!("/v1/sales/{sale_id}/payments"), json!({}))
            .await
    }

    pub async fn sale(&self, sale_id: &str) -> Value {
        let (status, v) = self.get(&format!("/v1/sales/{sale_id}")).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Polls the sale until `pred` holds (deadline 20 s: generous for a loaded CI machine).
    pub async fn wait_sale(
        &self,
        sale_id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.sale(sale_id).await;
            if pred(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; sale is {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the last payment of the sale is in `state`.
    pub async fn wait_payment_state(&self, sale_id: &str, state: &str) -> Value {
        self.wait_sale(sale_id, &format!("payment {state}"), |v| {
            last_payment(v)["state"] == state
        })
        .await
    }

    /// The journal's kinds for one sale, in order.
    pub async fn journal_kinds(&self, sale_id: &str) -> Vec<String> {
        let id = sale_id.to_string();
        let rows = self
            .agent()
            .terminal
            .store()
            .call(move |db| db.journal_for_sale(&id))
            .await
            .expect("journal");
        rows.into_iter().map(|r| r.kind).collect()
    }

    /// Sets the store's manager PIN, as `kassa manager set-pin` does (only its Argon2 hash is
    /// stored; the change is journaled as done by `operator`).
    pub async fn set_manager_pin(&self, pin: &str, operator: &str) {
        let pin = pin.to_string();
        let phc = tokio::task::spawn_blocking(move || kassa_agent::manager::hash_pin(&pin))
            .await
            .expect("hashing finishes")
            .expect("a PIN of 4 to 12 digits");
        let operator = operator.to_string();
        self.agent()
            .terminal
            .store()
            .call(move |db| db.set_manager_pin(&phc, &operator))
            .await
            .expect("the PIN is stored");
    }

    pub async fn verify_journal(&self) -> kassa_agent::store::VerifyReport {
        self.agent()
            .terminal
            .store()
            .call(|db| db.verify_journal())
            .await
            .expect("verify")
    }

    /// Transactions at the sandbox for this sale (by its payment_transaction_reference).
    pub fn transactions_for(&self, sale_id: &str) -> usize {
        self.sandbox
            .transactions()
            .iter()
            .filter(|t| t.payment_transaction_reference.as_deref() == Some(sale_id))
            .count()
    }
}

/// The last payment attempt of a sale JSON.
pub fn last_payment(sale: &Value) -> &Value {
    sale["payments"]
        .as_array()
        .and_then(|p| p.last())
        .unwrap_or(&Value::Null)
}

/// Polls `f` until it returns true or 20 s pass.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
