//! The channel document (`channel.json`): signed by the online key, it names the latest release and
//! expires within days, so a terminal that is online notices when it is being kept on old versions.

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::manifest::Target;
use crate::trust::TrustRoot;

/// The `type` field of a channel body.
pub const CHANNEL_TYPE: &str = "kassa-channel";

/// How far the clock may appear to go backwards before we call it stepped back (NTP slew, skew
/// between the signing server and the terminal).
pub const CLOCK_SKEW_SECS: u64 = 300;

/// The signed body of `channel.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    /// Always [`CHANNEL_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Product it speaks for.
    pub product: String,
    /// Channel it speaks for.
    pub channel: String,
    /// Increases with every document published; a terminal never accepts a lower one.
    pub version: u64,
    /// The newest release `seq` on this channel; bundles above it are refused.
    pub latest_seq: u64,
    /// When it was signed (unix seconds).
    pub issued_at: u64,
    /// After this (unix seconds) the document is stale.
    pub expires: u64,
}

/// Verifies a channel document against the root, the terminal's identity, the last accepted
/// channel version and the last time this terminal has seen. The clock check comes first: with a
/// clock stepped back, an expired document would look fresh.
pub fn verify_channel(
    root: &TrustRoot,
    bytes: &[u8],
    target: &Target,
    last_version: u64,
    last_seen: u64,
    now: u64,
) -> Result<ChannelBody> {
    if last_seen > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(Error::ClockWentBackwards { last_seen, now });
    }
    let env = Envelope::parse("channel document", bytes)?;
    root.check_channel(env.body.as_bytes(), &env.signatures)?;
    let body: ChannelBody =
        serde_json::from_str(&env.body).map_err(|e| Error::malformed("channel document", e))?;
    if body.kind != CHANNEL_TYPE {
        return Err(Error::malformed(
            "channel document",
            format!("type is {:?}", body.kind),
        ));
    }
    if body.product != target.product || body.channel != target.channel {
        return Err(Error::Channel(format!(
            "it is for {}/{}, this terminal is {}/{}",
            body.product, body.channel, target.product, target.channel
        )));
    }
    if body.issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(Error::ChannelFromTheFuture {
            issued_at: body.issued_at,
            now,
        });
    }
    if body.expires <= now {
        return Err(Error::Channel(format!(
            "expired at {} (now {now}); updates may be withheld from this terminal",
            body.expires
        )));
    }
    if body.version < last_version {
        return Err(Error::Channel(format!(
            "version {} is older than version {last_version} already seen",
            body.version
        )));
    }
    Ok(body)
}
