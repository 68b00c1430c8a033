//! Shared test fixtures: a terminal in a temporary root with keys made at test time, bundle and
//! document builders (including hostile ones), a tiny loopback HTTP server, and child-process helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kassa_packaging::bundle::{self, Payload, Release};
use kassa_packaging::channel::{CHANNEL_TYPE, ChannelBody};
use kassa_packaging::envelope::Envelope;
use kassa_packaging::install::{self, Outcome, Request, Source, Updater};
use kassa_packaging::keys::{PublicKey, Purpose, SecretKey, Signature};
use kassa_packaging::manifest::FileEntry;
use kassa_packaging::trust::{FloorReset, ROOT_TYPE, Role, RootBody};
use sha2::{Digest, Sha256};

/// Keys of one product, made fresh for every test.
pub struct Keys {
    /// Offline root keys (threshold 2).
    pub root: Vec<SecretKey>,
    /// Release keys (threshold 2).
    pub release: Vec<SecretKey>,
    /// Online channel key (threshold 1).
    pub channel: SecretKey,
}

impl Keys {
    pub fn new() -> Keys {
        let gen_n = |n| {
            (0..n)
                .map(|_| SecretKey::generate().unwrap())
                .collect::<Vec<_>>()
        };
        Keys {
            root: gen_n(3),
            release: gen_n(3),
            channel: SecretKey::generate().unwrap(),
        }
    }
}

fn pubs(keys: &[&SecretKey]) -> Vec<PublicKey> {
    keys.iter().map(|k| k.public()).collect()
}

/// A root document of `version` with the given roles, signed by `signers`.
pub fn root_doc(
    product: &str,
    version: u64,
    root_keys: &[&SecretKey],
    release_keys: &[&SecretKey],
    channel_key: &SecretKey,
    signers: &[&SecretKey],
) -> Vec<u8> {
    let body = RootBody {
        kind: ROOT_TYPE.into(),
        product: product.into(),
        version,
        root: Role::new(&pubs(root_keys), 2),
        release: Role::new(&pubs(release_keys), 2),
        channel: Role::new(&[channel_key.public()], 1),
        floor_reset: None,
    };
    let mut env = Envelope::new(&body).unwrap();
    for s in signers {
        env.sign(Purpose::Root, s);
    }
    env.to_bytes().unwrap()
}

/// A root like [`root_doc`] (product `kassa`) that also carries a signed floor reset.
pub fn root_doc_with_reset(
    version: u64,
    root_keys: &[&SecretKey],
    release_keys: &[&SecretKey],
    channel_key: &SecretKey,
    signers: &[&SecretKey],
    reset: FloorReset,
) -> Vec<u8> {
    let body = RootBody {
        kind: ROOT_TYPE.into(),
        product: "kassa".into(),
        version,
        root: Role::new(&pubs(root_keys), 2),
        release: Role::new(&pubs(release_keys), 2),
        channel: Role::new(&[channel_key.public()], 1),
        floor_reset: Some(reset),
    };
    let mut env = Envelope::new(&body).unwrap();
    for s in signers {
        env.sign(Purpose::Root, s);
    }
    env.to_bytes().unwrap()
}

/// A channel document signed by `key`.
pub fn channel_doc(
    key: &SecretKey,
    version: u64,
    latest_seq: u64,
    issued_at: u64,
    expires: u64,
) -> Vec<u8> {
    let body = ChannelBody {
        kind: CHANNEL_TYPE.into(),
        product: "kassa".into(),
        channel: "stable".into(),
        version,
        latest_seq,
        issued_at,
        expires,
    };
    let mut env = Envelope::new(&body).unwrap();
    env.sign(Purpose::Channel, key);
    env.to_bytes().unwrap()
}

/// The new agent as a shell script: `kassa selftest` runs `selftest_body`.
pub fn agent_script(seq: u64, selftest_body: &str) -> String {
    format!(
        "#!/bin/sh\n# kassa agent stand-in, release {seq}\nif [ \"$1\" = selftest ]; then\n{selftest_body}\nfi\nexit 0\n"
    )
}

pub const HEALTHY: &str = "exit 0";

/// One file of a test payload.
pub struct TestFile {
    pub path: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub mode: u32,
    pub link: Vec<u8>,
}

