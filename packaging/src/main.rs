//! `kassa-update`: the command line over the kassa-packaging library. Release side: keygen, build,
//! sign, root-new, channel-new. Terminal side: verify, install, status, commit, check-trial, rollback.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use kassa_packaging::bundle::{self, Release};
use kassa_packaging::channel::{CHANNEL_TYPE, ChannelBody};
use kassa_packaging::envelope::{Envelope, MAX_DOCUMENT_BYTES};
use kassa_packaging::install::{self, Outcome, Request, Source, Updater};
use kassa_packaging::keys::{PublicKey, Purpose, SecretKey};
use kassa_packaging::trust::{FloorReset, ROOT_TYPE, Role, RootBody};
use kassa_packaging::{Error, fsutil};

/// Exit status when an open sale or payment postponed the switch (EX_TEMPFAIL).
const EXIT_DEFERRED: u8 = 75;

#[derive(Parser)]
#[command(
    name = "kassa-update",
    version,
    about = "Signed updates for kassa store terminals"
)]
struct Cli {
    /// Directory every terminal path (/etc/kassa, /var/lib/kassa, /opt/kassa, /run/kassa) lives under.
    #[arg(long, global = true, default_value = "/", env = "KASSA_UPDATE_ROOT")]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an ed25519 key pair: NAME.key (secret, mode 0600) and NAME.pub.
    Keygen {
        /// Directory to write the key files to.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// Base name of the key files.
        #[arg(long)]
        name: String,
    },
    /// Create an unsigned trust root; sign it with `sign --root-doc` by the root key holders.
    RootNew(RootNewArgs),
    /// Create an unsigned channel document; sign it with `sign --channel-doc`.
    ChannelNew(ChannelNewArgs),
    /// Build a bundle from a payload directory (optionally signing it right away).
    Build(BuildArgs),
    /// Add a signature to a bundle, root or channel document.
    Sign(SignArgs),
    /// Verify a bundle against this terminal's trust root and identity; changes nothing.
    Verify {
        /// The bundle file.
        bundle: PathBuf,
    },
    /// Install a bundle from a file or an http(s) URL (default: `url` in update.toml).
    Install(InstallArgs),
    /// Show versions, trial, floors and the last event; also rolls back an expired trial.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Declare the version on trial healthy (for an outside health check).
    Commit,
    /// Roll back a trial that can no longer pass (run by the timer and at boot).
    CheckTrial {
        /// This is the first run since boot: an uncommitted trial has failed.
        #[arg(long)]
        boot: bool,
    },
    /// Go back to the kept previous version; the version left is never retried.
    Rollback,
    /// Accept a new trust root (version N+1, signed by old and new root keys).
    RotateRoot {
        /// The new root.json.
        file: PathBuf,
    },
}

