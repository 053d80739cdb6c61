//! `edgedav`: a WebDAV server whose protocol logic is a WASI 0.2 component.
//!
//! This binary is the native host. It embeds the handler component (built
//! from `handler/` by the build script), serves HTTP, and provides the
//! component's imports: storage on a local directory and an in-memory lock
//! table. WebDAV semantics live entirely in the component.
//!
//! With `--config FILE` it is a production server (see `app.rs`): users and
//! HTTP Basic authentication, per-user homes, permissions and quotas, TLS,
//! rate limits, metrics and sandbox limits. Without it, the command line
//! stands for a configuration of one open binding (`zero_config`), served
//! by the same start-up path; the `--s3-*` flags become the same home
//! description a configuration file gives a user's `home`.

mod app;
mod cluster;
mod config;
mod error;
mod gate;
mod locks;
mod metrics;
mod net;
mod runtime;
mod storage;

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wasmtime::error::Context;

use crate::config::{BindingConfig, Config, LogFormat};
use crate::storage::home::HomeSpec;
use crate::storage::s3::S3Options;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a directory over WebDAV.
    ///
    /// Locks are held in memory: they do not survive a restart, and each
    /// expires after at most 3600 seconds (a request for an infinite timeout
    /// is granted 3600 seconds) unless refreshed.
    ///
    /// Without --config: one plain listener, no authentication. With
    /// --config FILE: everything the file configures (see
    /// examples/edgedav.toml); SIGHUP reloads its users and certificates.
    Serve(ServeArgs),
    /// Check a configuration file without serving; exits non-zero with the
    /// file, key and reason of the first problem.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Read a password from stdin and print its argon2id PHC hash, for a
    /// user's `password_hash`.
    HashPassword,
}

#[derive(Args)]
struct ServeArgs {
    /// Serve what this TOML configuration file describes.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["root", "listen", "depth_infinity_limit", "component", "no_instance_reuse"])]
    config: Option<PathBuf>,
    /// Directory to serve; created if missing.
    #[arg(long, default_value = "./data")]
    root: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:4918")]
    listen: SocketAddr,
    /// Run this wasi:http component instead of the embedded handler.
    #[arg(long, value_name = "FILE")]
    component: Option<PathBuf>,
    /// Most entries a PROPFIND with `Depth: infinity` may return; 0 refuses
    /// such requests.
    #[arg(long, value_name = "N", default_value_t = 0)]
    depth_infinity_limit: u32,
    /// Give every request a fresh component instance, never one that
    /// answered an earlier request (config: `sandbox.instance_reuse`).
    #[arg(long)]
    no_instance_reuse: bool,
    #[command(flatten)]
    s3: S3Options,
}

fn main() -> wasmtime::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            tune_malloc();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let served = runtime.block_on(serve(args));
            // Serving is over (the shutdown grace has passed): what still
            // runs is dropped now, each request logged as aborted and each
            // unfinished upload discarded, and the exit waits only briefly
            // for blocking work, so it is bounded by the grace.
            runtime.shutdown_timeout(net::server::EXIT_WAIT);
            served
        }
        Command::CheckConfig { file } => check_config(&file),
        Command::HashPassword => hash_password(),
    }
}

/// Keeps transfer buffers in the heap. By default glibc's malloc serves
/// blocks from 128 KiB up (a download's chunks) with a fresh `mmap` each, and
/// gives a thread's heap back to the kernel whenever 128 KiB are free at its
/// top: every chunk then faults in fresh zeroed pages, and every return
/// flushes the TLB of every core. Fixed thresholds stop that churn (measured:
/// a fifth less server CPU per 1 MiB GET); peak memory is unchanged, since
/// what is kept is memory the process already had.
fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

/// Logs to stderr, as text or JSON lines; `RUST_LOG` overrides `level`.
fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn check_config(file: &std::path::Path) -> wasmtime::Result<()> {
    match config::load(file) {
        Ok(config) => {
            println!(
                "{}: ok ({} bindings, {} users)",
                file.display(),
                config.bindings.len(),
                config.users.len()
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

fn hash_password() -> wasmtime::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the password from stdin")?;
    // One line: drop the line break a shell or `echo` adds.
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("no password on stdin");
        std::process::exit(2);
    }
    println!("{}", gate::users::hash_password(password));
    Ok(())
}

async fn serve(args: ServeArgs) -> wasmtime::Result<()> {
    if let Some(path) = &args.config {
        if args.s3.bucket.is_some() {
            eprintln!(
                "the --s3-* options configure the zero-config server; they do not mix with --config"
            );
            std::process::exit(2);
        }
        let config = match config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        init_logging(config.log.format, &config.log.level);
        return app::serve(Some(path), config).await;
    }
    init_logging(LogFormat::Text, "info");
    storage::s3::set_log_each(args.s3.log_requests);
    app::serve(None, zero_config(&args)).await
}

/// The configuration the zero-config command line stands for: one plain
/// binding on `--listen` with a configured server's defaults, the embedded
/// (or `--component`) handler, and the directory or bucket served to
/// everyone. It is served by the very path a configuration file takes.
fn zero_config(args: &ServeArgs) -> Config {
    let open = match &args.s3.bucket {
        Some(bucket) => HomeSpec::S3 {
            bucket: bucket.clone(),
            prefix: args.s3.prefix.clone(),
            endpoint: args.s3.endpoint.clone(),
            region: args.s3.region.clone(),
            path_style: args.s3.path_style,
        },
        None => HomeSpec::Local {
            path: args.root.clone(),
        },
    };
    let mut config = Config::default();
    config.server.component = args.component.clone();
    config.server.depth_infinity_limit = args.depth_infinity_limit;
    config.sandbox.instance_reuse = !args.no_instance_reuse;
    config.bindings.push(BindingConfig::defaults(args.listen));
    config.open = Some(open);
    config
}
