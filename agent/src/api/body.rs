//! Request bodies as the API accepts them: one JSON object and nothing after it, at most
//! `MAX_BODY_BYTES`, with errors that name the offending field.

use super::*;

/// JSON body extractor whose errors name the offending field (`lines[0].unit_price`).
pub struct ApiJson<T>(pub T);

/// The largest request body the API reads (stated in the OpenAPI document).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// How much of an oversize body is still read (and dropped) before the 413 is sent.
pub(super) const DRAIN_BYTES: usize = 32 * 1024 * 1024;

/// A request body of at most `MAX_BODY_BYTES`. A larger one is read on to its end (up to
/// `DRAIN_BYTES` more, and dropped) before it is refused with 413: a client that is still
/// sending would otherwise find the connection closed under it and never read the answer.
pub struct LimitedBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for LimitedBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        use http_body_util::BodyExt;
        let mut body = req.into_body();
        let mut kept = bytes::BytesMut::new();
        let mut seen: usize = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("the body could not be read: {e}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen <= MAX_BODY_BYTES {
                kept.extend_from_slice(&data);
            } else if seen > MAX_BODY_BYTES + DRAIN_BYTES {
                break;
            }
        }
        if seen > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
        Ok(LimitedBody(kept.freeze()))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let LimitedBody(bytes) = LimitedBody::from_request(req, state).await?;
        // Strict JSON: one object and nothing after it (serde would read an array as the
        // struct's fields in order, and stop before trailing bytes).
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body must be one JSON object",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let bad = |e: serde_path_to_error::Error<serde_json::Error>| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let err = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                inner.to_string(),
            );
            if path == "." { err } else { err.field(path) }
        };
        let value = serde_path_to_error::deserialize(&mut *de).map_err(bad)?;
        de.end().map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("unexpected data after the JSON object: {e}"),
            )
        })?;
        Ok(ApiJson(value))
    }
}
