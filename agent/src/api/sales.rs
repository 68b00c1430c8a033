//! Sales and their Klarna payments over HTTP: open a sale, add lines, pay, cancel, abandon,
//! and a manager's decision on a payment in doubt. Changes that talk to Klarna run detached, so a
//! client that hangs up never leaves a payment half done.

use super::*;
use kassa_core::sale::LineEdit;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLine {
    /// Shown on the receipt and sent to Klarna: 1 to 255 characters, no control characters.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// Your SKU or article number: 1 to 255 characters, no control characters.
    #[schema(min_length = 1, max_length = 255)]
    pub reference: Option<String>,
    #[schema(minimum = 1, maximum = 100000)]
    pub quantity: i64,
    /// Minor units of the sale's currency (öre, cent); the line's total is at most 2147483647.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub unit_price: i64,
}

impl From<NewLine> for LineInput {
    fn from(l: NewLine) -> Self {
        LineInput {
            name: l.name,
            reference: l.reference,
            quantity: l.quantity,
            unit_price: l.unit_price,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSale {
    /// ISO 4217 code; the terminal's configured currency when absent.
    #[schema(min_length = 3, max_length = 3)]
    pub currency: Option<String>,
    /// Who opens the sale (journaled): 1 to 64 characters; the configured default when absent.
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
    /// At most 500 lines in a sale.
    #[serde(default)]
    #[schema(max_items = 500)]
    pub lines: Vec<NewLine>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLines {
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
    /// The sale holds at most 500 lines in all.
    #[schema(max_items = 500)]
    pub lines: Vec<NewLine>,
}

/// A change to one line: exactly one of `quantity` and `unit_price`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditLine {
    /// The line's new quantity.
    #[schema(minimum = 1, maximum = 100000)]
    pub quantity: Option<i64>,
    /// The line's new unit price in minor units (a price override, or the price after a
    /// discount); needs `reason`, and a manager when it cuts the price by more than the store's
    /// `[sale] price_cut_without_manager_percent`.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub unit_price: Option<i64>,
    /// Why the price changed (journaled): 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    pub reason: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
    /// The manager approving a price cut that needs one (name and PIN; the PIN is checked and
    /// never stored).
    pub manager: Option<crate::manager::ManagerApproval>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartPayment {
    pub operator: Option<String>,
    /// A customer code scanned from the customer's Klarna app (Klarna's
    /// `klarna_network_session_token`), sent as the `Klarna-Network-Session-Token` header of the
    /// first authorization. `interoperability_token` is its older name. At most 4,096 characters.
    #[serde(alias = "interoperability_token")]
    #[schema(max_length = 4096)]
    pub klarna_network_session_token: Option<String>,
    /// Klarna's `klarna_network_data` from the customer's Klarna app, passed through untouched (a
    /// string; `interoperability_data`, its older name, may be an object, passed on as its JSON
    /// text). At most 16,384 characters.
    #[serde(alias = "interoperability_data")]
    #[schema(value_type = String, max_length = 16384)]
    pub klarna_network_data: Option<serde_json::Value>,
}

/// A manager's decision about a payment in doubt.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveDoubt {
    /// `paid` (Klarna has the payment: give its transaction id) or `not_paid`.
    #[schema(pattern = "^(paid|not_paid)$")]
    pub outcome: String,
    /// For `paid`: Klarna's transaction id (`krn:payment:…:transaction:…`), checked at Klarna.
    pub klarna_transaction_id: Option<String>,
    /// The manager deciding (journaled), 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub manager: String,
    /// What the manager checked, at most 500 characters.
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub operator: Option<String>,
}
/// Runs a change that talks to Klarna or leaves a follower behind in a task of its own, so a
/// client that hangs up (or a request cut by the timeout, or its connection closed to make room)
/// never leaves it half done: an attempt with no follower, a cancel never confirmed.
pub(super) async fn detached<T: Send + 'static>(
    change: impl std::future::Future<Output = Result<T, TerminalError>> + Send + 'static,
) -> Result<T, ApiError> {
    // The change runs as the staff member the request was signed in as.
    tokio::spawn(crate::staff::run_as(crate::staff::current(), change))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(ApiError::from)
}

pub(super) fn parse_currency(c: Option<String>) -> Result<Option<Currency>, ApiError> {
    c.map(|c| {
        c.parse::<Currency>().map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
                .field("currency")
        })
    })
    .transpose()
}