#[derive(Args)]
struct RootNewArgs {
    /// Product the root is for.
    #[arg(long, default_value = "kassa")]
    product: String,
    /// Root version (1 for the first, N+1 for a rotation).
    #[arg(long)]
    version: u64,
    /// Public key files of the root role.
    #[arg(long = "root-key", required = true)]
    root_keys: Vec<PathBuf>,
    /// Signatures needed from root keys.
    #[arg(long)]
    root_threshold: u32,
    /// Public key files of the release role.
    #[arg(long = "release-key", required = true)]
    release_keys: Vec<PathBuf>,
    /// Signatures needed from release keys.
    #[arg(long)]
    release_threshold: u32,
    /// Public key files of the channel role.
    #[arg(long = "channel-key", required = true)]
    channel_keys: Vec<PathBuf>,
    /// Signatures needed from channel keys.
    #[arg(long, default_value_t = 1)]
    channel_threshold: u32,
    /// Recovery from a fast-forward: the highest release seq this root vouches for. Terminals
    /// whose floor is above it (pushed there by keys this root revokes) lower it when they accept
    /// the root. Needs the two other `--reset-*` values too.
    #[arg(long, requires_all = ["reset_epoch", "reset_channel_version"])]
    reset_seq: Option<u64>,
    /// The highest security epoch this root vouches for (with `--reset-seq`).
    #[arg(long, requires = "reset_seq")]
    reset_epoch: Option<u64>,
    /// The highest channel document version this root vouches for (with `--reset-seq`).
    #[arg(long, requires = "reset_seq")]
    reset_channel_version: Option<u64>,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ChannelNewArgs {
    /// Product.
    #[arg(long, default_value = "kassa")]
    product: String,
    /// Channel.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// Document version (increase with every publication).
    #[arg(long)]
    version: u64,
    /// Newest release seq on the channel.
    #[arg(long)]
    latest_seq: u64,
    /// Validity in days from now.
    #[arg(long, default_value_t = 7)]
    expires_in_days: u64,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct BuildArgs {
    /// Directory whose files become the version directory.
    #[arg(long)]
    payload: PathBuf,
    /// Product.
    #[arg(long, default_value = "kassa")]
    product: String,
    /// Channel.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// Architecture.
    #[arg(long, default_value = std::env::consts::ARCH)]
    arch: String,
    /// Semver version for people.
    #[arg(long)]
    version: String,
    /// Release order number.
    #[arg(long)]
    seq: u64,
    /// Security epoch.
    #[arg(long, default_value_t = 0)]
    epoch: u64,
    /// The release migrates the database irreversibly: terminals snapshot it first.
    #[arg(long)]
    irreversible_migration: bool,
    /// Release secret keys to sign with now (more can sign later with `sign`).
    #[arg(long = "key")]
    keys: Vec<PathBuf>,
    /// zstd level.
    #[arg(long, default_value_t = 19)]
    level: i32,
    /// Output bundle file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
#[group(required = true, multiple = false, id = "document")]
struct SignTarget {
    /// A bundle (signs its manifest with a release key).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// A root document (root key).
    #[arg(long)]
    root_doc: Option<PathBuf>,
    /// A channel document (channel key).
    #[arg(long)]
    channel_doc: Option<PathBuf>,
}

#[derive(Args)]
struct SignArgs {
    #[command(flatten)]
    target: SignTarget,
    /// Secret key file.
    #[arg(long)]
    key: PathBuf,
}

#[derive(Args)]
struct InstallArgs {
    /// Bundle file or http(s) URL; defaults to `url` in update.toml.
    source: Option<String>,
    /// Channel document file or URL (defaults to `channel_url` for URL installs); omit for USB installs.
    #[arg(long)]
    channel: Option<String>,
    /// Fail at once if another kassa-update runs, instead of waiting.
    #[arg(long)]
    no_wait: bool,
    /// Override `health_cmd` ("" leaves the trial to `kassa-update commit`).
    #[arg(long)]
    health_cmd: Option<String>,
    /// Override `health_timeout_secs`.
    #[arg(long)]
    health_timeout: Option<u64>,
    /// Override `busy_timeout_secs`.
    #[arg(long)]
    busy_timeout: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kassa-update: {e:#}");
            if matches!(e.downcast_ref::<Error>(), Some(Error::Busy(_))) {
                ExitCode::from(EXIT_DEFERRED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn public_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths.iter().map(|p| Ok(PublicKey::from_file(p)?)).collect()
}

fn sign_document(path: &Path, purpose: Purpose, key: &SecretKey) -> anyhow::Result<()> {
    let bytes = fsutil::read_capped(path, MAX_DOCUMENT_BYTES, "document")?;
    let mut env = Envelope::parse("document", &bytes)?;
    env.sign(purpose, key);
    fsutil::atomic_write(path, &env.to_bytes()?, 0o644)?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let root = cli.root;
    match cli.command {
        Command::Keygen { out_dir, name } => {
            let key = SecretKey::generate()?;
            let (key_path, pub_path) = key.write_pair(&out_dir, &name)?;
            println!(
                "key id {}\nsecret key {} (keep offline)\npublic key {}",
                key.public().keyid(),
                key_path.display(),
                pub_path.display()
            );
        }
        Command::RootNew(a) => {
            let body = RootBody {
                kind: ROOT_TYPE.into(),
                product: a.product,
                version: a.version,
                root: Role::new(&public_keys(&a.root_keys)?, a.root_threshold),
                release: Role::new(&public_keys(&a.release_keys)?, a.release_threshold),
                channel: Role::new(&public_keys(&a.channel_keys)?, a.channel_threshold),
                floor_reset: match (a.reset_seq, a.reset_epoch, a.reset_channel_version) {
                    (Some(seq), Some(epoch), Some(channel_version)) => Some(FloorReset {
                        seq,
                        epoch,
                        channel_version,
                    }),
                    _ => None,
                },
            };
            fsutil::atomic_write(&a.out, &Envelope::new(&body)?.to_bytes()?, 0o644)?;
        }
        Command::ChannelNew(a) => {
            let now = install::now();
            let body = ChannelBody {
                kind: CHANNEL_TYPE.into(),
                product: a.product,
                channel: a.channel,
                version: a.version,
                latest_seq: a.latest_seq,
                issued_at: now,
                expires: now.saturating_add(a.expires_in_days.saturating_mul(86_400)),
            };
            fsutil::atomic_write(&a.out, &Envelope::new(&body)?.to_bytes()?, 0o644)?;
        }
        Command::Build(a) => {
            let keys = a
                .keys
                .iter()
                .map(|p| SecretKey::from_file(p))
                .collect::<Result<Vec<_>, _>>()?;
            let payload = bundle::payload_from_dir(&a.payload, a.level)?;
            let release = Release {
                product: a.product,
                channel: a.channel,
                arch: a.arch,
                version: a.version,
                seq: a.seq,
                epoch: a.epoch,
                issued_at: install::now(),
                irreversible_migration: a.irreversible_migration,
            };
            let manifest = bundle::manifest_bytes(&bundle::build_manifest(&release, &payload))?;
            let sigs = bundle::sign_manifest(&manifest, &keys.iter().collect::<Vec<_>>());
            let mut out = Vec::new();
            bundle::write_bundle(
                &mut out,
                &manifest,
                &sigs,
                &mut payload.compressed.as_slice(),
                payload.compressed.len() as u64,
            )?;
            fsutil::atomic_write(&a.out, &out, 0o644)?;
            println!("built {} with {} signature(s)", a.out.display(), sigs.len());
        }
        Command::Sign(a) => {
            let key = SecretKey::from_file(&a.key)?;
            let t = a.target;
            if let Some(p) = t.bundle {
                bundle::add_signature(&p, &key, u64::MAX)?;
            } else if let Some(p) = t.root_doc {
                sign_document(&p, Purpose::Root, &key)?;
            } else if let Some(p) = t.channel_doc {
                sign_document(&p, Purpose::Channel, &key)?;
            } else {
                bail!("nothing to sign");
            }
            println!("signed with key id {}", key.public().keyid());
        }
        Command::Verify { bundle } => {
            let v = Updater::open(&root)?.verify(&bundle)?;
            let m = &v.manifest;
            println!(
                "OK: {} {} {} version {} seq {} epoch {} ({} files)",
                m.product,
                m.channel,
                m.arch,
                m.version,
                m.seq,
                m.epoch,
                m.files.len()
            );
        }
        Command::Install(a) => {
            let mut updater = Updater::open(&root)?;
            if let Some(c) = a.health_cmd {
                updater.config.health_cmd = c;
            }
            if let Some(t) = a.health_timeout {
                updater.config.health_timeout_secs = t;
            }
            if let Some(t) = a.busy_timeout {
                updater.config.busy_timeout_secs = t;
            }
            let source = a
                .source
                .or_else(|| updater.config.url.clone())
                .context("no bundle given and no `url` in update.toml")?;
            let bundle = Source::parse(&source);
            let channel = a.channel.or_else(|| match bundle {
                Source::Url(_) => updater.config.channel_url.clone(),
                Source::File(_) => None,
            });
            let req = Request {
                bundle,
                channel: channel.as_deref().map(Source::parse),
                wait_for_lock: !a.no_wait,
            };
            match updater.install(&req)? {
                Outcome::Installed { seq, version } => {
                    println!("installed seq {seq} ({version}), healthy and committed")
                }
                Outcome::OnTrial {
                    seq,
                    version,
                    deadline,
                } => println!(
                    "switched to seq {seq} ({version}); on trial until {deadline}: run `kassa-update commit` when healthy"
                ),
            }
        }
        Command::Status { json } => {
            let s = Updater::open(&root)?.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("current seq:   {:?}", s.current_seq);
                println!("previous seq:  {:?}", s.previous_seq);
                println!("highest seq:   {} (epoch {})", s.highest_seq, s.epoch);
                println!("trust root:    version {}", s.root_version);
                println!("bad seqs:      {:?}", s.bad_seqs);
                println!("channel doc:   version {}", s.channel_version);
                if let Some(t) = &s.trial {
                    println!("on trial:      seq {} until {}", t.seq, t.deadline);
                }
                println!("sale open:     {}", s.busy);
                if s.clock_went_backwards {
                    println!("WARNING:       the clock went backwards; online updates are refused");
                }
                if let Some(r) = &s.recovered {
                    println!("this run:      {r}");
                }
                if let Some(e) = &s.last_event {
                    println!("last event:    {e}");
                }
            }
        }
        Command::Commit => {
            let seq = Updater::open(&root)?.commit()?;
            println!("seq {seq} committed");
        }
        Command::CheckTrial { boot } => match Updater::open(&root)?.check_trial(boot)? {
            Some(report) => println!("{report}"),
            None => println!("no trial in progress"),
        },
        Command::Rollback => println!("{}", Updater::open(&root)?.rollback()?),
        Command::RotateRoot { file } => {
            let bytes = fsutil::read_capped(&file, MAX_DOCUMENT_BYTES, "root.json")?;
            let next = Updater::open(&root)?.rotate_root(&bytes)?;
            println!("trust root is now version {}", next.body.version);
            if let Some(r) = next.body.floor_reset {
                println!(
                    "this root lowers any floor above seq {}, epoch {}, channel version {} to it",
                    r.seq, r.epoch, r.channel_version
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
