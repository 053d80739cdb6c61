//! The configuration file (`edgedav serve --config FILE`, TOML).
//!
//! Parsing is strict so mistakes surface at start-up, not in production:
//! every table refuses unknown keys (`deny_unknown_fields`), and every value
//! is checked, with errors naming the file, the line, the key and the reason.
//! `examples/edgedav.toml` documents every setting; README's
//! "Configuration" section lists them.
//!
//! Durations are written `"500ms"`, `"30s"`, `"5m"`, `"2h"` or as a number of
//! seconds; sizes as `"64KiB"`, `"10MB"`, `"1GiB"` or a number of bytes.
//! Relative paths are relative to the directory of the file that names them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::gate::perms::{Permission, normalise_dir};
use crate::storage::home::HomeSpec;

#[cfg(test)]
mod tests;
mod validate;
mod values;

use self::validate::{validate, validate_user};
pub use self::values::{Dur, IpNet, Size, canonical_ip};

/// A configuration error: where, and why.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `bindings[0].tls.cert_file`.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// The whole file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub sandbox: SandboxConfig,
    pub admin: Option<AdminConfig>,
    /// Several hosts over one store (see [`ClusterConfig`]).
    pub cluster: Option<ClusterConfig>,
    #[serde(default)]
    pub bindings: Vec<BindingConfig>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Zero-config (`edgedav serve` without `--config`): this home is served
    /// to everyone, without authentication, on every binding. Never read
    /// from a file.
    #[serde(skip)]
    pub open: Option<HomeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Run this wasi:http component instead of the embedded handler.
    pub component: Option<PathBuf>,
    /// Most entries a `Depth: infinity` PROPFIND may return; 0 refuses it.
    #[serde(default)]
    pub depth_infinity_limit: u32,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[serde(default = "default_grace")]
    pub shutdown_grace: Dur,
    /// A separate TOML file with more `[[users]]`, reloaded with the config.
    pub users_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            component: None,
            depth_infinity_limit: 0,
            shutdown_grace: default_grace(),
            users_file: None,
        }
    }
}

fn default_grace() -> Dur {
    Dur(Duration::from_secs(10))
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter (`info`, `edgedav=debug,info`); `RUST_LOG` overrides it.
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Linear memory one component instance may use.
    #[serde(default = "default_max_memory")]
    pub max_memory: Size,
    /// Guest CPU time (time spent running wasm, not waiting for I/O) one
    /// request may use; 0 disables the deadline.
    #[serde(default = "default_cpu_time")]
    pub max_cpu_time: Dur,
    /// Most component instances alive at once (concurrent requests).
    #[serde(default = "default_instances")]
    pub max_instances: u32,
    /// Most instances one client IP may hold at once.
    #[serde(default = "default_instances_per_ip")]
    pub max_instances_per_ip: u32,
    /// How long a request may wait for a free instance before a 503.
    #[serde(default = "default_instance_wait")]
    pub instance_wait: Dur,
    /// Let an instance that answered a request cleanly answer later
    /// requests of the same user (bounded; see the README); false gives
    /// every request a fresh instance.
    #[serde(default = "yes")]
    pub instance_reuse: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            max_memory: default_max_memory(),
            max_cpu_time: default_cpu_time(),
            max_instances: default_instances(),
            max_instances_per_ip: default_instances_per_ip(),
            instance_wait: default_instance_wait(),
            instance_reuse: true,
        }
    }
}

fn default_max_memory() -> Size {
    Size(128 << 20)
}
fn default_cpu_time() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_instances() -> u32 {
    1000
}
fn default_instances_per_ip() -> u32 {
    64
}
fn default_instance_wait() -> Dur {
    Dur(Duration::from_secs(10))
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener (plain HTTP; keep it private). It serves
    /// `GET /metrics` (Prometheus) and `GET /healthz`.
    pub listen: SocketAddr,
}

/// Cluster mode: every host of a cluster reads the same configuration and
/// shares its locks and defender bans through one PostgreSQL (or
/// CockroachDB) database. Without this section everything stays in the
/// process.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or libpq's
    /// `key=value` form). The connection is not encrypted: keep the database
    /// on a private network (`sslmode=require` is refused).
    pub database_url: String,
    /// Connections this host keeps to the database.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// This host's name in logs and in the database; default: the
    /// machine's host name.
    pub node_name: Option<String>,
    /// The longest a statement (or a connection attempt) may take before
    /// the database counts as unreachable.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout: Dur,
}

fn default_pool_size() -> u32 {
    8
}

fn default_statement_timeout() -> Dur {
    Dur(Duration::from_secs(5))
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BindingConfig {
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate (reloaded on SIGHUP).
    pub tls: Option<TlsConfig>,
    /// Offer HTTP/2 (ALPN `h2` on TLS, h2c with prior knowledge on plain).
    #[serde(default = "yes")]
    pub http2: bool,
    /// Time a client has to send a request's headers: the first request's
    /// from the moment the connection is accepted (TLS handshake and HTTP/2
    /// preface included), a later HTTP/1 request's from its first byte.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout: Dur,
    /// A connection with no bytes moving either way for this long is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Dur,
    /// A connection with no request in flight for this long is closed.
    #[serde(default = "default_keepalive_timeout")]
    pub keepalive_timeout: Dur,
    /// Slowest average request-body rate, in bytes per second, a request is
    /// allowed after `min_body_rate_grace`; 0 disables it.
    #[serde(default = "default_min_body_rate")]
    pub min_body_rate: Size,
    #[serde(default = "default_min_body_rate_grace")]
    pub min_body_rate_grace: Dur,
    /// Time from a request's arrival to its response head (a PUT's response
    /// comes after its whole body); 0 disables it.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Dur,
    /// Most open connections; more are answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Most open connections from one client address (trusted proxies are
    /// exempt); more are answered 503 and closed.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: u32,
    /// Requests without credentials act as this user, read-only.
    pub anonymous_user: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges).
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    pub rate_limit: Option<RateLimitConfig>,
    pub defender: Option<DefenderConfig>,
}

