//! A pseudo-terminal pair standing in for one serial device, with a reader thread on the master
//! side, an optional stable symlink path, and unplug/replug that make the path vanish and return.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

/// Creating pty pairs from several threads at once is not safe (devices.md): every pair in this
/// process is made under this lock.
static PAIR_LOCK: Mutex<()> = Mutex::new(());

/// What the device does with bytes from the code under test; returns its answer (may be empty).
pub(crate) type Responder = Arc<Mutex<dyn FnMut(&[u8]) -> Vec<u8> + Send>>;

pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not wedge every later test on a poisoned sim.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Poll `f` until it returns `Some` or `timeout` passes; tests assert on the outcome, never on
/// a fixed sleep.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One plugged-in (or unplugged) simulated device.
pub struct SimPort {
    /// Stable path the code under test is configured with, if any (a symlink to the slave).
    link: Option<PathBuf>,
    responder: Responder,
    plugged: Option<Plugged>,
}

struct Plugged {
    slave_path: PathBuf,
    /// Master side for writes from the sim's API (the reader thread has its own clone).
    master: Arc<Mutex<TTYPort>>,
    /// Held open so that master reads never fail while the code under test reopens the slave.
    _slave: TTYPort,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl SimPort {
    /// Plug in a device; with `link`, a symlink there points at the slave (like a udev name).
    pub(crate) fn open(link: Option<&Path>, responder: Responder) -> io::Result<Self> {
        let mut port = Self {
            link: link.map(Path::to_path_buf),
            responder,
            plugged: None,
        };
        port.replug()?;
        Ok(port)
    }

    /// The path to configure the code under test with.
    pub fn path(&self) -> PathBuf {
        match (&self.link, &self.plugged) {
            (Some(link), _) => link.clone(),
            (None, Some(p)) => p.slave_path.clone(),
            (None, None) => PathBuf::from("/dev/null/unplugged"),
        }
    }

    /// Bytes from the device to the code under test.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let Some(p) = &self.plugged else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "device is unplugged",
            ));
        };
        let mut master = lock(&p.master);
        master.write_all(bytes)?;
        master.flush()
    }

    /// Pull the cable: the master closes (the code under test sees a hang-up) and the path vanishes.
    pub fn unplug(&mut self) {
        if let Some(mut p) = self.plugged.take() {
            p.stop.store(true, Ordering::SeqCst);
            if let Some(reader) = p.reader.take() {
                let _ = reader.join();
            }
            if let Some(link) = &self.link {
                let _ = std::fs::remove_file(link);
            }
        }
    }

    /// Plug the device back in: a new pty pair, and the stable path points at it again.
    pub fn replug(&mut self) -> io::Result<()> {
        self.unplug();
        let (master, slave) = {
            let _guard = lock(&PAIR_LOCK);
            TTYPort::pair().map_err(io::Error::from)?
        };
        let slave_path = PathBuf::from(
            slave
                .name()
                .ok_or_else(|| io::Error::other("pty slave has no name"))?,
        );
        let mut reader_side = master.try_clone_native().map_err(io::Error::from)?;
        reader_side
            .set_timeout(Duration::from_millis(20))
            .map_err(io::Error::from)?;
        let master = Arc::new(Mutex::new(master));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            let responder = self.responder.clone();
            let master = master.clone();
            std::thread::Builder::new()
                .name("sim-device".into())
                .spawn(move || {
                    let mut buf = [0u8; 1024];
                    while !stop.load(Ordering::SeqCst) {
                        match io::Read::read(&mut reader_side, &mut buf) {
                            Ok(n) if n > 0 => {
                                let answer = (lock(&*responder))(&buf[..n]);
                                if !answer.is_empty() {
                                    let mut m = lock(&master);
                                    let _ = m.write_all(&answer);
                                    let _ = m.flush();
                                }
                            }
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                })?
        };
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
            std::os::unix::fs::symlink(&slave_path, link)?;
        }
        self.plugged = Some(Plugged {
            slave_path,
            master,
            _slave: slave,
            stop,
            reader: Some(reader),
        });
        Ok(())
    }

    pub fn is_plugged(&self) -> bool {
        self.plugged.is_some()
    }
}

impl Drop for SimPort {
    fn drop(&mut self) {
        self.unplug();
    }
}
