//! `astack-server`: the reference REST server of astack (SPEC §10).
//!
//! ```text
//! astack-server [--listen 127.0.0.1:8080] [--config FILE] [--data DIR | --redis URL | --memory]
//! ASTACK_ADMIN_KEY       the bootstrap admin key (a well-formed key); generated and printed when unset
//! ASTACK_SIGNING_SECRET  the token signing secret (≥ 32 bytes, kid `default`) when the config names none
//! ```
//!
//! State is kept, by default, in SQLite under `./astack-data` (`--data DIR` to move it), so it
//! survives a restart or a crash; `--redis URL` shares it with other servers through Redis;
//! `--memory` keeps it in process only. A store named in the configuration file is used when no
//! flag names one.
//!
//! A bad configuration stops the server before it listens, with a message on stderr and exit
//! code 2. SIGTERM or Ctrl-C shut it down gracefully: in-flight requests finish first.

mod app;
mod body;
mod handlers;
mod log;
mod references;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use astack::config::{Secret, SigningKeyConfig, StoreConfig, StoreKind};
use astack::{Config, Engine, Operation, Principal};
use clap::Parser;

/// The reference REST server of astack.
#[derive(Debug, Parser)]
#[command(name = "astack-server", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,

    /// Engine configuration (SPEC §11), a JSON file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Keep state in SQLite under DIR (the default, in ./astack-data).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["redis", "memory"])]
    data: Option<PathBuf>,

    /// Share state with other servers through Redis at URL (redis://host:port/db).
    #[arg(long, value_name = "URL", conflicts_with = "memory")]
    redis: Option<String>,

    /// Keep state in process memory only: everything is lost when the server stops.
    #[arg(long)]
    memory: bool,

    /// Benchmark only: serve the session routes with canned answers and no engine at all, to
    /// measure the HTTP stack's own ceiling. Never use it to serve anything.
    #[arg(long, hide = true)]
    no_engine: bool,

    /// Benchmark only: serve with the engine's checks switched off, every request that needs a
    /// key run as the admin key, unverified: to measure what the checks cost. Never use it to
    /// serve anything.
    #[arg(long, hide = true, conflicts_with = "no_engine")]
    no_checks: bool,

    /// Benchmark only, with --no-engine: spin this many nanoseconds in each session created, a
    /// stand-in for the engine's work (benches/server/budget.sh).
    #[arg(long, hide = true, requires = "no_engine", default_value_t = 0, value_name = "NS")]
    ceiling_work_ns: u64,

    /// Benchmark only, with --no-engine: keep this many bytes for each session created, never
    /// freed, a stand-in for the session and audit record the engine keeps (benches/server/budget.sh).
    #[arg(long, hide = true, requires = "no_engine", default_value_t = 0, value_name = "BYTES")]
    ceiling_keep_bytes: usize,

    /// Print no request log lines.
    #[arg(long)]
    quiet: bool,
}