impl BindingConfig {
    /// A plain binding on `listen` with every default: the zero-config
    /// listener's settings.
    pub fn defaults(listen: SocketAddr) -> Self {
        Self {
            listen,
            tls: None,
            http2: true,
            header_read_timeout: default_header_timeout(),
            idle_timeout: default_idle_timeout(),
            keepalive_timeout: default_keepalive_timeout(),
            min_body_rate: default_min_body_rate(),
            min_body_rate_grace: default_min_body_rate_grace(),
            request_timeout: default_request_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
            anonymous_user: None,
            trusted_proxies: Vec::new(),
            rate_limit: None,
            defender: None,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_header_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_idle_timeout() -> Dur {
    Dur(Duration::from_secs(120))
}
fn default_keepalive_timeout() -> Dur {
    Dur(Duration::from_secs(60))
}
fn default_min_body_rate() -> Size {
    Size(1024)
}
fn default_min_body_rate_grace() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_request_timeout() -> Dur {
    Dur(Duration::from_secs(3600))
}
fn default_max_connections() -> u32 {
    1024
}
fn default_max_connections_per_ip() -> u32 {
    64
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained requests per second per client IP.
    pub requests_per_second: f64,
    /// Requests a client may send at once above the sustained rate.
    pub burst: u32,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BanAction {
    /// Answer 403 to a banned client.
    #[default]
    Forbid,
    /// Close a banned client's connections without answering.
    Drop,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct DefenderConfig {
    /// Failed logins within `window` that get an IP banned.
    #[serde(default = "default_failures")]
    pub max_failures: u32,
    #[serde(default = "default_window")]
    pub window: Dur,
    #[serde(default = "default_ban")]
    pub ban_time: Dur,
    #[serde(default)]
    pub action: BanAction,
}

fn default_failures() -> u32 {
    5
}
fn default_window() -> Dur {
    Dur(Duration::from_secs(60))
}
fn default_ban() -> Dur {
    Dur(Duration::from_secs(900))
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// PHC string of an argon2id hash (`edgedav hash-password`); without one
    /// the user cannot log in (useful only as an anonymous user).
    pub password_hash: Option<String>,
    pub home: HomeSpec,
    /// Only `list` and `download`, whatever `permissions` says.
    #[serde(default)]
    pub read_only: bool,
    /// Directory → permissions; `/` defaults to `["*"]`.
    #[serde(default)]
    pub permissions: BTreeMap<String, Vec<Permission>>,
    pub quota_bytes: Option<Size>,
    pub quota_files: Option<u64>,
    pub max_upload_size: Option<Size>,
    /// Bytes per second the user may upload (all connections together).
    pub upload_bandwidth: Option<Size>,
    /// Bytes per second the user may download (all connections together).
    pub download_bandwidth: Option<Size>,
}

/// A separate users file: only `[[users]]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<UserConfig>,
}

/// Reads, parses and validates a configuration file (and its users file).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        line: None,
        key: String::new(),
        reason: format!("cannot read the file: {e}"),
    })?;
    let mut config: Config = parse(path, &text)?;
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    let main_users = config.users.len();
    if let Some(users_file) = &config.server.users_file {
        let users_path = base.join(users_file);
        let users_text = std::fs::read_to_string(&users_path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            key: "server.users_file".into(),
            reason: format!("cannot read {}: {e}", users_path.display()),
        })?;
        let mut more: UsersFile = parse(&users_path, &users_text)?;
        let users_base = users_path.parent().unwrap_or(Path::new(".")).to_owned();
        for user in &mut more.users {
            user.home.resolve_relative(&users_base);
        }
        // Validate those with their own file's name.
        for (i, user) in more.users.iter().enumerate() {
            validate_user(user).map_err(|(key, reason)| ConfigError {
                file: users_path.clone(),
                line: None,
                key: format!("users[{i}].{key}"),
                reason,
            })?;
        }
        config.users.extend(more.users);
    }
    for user in config.users.iter_mut().take(main_users) {
        user.home.resolve_relative(&base);
    }
    if let Some(component) = &mut config.server.component {
        *component = base.join(&*component);
    }
    for binding in &mut config.bindings {
        if let Some(tls) = &mut binding.tls {
            tls.cert_file = base.join(&tls.cert_file);
            tls.key_file = base.join(&tls.key_file);
        }
    }
    validate(&config, main_users).map_err(|(key, reason)| ConfigError {
        file: path.to_owned(),
        line: None,
        key,
        reason,
    })?;
    Ok(config)
}

/// Parses TOML text into `T`, naming the key of any error.
fn parse<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|e| ConfigError {
        file: path.to_owned(),
        line: line_of(e.span()),
        key: String::new(),
        reason: e.message().trim().to_owned(),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        ConfigError {
            file: path.to_owned(),
            line: line_of(inner.span()),
            key: if key == "." { String::new() } else { key },
            reason: inner.message().trim().to_owned(),
        }
    })
}
