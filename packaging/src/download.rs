//! Fetching bundles and channel documents over HTTP(S): size-capped, and resumable with `Range`
//! so a terminal on a flaky line does not start over. Nothing fetched is trusted: the bytes land in
//! private staging and go through the same verification as a USB bundle. A partial download is
//! kept only while it can still become the bundle: one that hit a cap is removed at once.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header::{CONTENT_RANGE, RANGE};

use crate::error::{Error, Result};
use crate::fsutil::{self, QuotaWriter, StagingQuota};

fn client(timeout: Duration) -> Result<Client> {
    Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| Error::Download(e.to_string()))
}

fn check_url(url: &str) -> Result<()> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(Error::Download(format!("{url:?} is not an http(s) URL")))
    }
}

/// Fetches a small document whole, refusing more than `cap` bytes.
pub fn fetch_small(url: &str, cap: u64, timeout: Duration) -> Result<Vec<u8>> {
    check_url(url)?;
    let resp = client(timeout)?
        .get(url)
        .send()
        .map_err(|e| Error::Download(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(Error::Download(format!("{url}: HTTP {}", resp.status())));
    }
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(Error::TooLarge(format!("{url} is over {cap} bytes")));
    }
    fsutil::read_capped_from(resp, cap, url)
}

/// Where the URL of the partial download `part` is recorded (`<part>.url`).
pub fn url_record(part: &Path) -> PathBuf {
    part.with_extension("url")
}

/// Removes a partial download and the record of its URL.
pub fn discard_partial(part: &Path) -> Result<()> {
    fsutil::remove_all(part)?;
    fsutil::remove_all(&url_record(part))
}

/// Downloads `url` into `part`, continuing a previous partial download of the same URL (recorded
/// next to it in `<part>.url`). Returns when the server says the body is complete; whether the
/// bytes are right is for verification to decide. `on_progress` is called after each chunk written.
///
/// An interrupted transfer or an unreachable server keeps what arrived for the next run; any other
/// failure (over the cap, no room, a server that cannot resume properly) removes it, as those
/// bytes can never become the bundle and would only hold the disk (up to the cap: 512 MiB).
pub fn download_resumable(
    url: &str,
    part: &Path,
    cap: u64,
    timeout: Duration,
    quota: &mut StagingQuota,
    on_progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let result = download_into(url, part, cap, timeout, quota, on_progress);
    if let Err(e) = &result
        && !matches!(e, Error::Download(_))
    {
        discard_partial(part)?;
    }
    result
}

fn download_into(
    url: &str,
    part: &Path,
    cap: u64,
    timeout: Duration,
    quota: &mut StagingQuota,
    on_progress: &mut dyn FnMut(u64),
) -> Result<()> {
    check_url(url)?;
    let url_file = url_record(part);
    let same_url = fs::read(&url_file).is_ok_and(|u| u == url.as_bytes());
    let mut have = if same_url {
        fs::metadata(part).map(|m| m.len()).unwrap_or(0)
    } else {
        fsutil::remove_all(part)?;
        fsutil::atomic_write(&url_file, url.as_bytes(), 0o600)?;
        0
    };
    if have > cap {
        fsutil::remove_all(part)?;
        have = 0;
    }
    let mut req = client(timeout)?.get(url);
    if have > 0 {
        req = req.header(RANGE, format!("bytes={have}-"));
    }
    let mut resp = req
        .send()
        .map_err(|e| Error::Download(format!("{url}: {e}")))?;
    let status = resp.status();
    let append = if status == StatusCode::PARTIAL_CONTENT && have > 0 {
        let range_ok = resp
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(&format!("bytes {have}-")));
        if !range_ok {
            // Resuming from this server does not work: start over next time.
            discard_partial(part)?;
            return Err(Error::Download(format!(
                "{url}: server sent the wrong range"
            )));
        }
        true
    } else if status == StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
        // We already hold every byte; verification will tell whether they are right.
        return Ok(());
    } else if status.is_success() {
        have = 0;
        false
    } else {
        return Err(Error::Download(format!("{url}: HTTP {status}")));
    };
    if resp
        .content_length()
        .is_some_and(|n| have.saturating_add(n) > cap)
    {
        return Err(Error::TooLarge(format!("{url} is over {cap} bytes")));
    }
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .open(part)
        .map_err(Error::at(part))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Keep what arrived: the next run resumes from here.
                let _ = out.sync_all();
                return Err(Error::Download(format!("{url}: transfer interrupted: {e}")));
            }
        };
        have += n as u64;
        if have > cap {
            return Err(Error::TooLarge(format!("{url} is over {cap} bytes")));
        }
        QuotaWriter {
            inner: &mut out,
            quota: &mut *quota,
        }
        .write_all(&buf[..n])
        .map_err(Error::at(part))?;
        on_progress(have);
    }
    out.sync_all().map_err(Error::at(part))
}