impl TestFile {
    pub fn file(path: &str, data: &[u8], mode: u32) -> TestFile {
        TestFile {
            path: path.as_bytes().to_vec(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            mode,
            link: Vec::new(),
        }
    }
    pub fn entry(path: &[u8], kind: tar::EntryType, link: &[u8]) -> TestFile {
        TestFile {
            path: path.to_vec(),
            kind,
            data: Vec::new(),
            mode: 0o644,
            link: link.to_vec(),
        }
    }
    pub fn manifest_entry(&self) -> FileEntry {
        FileEntry {
            path: String::from_utf8(self.path.clone()).unwrap(),
            sha256: hex::encode(Sha256::digest(&self.data)),
            size: self.data.len() as u64,
            mode: self.mode,
        }
    }
}

/// A tar stream written header by header, so tests can put in it what `tar::Builder` refuses
/// (`..`, absolute paths, non-UTF-8 names, devices, links).
pub fn raw_tar(files: &[TestFile]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in files {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..f.path.len()].copy_from_slice(&f.path);
        h.as_old_mut().linkname[..f.link.len()].copy_from_slice(&f.link);
        h.set_size(f.data.len() as u64);
        h.set_mode(f.mode);
        h.set_mtime(0);
        h.set_entry_type(f.kind);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&f.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A terminal in a temporary root, with its keys and trust root installed.
pub struct Terminal {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub work: PathBuf,
    pub keys: Keys,
    counter: AtomicUsize,
}

impl Terminal {
    pub fn new() -> Terminal {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let work = dir.path().join("work");
        std::fs::create_dir_all(root.join("etc/kassa")).unwrap();
        std::fs::create_dir_all(root.join("var/lib/kassa")).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let keys = Keys::new();
        let k = &keys;
        let doc = root_doc(
            "kassa",
            1,
            &[&k.root[0], &k.root[1], &k.root[2]],
            &[&k.release[0], &k.release[1], &k.release[2]],
            &k.channel,
            &[&k.root[0], &k.root[1]],
        );
        std::fs::write(root.join("etc/kassa/root.json"), doc).unwrap();
        let t = Terminal {
            dir,
            root,
            work,
            keys,
            counter: AtomicUsize::new(0),
        };
        t.set_config("");
        t
    }

    /// Writes update.toml: test defaults plus `extra` lines.
    pub fn set_config(&self, extra: &str) {
        let defaults = [
            format!("arch = \"{}\"", std::env::consts::ARCH),
            "restart_cmd = \"\"".to_string(),
            "busy_timeout_secs = 0".to_string(),
            "health_timeout_secs = 20".to_string(),
        ];
        let mut text: String = defaults
            .iter()
            .filter(|d| !extra.contains(d.split(" =").next().unwrap_or("")))
            .map(|d| format!("{d}\n"))
            .collect();
        text.push_str(extra);
        text.push('\n');
        std::fs::write(self.root.join("etc/kassa/update.toml"), text).unwrap();
    }

    pub fn updater(&self) -> Updater {
        Updater::open(&self.root).unwrap()
    }

    pub fn release(&self, seq: u64) -> Release {
        Release {
            product: "kassa".into(),
            channel: "stable".into(),
            arch: std::env::consts::ARCH.into(),
            version: format!("1.{seq}.0"),
            seq,
            epoch: 0,
            issued_at: install::now(),
            irreversible_migration: false,
        }
    }

    /// Files of release `seq`: the agent script and a data file, so a mix of versions is visible.
    pub fn files(seq: u64, selftest: &str) -> Vec<TestFile> {
        vec![
            TestFile::file("bin/kassa", agent_script(seq, selftest).as_bytes(), 0o755),
            TestFile::file(
                "share/release.txt",
                format!("release {seq}\n").as_bytes(),
                0o644,
            ),
        ]
    }

    pub fn payload(files: &[TestFile]) -> Payload {
        let entries = files.iter().map(|f| f.manifest_entry()).collect();
        bundle::payload_from_tar(raw_tar(files), entries, 3).unwrap()
    }

    /// Writes a bundle signed by `signers`, returns its path.
    pub fn write_bundle(
        &self,
        release: &Release,
        payload: &Payload,
        signers: &[&SecretKey],
    ) -> PathBuf {
        let manifest = bundle::manifest_bytes(&bundle::build_manifest(release, payload)).unwrap();
        let sigs = bundle::sign_manifest(&manifest, signers);
        self.write_bundle_raw(&manifest, &sigs, payload)
    }

    pub fn write_bundle_raw(
        &self,
        manifest: &[u8],
        sigs: &[Signature],
        payload: &Payload,
    ) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let path = self.work.join(format!("bundle-{n}.kup"));
        let mut out = Vec::new();
        bundle::write_bundle(
            &mut out,
            manifest,
            sigs,
            &mut payload.compressed.as_slice(),
            payload.compressed.len() as u64,
        )
        .unwrap();
        std::fs::write(&path, out).unwrap();
        path
    }

    /// Two release signatures: the threshold.
    pub fn signers(&self) -> [&SecretKey; 2] {
        [&self.keys.release[0], &self.keys.release[1]]
    }

    /// A properly signed bundle of release `seq` whose selftest runs `selftest`.
    pub fn bundle_with(&self, release: &Release, selftest: &str) -> PathBuf {
        let payload = Terminal::payload(&Terminal::files(release.seq, selftest));
        self.write_bundle(release, &payload, &self.signers())
    }

    pub fn good_bundle(&self, seq: u64) -> PathBuf {
        self.bundle_with(&self.release(seq), HEALTHY)
    }

    pub fn install_file(&self, path: &Path) -> kassa_packaging::Result<Outcome> {
        self.updater().install(&Request {
            bundle: Source::File(path.to_path_buf()),
            channel: None,
            wait_for_lock: true,
        })
    }

    pub fn current_seq(&self) -> Option<u64> {
        self.updater().layout.current_seq().unwrap()
    }

    /// The release number every file of the running version claims; panics on a mix.
    pub fn running_release(&self) -> Option<u64> {
        let cur = self.root.join("opt/kassa/current");
        let script = std::fs::read_to_string(cur.join("bin/kassa")).ok()?;
        let data = std::fs::read_to_string(cur.join("share/release.txt")).unwrap();
        let a: u64 = script
            .split("release ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let b: u64 = data.trim().trim_start_matches("release ").parse().unwrap();
        assert_eq!(a, b, "files of two releases are mixed in current");
        Some(a)
    }

    /// Entries of `versions/` (names).
    pub fn version_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("opt/kassa/versions"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Starts the real binary on this root.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kassa-update"));
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    pub fn pause_dir(&self) -> PathBuf {
        let p = self.dir.path().join("pause");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Starts `install SOURCE` paused at `stage`, waits until it is there, returns the child.
    pub fn spawn_paused(&self, source: &str, stage: &str) -> Child {
        let pause = self.pause_dir();
        let mut child = self
            .command(&["install", source])
            .env(install::PAUSE_AT_ENV, stage)
            .env(install::PAUSE_DIR_ENV, &pause)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let marker = pause.join(stage);
        wait_for(&format!("child to pause at {stage}"), || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!("kassa-update exited with {st} before reaching {stage}");
            }
            marker.exists()
        });
        child
    }
}

/// Polls `cond` until true, failing the test after a generous deadline (no timing assertions).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a child's stderr lines into a shared buffer from a thread.
pub fn collect_lines(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// What the test server sends.
pub struct ServerState {
    /// The file served at any path.
    pub body: Vec<u8>,
    /// Close the connection after this many body bytes of the next response (simulated drop).
    pub cut_next_at: Option<usize>,
    /// `Range` header of every request (empty string when none).
    pub ranges: Vec<String>,
    /// Answer with a body that never ends (no length; zeros until the client hangs up).
    pub endless: bool,
}

/// A tiny HTTP/1.1 server on 127.0.0.1 with `Range` support, stopped when dropped.
pub struct TestServer {
    pub state: Arc<Mutex<ServerState>>,
    pub url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl TestServer {
    pub fn start(body: Vec<u8>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ServerState {
            body,
            cut_next_at: None,
            ranges: Vec::new(),
            endless: false,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = serve(conn, &st);
                }
            }
        });
        TestServer {
            state,
            url: format!("http://{addr}/bundle.kup"),
            stop,
            addr,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<ServerState>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut range = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range:") {
            range = v.trim().to_string();
        }
    }
    let (body, cut, endless) = {
        let mut s = state.lock().unwrap();
        s.ranges.push(range.clone());
        (s.body.clone(), s.cut_next_at.take(), s.endless)
    };
    if endless {
        write!(conn, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
        let zeros = [0u8; 64 * 1024];
        // Ends only when the client hangs up (the write then fails).
        loop {
            conn.write_all(&zeros)?;
        }
    }
    let start = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, slice, extra) = match start {
        Some(s) if s < body.len() => (
            "206 Partial Content",
            &body[s..],
            format!(
                "Content-Range: bytes {s}-{}/{}\r\n",
                body.len() - 1,
                body.len()
            ),
        ),
        Some(_) => ("416 Range Not Satisfiable", &body[..0], String::new()),
        None => ("200 OK", &body[..], String::new()),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        slice.len()
    )?;
    let n = cut.unwrap_or(slice.len()).min(slice.len());
    conn.write_all(&slice[..n])?;
    conn.flush()?;
    Ok(())
}
