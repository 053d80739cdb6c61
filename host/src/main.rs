//! `edgedav`: a WebDAV server whose protocol logic is a WASI 0.2 component.
//!
//! This binary is the native host. It embeds the handler component (built
//! from `handler/` by the build script), serves HTTP, and provides the
//! component's imports: storage on a local directory and an in-memory lock
//! table. WebDAV semantics live entirely in the component.

mod bindings;
mod locks;
mod runtime;
mod server;
mod storage;

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::info;
use tracing_subscriber::EnvFilter;
use wasmtime::error::Context;

use crate::locks::LockTable;
use crate::runtime::{GuestSettings, Runtime};
use crate::storage::local::LocalBackend;

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
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
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
}

#[tokio::main]
async fn main() -> wasmtime::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let Command::Serve(args) = Cli::parse().command;
    serve(args).await
}

async fn serve(args: ServeArgs) -> wasmtime::Result<()> {
    let backend = LocalBackend::open(&args.root)
        .with_context(|| format!("opening the store at {}", args.root.display()))?;
    let component = match &args.component {
        Some(path) => {
            Cow::Owned(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => Cow::Borrowed(runtime::EMBEDDED_HANDLER),
    };
    let settings = GuestSettings {
        depth_infinity_limit: args.depth_infinity_limit,
    };
    let runtime = Runtime::new(
        &component,
        Arc::new(backend),
        Arc::new(LockTable::default()),
        settings,
    )?;

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    // The one line on stdout: tests and scripts read the bound address here.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "edgedav listening on http://{address}")?;
    stdout.flush()?;
    drop(stdout);
    info!(root = %args.root.display(), "serving");

    server::serve(listener, Arc::new(runtime), shutdown_signal()).await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