/// Every allocation of the server, the ceiling's too (one binary), goes to mimalloc: under glibc's
/// malloc, allocation slowed down as the engine's heap of sessions and audit records grew.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a bad configuration or environment.
const EXIT_CONFIG: u8 = 2;
/// Exit code when the server cannot start or fails while serving.
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    let args = Args::parse();
    let setup = if args.no_engine { Ok(None) } else { build_engine(&args).map(Some) };
    let (engine, admin_key) = match setup {
        Ok(Some((engine, key))) => (Some(engine), key),
        Ok(None) => (None, None),
        Err(message) => {
            eprintln!("astack-server: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("astack-server: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(serve(args, engine, admin_key)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("astack-server: {message}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Reads the configuration and the environment, builds the engine and bootstraps the admin key.
/// Returns the engine, kept for the life of the process ([`app::AppState`]; [`serve`] flushes it
/// before the process exits), and the admin key when it was generated (to print once).
fn build_engine(args: &Args) -> Result<(&'static Engine, Option<String>), String> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
            Config::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(secret) = env_var("ASTACK_SIGNING_SECRET")? {
        if config.signing_keys.is_empty() {
            if secret.len() < 32 {
                return Err("ASTACK_SIGNING_SECRET must be at least 32 bytes".into());
            }
            config.signing_keys.push(SigningKeyConfig { kid: "default".into(), secret: Secret(secret) });
        }
    }
    config.store = store(args, config.store);
    eprintln!("astack-server: state in {}", describe(&config.store));
    let engine = Engine::new(config).map_err(|e| e.to_string())?;
    let admin = env_var("ASTACK_ADMIN_KEY")?;
    let generated = engine.bootstrap_admin_key(admin.as_deref()).map_err(|e| match e {
        astack::Error::InvalidConfig { .. } => {
            "ASTACK_ADMIN_KEY is not a well-formed key (ak_ + 30 base62 characters + a 6-character checksum)"
                .to_owned()
        }
        other => other.to_string(),
    })?;
    Ok((Box::leak(Box::new(engine)), generated))
}

/// The default data directory (relative to the working directory).
const DEFAULT_DATA_DIR: &str = "astack-data";

/// The store the flags choose: `--redis` or `--data` (each keeping the file's other settings of
/// its kind), `--memory`; else the configuration file's; else SQLite in the default data
/// directory.
fn store(args: &Args, configured: StoreConfig) -> StoreConfig {
    let sqlite_in = |dir: &Path| StoreConfig::sqlite(dir.join("astack.db").to_string_lossy());
    match (&args.redis, &args.data) {
        (Some(url), _) if configured.kind == StoreKind::Redis => StoreConfig { url: Some(url.clone()), ..configured },
        (Some(url), _) => StoreConfig::redis(url.clone()),
        (None, Some(dir)) if configured.kind == StoreKind::Sqlite => StoreConfig { path: sqlite_in(dir).path, ..configured },
        (None, Some(dir)) => sqlite_in(dir),
        (None, None) if args.memory => StoreConfig::default(),
        (None, None) if configured != StoreConfig::default() => configured,
        (None, None) => sqlite_in(Path::new(DEFAULT_DATA_DIR)),
    }
}

/// Where the state lives, for the start banner (never a Redis password).
fn describe(store: &StoreConfig) -> String {
    match store.kind {
        StoreKind::Memory => "memory (lost at exit)".to_owned(),
        StoreKind::Sqlite => format!("SQLite at {}", store.path.as_deref().unwrap_or("?")),
        StoreKind::Redis => "Redis (shared)".to_owned(),
    }
}

/// An environment variable: `None` when unset, an error when not UTF-8.
fn env_var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

async fn serve(args: Args, engine: Option<&'static Engine>, admin_key: Option<String>) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let logger = log::Logger::new(!args.quiet);
    let router = match engine {
        Some(engine) => {
            // Twice a second, expire what is due, on a thread that may block on the disk or the
            // network. (What the store holds back, the engine's own thread writes: `flush_ms`.)
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tick.tick().await;
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Err(e) = engine.sweep() {
                            eprintln!("astack-server: sweep failed: {e}");
                        }
                    })
                    .await;
                }
            });
            if args.no_checks {
                references::unchecked_router(engine, admin_principal(engine, admin_key.as_deref())?, logger)
            } else {
                app::router(engine, logger)
            }
        }
        None => references::ceiling_router(logger, references::StandIn::new(Duration::from_nanos(args.ceiling_work_ns), args.ceiling_keep_bytes)),
    };
    if args.no_checks {
        eprintln!("astack-server: BENCHMARK MODE (--no-checks): every request runs as the admin key, no key checked");
    }
    banner(local, engine.is_some(), admin_key.as_deref());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    if let Some(engine) = engine {
        engine.flush().map_err(|e| format!("cannot write the last changes: {e}"))?;
    }
    eprintln!("astack-server: stopped");
    Ok(())
}

/// The admin key's principal, for `--no-checks`: the key `generated`, else ASTACK_ADMIN_KEY's,
/// authorized once.
fn admin_principal(engine: &Engine, generated: Option<&str>) -> Result<&'static Principal, String> {
    let key = match generated {
        Some(key) => key.to_owned(),
        None => env_var("ASTACK_ADMIN_KEY")?.ok_or("no admin key")?,
    };
    let authorization = engine.authorize(&key, Operation::Admin).map_err(|denial| format!("the admin key: {}", denial.error))?;
    Ok(Box::leak(Box::new(authorization.principal)))
}

/// What a newcomer needs at start: the admin key when generated and curl lines to paste.
fn banner(local: SocketAddr, engine: bool, admin_key: Option<&str>) {
    let base = format!("http://{local}");
    if !engine {
        eprintln!("astack-server: BENCHMARK CEILING MODE (--no-engine): no keys, no checks, canned answers");
        eprintln!("astack-server: listening on {base}");
        return;
    }
    let mut text = format!("astack-server {} listening on {base}\n\n", astack::VERSION);
    match admin_key {
        Some(key) => text.push_str(&format!(
            "Admin key (generated; shown this once, set ASTACK_ADMIN_KEY to choose your own):\n  export ASTACK_KEY={key}\n\n"
        )),
        None => text.push_str("Admin key: the one in ASTACK_ADMIN_KEY\n  export ASTACK_KEY=\"$ASTACK_ADMIN_KEY\"\n\n"),
    }
    text.push_str(&format!(
        "Try:\n  curl -X POST {base}/api/v1/sessions -H \"Authorization: Bearer $ASTACK_KEY\" -H \"Content-Type: application/json\" -d '{{\"end_user_id\": \"user_123\", \"connection_type\": \"websocket\", \"quality\": \"high\", \"features\": [\"vision\", \"transcription\"]}}'\n  curl {base}/api/v1/sessions -H \"Authorization: Bearer $ASTACK_KEY\"\n  curl -i {base}/api/v1/usage -H \"Authorization: Bearer $ASTACK_KEY\"\n"
    ));
    eprintln!("{text}");
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    eprintln!("astack-server: shutting down");
}