/// Change one line of an open sale with no payment in flight: its quantity, or its unit price
/// (with a reason; a manager's approval for a cut beyond the store's limit). Journaled as
/// `line_changed` with what it was and what it became.
#[utoipa::path(patch, path = "/v1/sales/{id}/lines/{line_no}",
    params(("id" = String, Path), ("line_no" = i64, Path)), request_body = EditLine,
    responses((status = 200, body = SaleView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(super) async fn edit_line(
    State(s): State<ApiState>,
    Path((id, line_no)): Path<(String, i64)>,
    ApiJson(b): ApiJson<EditLine>,
) -> Result<Json<SaleView>, ApiError> {
    let edit = match (b.quantity, b.unit_price, b.reason) {
        (Some(q), None, None) => LineEdit::Quantity(q),
        (None, Some(unit_price), Some(reason)) => LineEdit::Price { unit_price, reason },
        (None, Some(_), None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a price change needs a reason",
            )
            .field("reason"));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "give exactly one of quantity and unit_price (a reason only with unit_price)",
            ));
        }
    };
    Ok(Json(
        s.terminal
            .edit_line(&id, line_no, edit, b.operator, b.manager)
            .await?,
    ))
}

/// Take one line off an open sale with no payment in flight (a wrong item). Journaled as
/// `line_removed` with what the line was.
#[utoipa::path(post, path = "/v1/sales/{id}/lines/{line_no}/remove",
    params(("id" = String, Path), ("line_no" = i64, Path)), request_body = Cancel,
    responses((status = 200, body = SaleView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(super) async fn remove_line(
    State(s): State<ApiState>,
    Path((id, line_no)): Path<(String, i64)>,
    ApiJson(b): ApiJson<Cancel>,
) -> Result<Json<SaleView>, ApiError> {
    Ok(Json(
        s.terminal
            .edit_line(&id, line_no, LineEdit::Remove, b.operator, None)
            .await?,
    ))
}

/// A discount on the whole sale: a percentage off every line, with its reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    #[schema(minimum = 1, maximum = 99)]
    pub percent: u32,
    /// Why (journaled with each line's new price): 1 to 230 characters.
    #[schema(min_length = 1, max_length = 230)]
    pub reason: String,
    /// The sale's total as the client saw it: a discount is relative, so a repeated request is
    /// refused (409) instead of taking it twice.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub expected_total: Option<i64>,
    #[schema(min_length = 1, max_length = 64)]
    pub operator: Option<String>,
    /// A manager approving, for a cut beyond `[sale] price_cut_without_manager_percent`.
    pub manager: Option<crate::manager::ManagerApproval>,
}

/// Take a percentage off the whole open sale (no payment in flight, nothing paid yet): every
/// line's unit price is lowered by it, rounded to the minor unit, and journaled as
/// `line_changed` with the reason; beyond the store's limit a manager approves.
#[utoipa::path(post, path = "/v1/sales/{id}/discount", params(("id" = String, Path)),
    request_body = Discount,
    responses((status = 200, body = SaleView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn discount_sale(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Discount>,
) -> Result<Json<SaleView>, ApiError> {
    Ok(Json(
        s.terminal
            .discount_sale(
                &id,
                b.percent,
                b.reason,
                b.operator,
                b.manager,
                b.expected_total,
            )
            .await?,
    ))
}

/// Open a sale with its lines.
#[utoipa::path(post, path = "/v1/sales", request_body = NewSale,
    responses((status = 201, body = SaleView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn create_sale(
    State(s): State<ApiState>,
    ApiJson(b): ApiJson<NewSale>,
) -> Result<impl IntoResponse, ApiError> {
    let currency = parse_currency(b.currency)?;
    let lines = b.lines.into_iter().map(LineInput::from).collect();
    let view = s.terminal.open_sale(currency, b.operator, lines).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Read a sale with its lines and payments.
#[utoipa::path(get, path = "/v1/sales/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SaleView), (status = 404, body = ErrorBody)))]
pub(super) async fn get_sale(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<SaleView>, ApiError> {
    Ok(Json(s.terminal.sale(&id).await?))
}

/// Add lines to an open sale.
#[utoipa::path(post, path = "/v1/sales/{id}/lines", params(("id" = String, Path)), request_body = AddLines,
    responses((status = 200, body = SaleView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn add_lines(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<AddLines>,
) -> Result<Json<SaleView>, ApiError> {
    let lines = b.lines.into_iter().map(LineInput::from).collect();
    Ok(Json(s.terminal.add_lines(&id, b.operator, lines).await?))
}

/// Start a Klarna payment for the sale's total; the answer carries the QR code's URL
/// (`payment_request_url`) or, if Klarna's answer is delayed, state `requested`.
#[utoipa::path(post, path = "/v1/sales/{id}/payments", params(("id" = String, Path)), request_body = StartPayment,
    responses((status = 201, body = AttemptRow), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn start_payment(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<StartPayment>,
) -> Result<impl IntoResponse, ApiError> {
    let too_long = |field: &str, max: usize| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field} is longer than {max} characters"),
        )
        .field(field)
    };
    if b.klarna_network_session_token
        .as_ref()
        .is_some_and(|t| t.len() > 4096)
    {
        return Err(too_long("klarna_network_session_token", 4096));
    }
    let network_data = match b.klarna_network_data {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    if network_data.as_ref().is_some_and(|d| d.len() > 16384) {
        return Err(too_long("klarna_network_data", 16384));
    }
    let opts = PaymentOptions {
        customer_token: b.klarna_network_session_token,
        network_data,
    };
    let t = s.terminal.clone();
    let a = detached(async move { t.start_payment(&id, b.operator, opts).await }).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// A manager decides a payment in doubt (one whose Klarna answer could not be read, so the
/// customer may have been charged): `paid` with Klarna's transaction id (checked at Klarna: same
/// amount, currency and sale) or `not_paid`. Needs the manager PIN in `Kassa-Manager-Pin`; a wrong
/// PIN is refused (403) and journaled. Until then the sale takes no other payment.
#[utoipa::path(post, path = "/v1/payments/{id}/resolve", params(("id" = String, Path),
        ("Kassa-Manager-Pin" = String, Header, description = "The manager PIN")),
    request_body = ResolveDoubt,
    responses((status = 200, body = AttemptRow), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn resolve_doubt(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ResolveDoubt>,
) -> Result<Json<AttemptRow>, ApiError> {
    let bad = |field: &str, m: &str| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m).field(field)
    };
    if b.manager.trim().is_empty() || b.manager.len() > 64 {
        return Err(bad("manager", "manager must be 1 to 64 characters"));
    }
    if b.note.as_ref().is_some_and(|n| n.len() > 500) {
        return Err(bad("note", "note must be at most 500 characters"));
    }
    let resolution = match (b.outcome.as_str(), b.klarna_transaction_id) {
        ("paid", Some(tx)) => DoubtResolution::Paid {
            klarna_transaction_id: tx,
        },
        ("paid", None) => {
            return Err(bad(
                "klarna_transaction_id",
                "a payment marked paid needs Klarna's transaction id",
            ));
        }
        ("not_paid", None) => DoubtResolution::NotPaid,
        ("not_paid", Some(_)) => {
            return Err(bad(
                "klarna_transaction_id",
                "a payment marked not paid has no Klarna transaction id",
            ));
        }
        _ => return Err(bad("outcome", "outcome is paid or not_paid")),
    };
    let pin = headers
        .get(log::PIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string());
    let t = s.terminal.clone();
    let manager = b.manager.trim().to_string();
    Ok(Json(
        detached(async move {
            t.resolve_doubt(&id, resolution, &manager, pin, b.note)
                .await
        })
        .await?,
    ))
}

/// Cancel the payment in progress; the sale stays open.
#[utoipa::path(post, path = "/v1/sales/{id}/payments/cancel", params(("id" = String, Path)), request_body = Cancel,
    responses((status = 200, body = SaleView), (status = 409, body = ErrorBody)))]
pub(super) async fn cancel_payment(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Cancel>,
) -> Result<Json<SaleView>, ApiError> {
    let t = s.terminal.clone();
    Ok(Json(
        detached(async move { t.cancel_payment(&id, b.operator).await }).await?,
    ))
}

/// Abandon the sale and any payment in progress.
#[utoipa::path(post, path = "/v1/sales/{id}/cancel", params(("id" = String, Path)), request_body = Cancel,
    responses((status = 200, body = SaleView), (status = 409, body = ErrorBody)))]
pub(super) async fn abandon_sale(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Cancel>,
) -> Result<Json<SaleView>, ApiError> {
    let t = s.terminal.clone();
    Ok(Json(
        detached(async move { t.abandon_sale(&id, b.operator).await }).await?,
    ))
}
