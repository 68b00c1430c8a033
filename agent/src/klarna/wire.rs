//! Klarna's JSON shapes as the client sends and reads them (klarna-api.md §3–§5). Unknown fields in
//! responses are ignored so Klarna can add fields without breaking tills in the field.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub total_amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPaymentTransaction {
    pub amount: i64,
    pub payment_transaction_reference: String,
    pub capture: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplementaryPurchaseData {
    pub purchase_reference: String,
    pub line_items: Vec<LineItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerInteractionConfig {
    pub method: String,
    pub return_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpConfig {
    pub payment_request_reference: String,
    pub customer_interaction_config: CustomerInteractionConfig,
}

/// Where the purchase happens [draft in-store pages]: exactly one of an onboarded store's
/// `store_id` or `store_reference`, or a `store` object for a store not onboarded. Kept as plain
/// structs so a rename is one edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PointOfCheckout {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointOfTransaction {
    #[serde(rename = "type")]
    pub kind: String,
    pub terminal_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub currency: String,
    pub request_payment_transaction: RequestPaymentTransaction,
    pub supplementary_purchase_data: SupplementaryPurchaseData,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_up_config: Option<StepUpConfig>,
    pub point_of_checkout: PointOfCheckout,
    pub point_of_transaction: PointOfTransaction,
    /// Opaque data from the customer's Klarna app (`klarna_network_data`, a string [doc]),
    /// passed through untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub klarna_network_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CustomerInteraction {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub payment_request_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct StateContext {
    #[serde(default)]
    pub customer_interaction: Option<CustomerInteraction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PaymentRequest {
    pub payment_request_id: String,
    #[serde(default)]
    pub payment_request_reference: Option<String>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    pub state: String,
    #[serde(default)]
    pub previous_state: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub state_context: StateContext,
    /// Issued on COMPLETED; valid 60 minutes; never stored or logged by kassa.
    #[serde(default)]
    pub klarna_network_session_token: Option<String>,
}

impl PaymentRequest {
    pub fn url(&self) -> Option<&str> {
        self.state_context
            .customer_interaction
            .as_ref()?
            .payment_request_url
            .as_deref()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PaymentCapture {
    pub payment_capture_id: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub payment_capture_reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PaymentTransaction {
    pub payment_transaction_id: String,
    #[serde(default)]
    pub payment_transaction_reference: Option<String>,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub captured_amount: Option<i64>,
    #[serde(default)]
    pub refunded_amount: Option<i64>,
    #[serde(default)]
    pub payment_captures: Vec<PaymentCapture>,
    /// Refunds as Klarna lists them (id, amount, reference, line items).
    #[serde(default)]
    pub payment_refunds: Vec<serde_json::Value>,
    /// The purchase's lines: where an earlier contract put them (top level), or inside
    /// `supplementary_purchase_data` as they were sent (see `lines`).
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub supplementary_purchase_data: Option<PurchaseLines>,
}

/// The line items of `supplementary_purchase_data`, as a transaction read returns them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct PurchaseLines {
    #[serde(default)]
    pub line_items: Vec<LineItem>,
}

impl PaymentTransaction {
    /// The references of the refunds Klarna lists: those are in its refunded amount already,
    /// whatever state their outbox row is in (an answer lost, a send under way).
    pub fn refund_references(&self) -> std::collections::HashSet<String> {
        self.payment_refunds
            .iter()
            .filter_map(|r| r["payment_refund_reference"].as_str().map(str::to_string))
            .collect()
    }

    /// The purchase's line items, wherever the answer put them.
    pub fn lines(&self) -> &[LineItem] {
        match &self.supplementary_purchase_data {
            Some(p) if !p.line_items.is_empty() => &p.line_items,
            _ => &self.line_items,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PaymentTransactionResponse {
    pub result: String,
    #[serde(default)]
    pub result_reason: Option<String>,
}

/// Authorize's answer: APPROVED (with a transaction), DECLINED, or STEP_UP_REQUIRED (with a request).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuthorizeResponse {
    pub payment_transaction_response: PaymentTransactionResponse,
    #[serde(default)]
    pub payment_request: Option<PaymentRequest>,
    #[serde(default)]
    pub payment_transaction: Option<PaymentTransaction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureRequest {
    pub amount: i64,
    pub payment_capture_reference: String,
    pub line_items: Vec<LineItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundRequest {
    pub amount: i64,
    pub payment_refund_reference: String,
    pub line_items: Vec<LineItem>,
}

/// Klarna's error body (klarna-api.md §1), in either generation: field errors in `errors[]`
/// (with `error_message`) or in `validation_errors[]` (with `reason`, a string or a list).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
pub struct ErrorBody {
    #[serde(default)]
    pub error_id: Option<String>,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub errors: Vec<ParameterError>,
    #[serde(default)]
    pub validation_errors: Vec<ParameterError>,
}

impl ErrorBody {
    /// Klarna's message: the top-level one, else the first field error's ("parameter: why").
    pub fn message(&self) -> Option<String> {
        if let Some(m) = self
            .error_message
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            return Some(m.to_string());
        }
        self.errors
            .iter()
            .chain(&self.validation_errors)
            .find_map(|e| {
                let why = e.why()?;
                Some(match &e.parameter {
                    Some(p) => format!("{p}: {why}"),
                    None => why,
                })
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ParameterError {
    #[serde(default)]
    pub parameter: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// The newer generation's word for `error_message`: a string, or a list of strings.
    #[serde(default)]
    pub reason: Option<serde_json::Value>,
}

impl ParameterError {
    fn why(&self) -> Option<String> {
        if let Some(m) = &self.error_message {
            return Some(m.clone());
        }
        match self.reason.as_ref()? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) => Some(
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        }
    }
}

/// Whether Klarna may be offered (klarna-api.md §5). Kassa reads only whether any payment option
/// is presented; the rest is for the UI of a web shop.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Presentation {
    #[serde(default)]
    pub payment_options: Vec<serde_json::Value>,
    #[serde(default)]
    pub instruction: Option<String>,
}
