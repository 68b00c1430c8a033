//! One std thread per device owning its serial port: opens it, feeds received bytes and commands
//! to the device's protocol code, and survives unplugging by retrying with a back-off. Async code
//! talks to it over channels; its `DeviceState` goes out through a `tokio::sync::watch`.

use std::io;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::SerialPort;
use tokio::sync::watch;
use zeroize::Zeroize;

use crate::config::PortConfig;
use crate::state::DeviceState;

/// How long one read waits: the latency of commands and of silence-based framing.
const TICK: Duration = Duration::from_millis(10);
/// First retry delay after a failure; doubles up to the configured maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// How often an open port's path is checked, to notice a device node that vanished silently.
const PATH_CHECK: Duration = Duration::from_millis(500);
/// How long a write may wait for a slow device (a 9600 baud printer drains ~1 KB/s).
const WRITE_DEADLINE: Duration = Duration::from_secs(20);

/// The device-specific half of a port thread: pure protocol state plus a few hooks.
pub(crate) trait Peripheral: Send + 'static {
    type Command: Send + 'static;

    /// The port was (re)opened: bring the device to a known state.
    fn connected(&mut self, port: &mut dyn SerialPort, now: Instant) -> io::Result<()>;
    /// A command from the handle while the port is open.
    fn command(&mut self, command: Self::Command, port: &mut dyn SerialPort) -> io::Result<()>;
    /// A command that arrives while the device is unplugged.
    fn command_offline(&mut self, command: Self::Command, reason: &str);
    /// Bytes from the device.
    fn received(&mut self, bytes: &[u8], now: Instant);
    /// Called after every read attempt, at least every `TICK`.
    fn tick(&mut self, _port: &mut dyn SerialPort, _now: Instant) -> io::Result<()> {
        Ok(())
    }
    /// When `tick` must run next at the latest (e.g. a scan frame ends by silence then). The next
    /// read waits no longer than that, so silence-based framing is not late by up to a `TICK`.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// The port is gone: drop half-received data.
    fn disconnected(&mut self) {}
    /// State while the port is open.
    fn state(&self) -> DeviceState {
        DeviceState::Connected
    }
}

/// Write everything, waiting past the per-read tick for slow devices, then drain.
pub(crate) fn write_all(port: &mut dyn SerialPort, mut bytes: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + WRITE_DEADLINE;
    while !bytes.is_empty() {
        match port.write(bytes) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "device accepts no bytes",
                ));
            }
            Ok(n) => bytes = &bytes[n..],
            Err(e) if retryable(&e) && Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
    }
    port.flush()
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

/// Start the thread for one device.
pub(crate) fn spawn<P: Peripheral>(
    role: &'static str,
    config: PortConfig,
    peripheral: P,
    commands: Receiver<P::Command>,
    state: watch::Sender<DeviceState>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("kassa-{role}"))
        .spawn(move || {
            PortThread {
                role,
                config,
                peripheral,
                commands,
                state,
            }
            .run()
        })
}

struct PortThread<P: Peripheral> {
    role: &'static str,
    config: PortConfig,
    peripheral: P,
    commands: Receiver<P::Command>,
    state: watch::Sender<DeviceState>,
}

/// Why serving an open port ended.
enum Ended {
    /// The handle was dropped: stop the thread.
    Shutdown,
    /// The port failed or vanished: reconnect.
    Lost(String),
}

impl<P: Peripheral> PortThread<P> {
    fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let opened = self.config.resolve().and_then(|path| {
                self.config
                    .builder(&path)
                    .timeout(TICK)
                    .open()
                    .map(|port| (path.clone(), port))
                    .map_err(|e| crate::DriverError::Open {
                        path,
                        reason: e.to_string(),
                    })
            });
            match opened {
                Ok((path, mut port)) => {
                    backoff = FIRST_BACKOFF;
                    tracing::info!(role = self.role, path = %path.display(), "device connected");
                    match self.serve(&path, port.as_mut()) {
                        Ended::Shutdown => return,
                        Ended::Lost(reason) => {
                            tracing::warn!(role = self.role, %reason, "device disconnected");
                            self.peripheral.disconnected();
                            self.publish(DeviceState::disconnected(reason));
                        }
                    }
                }
                Err(e) => {
                    let reason = e.to_string();
                    self.publish(DeviceState::disconnected(reason.clone()));
                    let retry_at = Instant::now() + backoff;
                    // Wait out the back-off, still answering commands (a print job must fail
                    // promptly, not after the device returns).
                    loop {
                        let left = retry_at.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        match self.commands.recv_timeout(left) {
                            Ok(command) => self.peripheral.command_offline(command, &reason),
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff());
                }
            }
        }
    }

    fn serve(&mut self, path: &Path, port: &mut dyn SerialPort) -> Ended {
        if let Err(e) = self.peripheral.connected(port, Instant::now()) {
            return Ended::Lost(e.to_string());
        }
        self.publish(self.peripheral.state());
        let mut buf = [0u8; 512];
        let mut next_path_check = Instant::now() + PATH_CHECK;
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(command) => {
                        if let Err(e) = self.peripheral.command(command, port) {
                            return Ended::Lost(e.to_string());
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ended::Shutdown,
                }
            }
            let wait = self.peripheral.deadline().map_or(TICK, |at| {
                at.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), TICK)
            });
            // Setting a timeout on an open port only stores it; a failure would just keep TICK.
            if port.timeout() != wait {
                let _ = port.set_timeout(wait);
            }
            match port.read(&mut buf) {
                // End of file: the other side of the line hung up.
                Ok(0) => return Ended::Lost("device hung up".into()),
                Ok(n) => {
                    self.peripheral.received(&buf[..n], Instant::now());
                    // The card reader's track data passed through here: leave none on the stack.
                    buf[..n].zeroize();
                }
                Err(e) if retryable(&e) => {}
                Err(e) => return Ended::Lost(e.to_string()),
            }
            let now = Instant::now();
            if let Err(e) = self.peripheral.tick(port, now) {
                return Ended::Lost(e.to_string());
            }
            if now >= next_path_check {
                next_path_check = now + PATH_CHECK;
                if !path.exists() {
                    return Ended::Lost(format!("{} vanished", path.display()));
                }
            }
            self.publish(self.peripheral.state());
        }
    }

    /// Publish a state change. Repeated failures keep the first `since` (how long the device has
    /// been away) and only a new reason wakes the watchers.
    fn publish(&self, new: DeviceState) {
        self.state
            .send_if_modified(|current| match (&mut *current, new) {
                (
                    DeviceState::Disconnected { reason, .. },
                    DeviceState::Disconnected {
                        reason: new_reason, ..
                    },
                ) => {
                    if *reason == new_reason {
                        false
                    } else {
                        *reason = new_reason;
                        true
                    }
                }
                (current, new) if current.same_kind(&new) => false,
                (current, new) => {
                    *current = new;
                    true
                }
            });
    }
}
