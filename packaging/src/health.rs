//! Runs the configured health check (on a terminal: the new agent's `kassa selftest`) as a child
//! process in its own process group, killing the whole group if it outlives its timeout.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with `sh -c`, `{root}` replaced by `root`. `Ok` only for exit status 0 within `timeout`;
/// otherwise a reason for the report.
pub fn run(cmd: &str, root: &Path, timeout: Duration) -> Result<(), String> {
    run_command(cmd, root, timeout, "health check")
}

/// Like [`run`], for any configured command (the restart command too).
pub fn run_command(cmd: &str, root: &Path, timeout: Duration, what: &str) -> Result<(), String> {
    let cmd = cmd.replace("{root}", &root.to_string_lossy());
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&cmd)
        .env("KASSA_ROOT", root)
        .stdin(Stdio::null())
        // Own process group: a hanging script's children are killed with it.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{what} {cmd:?} could not start: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{what} {cmd:?} {status}")),
            Ok(None) if Instant::now() >= deadline => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) with a negative pid signals the process group we created above;
                    // it has no memory-safety preconditions.
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} {cmd:?} did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{what} {cmd:?}: {e}")),
        }
    }
}
