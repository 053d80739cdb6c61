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

use crate::perms::{Permission, normalise_dir};
use crate::storage::home::HomeSpec;

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
    #[serde(default)]
    pub bindings: Vec<BindingConfig>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
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

/// A duration: `"30s"`, `"500ms"`, `"5m"`, `"1h"`, `"1d"` or seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

/// A size in bytes: `"64KiB"`, `"10MB"`, `"1GiB"` or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

/// An address or a CIDR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let addr = canonical_ip(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (write e.g. \"30s\", \"500ms\", \"5m\")"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {other:?} (use ms, s, m, h or d)"
            ));
        }
    };
    let secs = value * scale;
    if !(0.0..=1e10).contains(&secs) {
        return Err(format!("invalid duration {s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {s:?} (write e.g. \"10MiB\", \"1GB\", or bytes)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024.0f64.powi(4),
        other => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {other:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ));
        }
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(format!("invalid size {s:?}: out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Accepts a string parsed by `parse` or a non-negative number.
struct StrOrNumber<T> {
    what: &'static str,
    parse: fn(&str) -> Result<T, String>,
    from_number: fn(f64) -> Result<T, String>,
}

impl<T> Visitor<'_> for StrOrNumber<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        if v < 0 {
            return Err(E::custom(format!("{} must not be negative", self.what)));
        }
        (self.from_number)(v as f64).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.from_number)(v as f64).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.is_nan() || v < 0.0 {
            return Err(E::custom(format!("{} must not be negative", self.what)));
        }
        (self.from_number)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrOrNumber {
            what: "a duration such as \"30s\" or a number of seconds",
            parse: parse_duration,
            from_number: |n| parse_duration(&n.to_string()),
        })
        .map(Dur)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrOrNumber {
            what: "a size such as \"10MiB\" or a number of bytes",
            parse: parse_size,
            from_number: |n| parse_size(&format!("{n}")),
        })
        .map(Size)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
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

type Invalid = (String, String);

fn validate(config: &Config, main_users: usize) -> Result<(), Invalid> {
    let err = |key: &str, reason: String| Err((key.to_owned(), reason));
    if config.bindings.is_empty() {
        return err(
            "bindings",
            "no [[bindings]]: configure at least one listener".into(),
        );
    }
    if config.users.is_empty() {
        return err(
            "users",
            "no [[users]]: configure at least one user (or serve without --config)".into(),
        );
    }
    if config.sandbox.max_memory.0 < (2 << 20) {
        return err(
            "sandbox.max_memory",
            "must be at least 2MiB (the embedded handler starts with 1.1 MiB)".into(),
        );
    }
    if config.sandbox.max_memory.0 > (4 << 30) {
        return err("sandbox.max_memory", "must be at most 4GiB".into());
    }
    if config.sandbox.max_instances == 0 {
        return err("sandbox.max_instances", "must be at least 1".into());
    }
    if config.sandbox.max_instances_per_ip == 0 {
        return err("sandbox.max_instances_per_ip", "must be at least 1".into());
    }
    let mut seen_listen = Vec::new();
    if let Some(admin) = &config.admin {
        seen_listen.push(admin.listen);
    }
    for (i, b) in config.bindings.iter().enumerate() {
        let key = |k: &str| format!("bindings[{i}].{k}");
        if b.listen.port() != 0 && seen_listen.contains(&b.listen) {
            return Err((
                key("listen"),
                format!("{} is already used by another listener", b.listen),
            ));
        }
        seen_listen.push(b.listen);
        for (k, value) in [
            ("max_connections", b.max_connections),
            ("max_connections_per_ip", b.max_connections_per_ip),
        ] {
            if value == 0 {
                return Err((key(k), "must be at least 1".into()));
            }
        }
        for (k, value) in [
            ("header_read_timeout", b.header_read_timeout),
            ("idle_timeout", b.idle_timeout),
            ("keepalive_timeout", b.keepalive_timeout),
            ("min_body_rate_grace", b.min_body_rate_grace),
        ] {
            if value.0.is_zero() {
                return Err((key(k), "must be more than 0".into()));
            }
        }
        if let Some(tls) = &b.tls {
            for (k, file) in [
                ("tls.cert_file", &tls.cert_file),
                ("tls.key_file", &tls.key_file),
            ] {
                if !file.is_file() {
                    return Err((key(k), format!("{} does not exist", file.display())));
                }
            }
            crate::tls::load_certified_key(tls).map_err(|e| (key("tls"), e))?;
        }
        if let Some(name) = &b.anonymous_user
            && !config.users.iter().any(|u| &u.name == name)
        {
            return Err((key("anonymous_user"), format!("no user is named {name:?}")));
        }
        if let Some(r) = &b.rate_limit {
            if !(r.requests_per_second > 0.0 && r.requests_per_second.is_finite()) {
                return Err((
                    key("rate_limit.requests_per_second"),
                    "must be more than 0".into(),
                ));
            }
            if r.burst == 0 {
                return Err((key("rate_limit.burst"), "must be at least 1".into()));
            }
        }
        if let Some(d) = &b.defender {
            if d.max_failures == 0 {
                return Err((key("defender.max_failures"), "must be at least 1".into()));
            }
            if d.window.0.is_zero() || d.ban_time.0.is_zero() {
                return Err((
                    key("defender"),
                    "window and ban_time must be more than 0".into(),
                ));
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, user) in config.users.iter().enumerate() {
        if i < main_users {
            validate_user(user).map_err(|(k, reason)| (format!("users[{i}].{k}"), reason))?;
        }
        if !names.insert(user.name.as_str()) {
            return Err((
                format!("users[{i}].name"),
                format!("user {:?} is defined twice", user.name),
            ));
        }
    }
    Ok(())
}

fn validate_user(user: &UserConfig) -> Result<(), Invalid> {
    let err = |key: &str, reason: String| Err((key.to_owned(), reason));
    if user.name.is_empty() || user.name.contains(':') || user.name.chars().any(char::is_control) {
        return err(
            "name",
            format!(
                "{:?}: a user name must be non-empty, without ':' or control characters",
                user.name
            ),
        );
    }
    if let Some(hash) = &user.password_hash {
        crate::users::check_phc(hash).map_err(|e| ("password_hash".to_owned(), e))?;
    }
    user.home.validate().map_err(|e| ("home".to_owned(), e))?;
    for (dir, list) in &user.permissions {
        let normal = normalise_dir(dir).map_err(|e| (format!("permissions.{dir}"), e))?;
        if &normal != dir {
            return err(
                &format!("permissions.{dir}"),
                format!("write the directory as {normal:?}"),
            );
        }
        if list.is_empty() {
            // An empty list is allowed: it means "nothing here".
        }
    }
    for (key, value) in [
        ("quota_bytes", user.quota_bytes),
        ("max_upload_size", user.max_upload_size),
        ("upload_bandwidth", user.upload_bandwidth),
        ("download_bandwidth", user.download_bandwidth),
    ] {
        if value.is_some_and(|v| v.0 == 0) {
            return err(
                key,
                "must be more than 0 (leave it out for no limit)".into(),
            );
        }
    }
    if user.quota_files == Some(0) {
        return err(
            "quota_files",
            "must be more than 0 (leave it out for no limit)".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("edgedav-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("edgedav.toml");
        std::fs::write(&path, text).unwrap();
        let result = load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$PgyIGjf6+3LHf8mAoQOAoQ5u3FGzWMgnYE/3ng/WXkk";

    fn minimal(extra_user: &str) -> String {
        format!(
            r#"
[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "alice"
password_hash = "{HASH}"
home = {{ backend = "local", path = "homes/alice" }}
{extra_user}
"#
        )
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("7 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_size("10KiB").unwrap(), 10240);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("1XB").is_err());
    }

    #[test]
    fn networks() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: IpNet = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nope".parse::<IpNet>().is_err());
    }

    #[test]
    fn a_minimal_file_loads_with_defaults() {
        let config = load_text(&minimal("")).unwrap();
        let b = &config.bindings[0];
        assert!(b.http2 && b.tls.is_none());
        assert_eq!(b.idle_timeout.0, Duration::from_secs(120));
        assert_eq!(b.keepalive_timeout.0, Duration::from_secs(60));
        assert_eq!(b.max_connections_per_ip, 64);
        assert_eq!(b.min_body_rate.0, 1024);
        assert_eq!(config.sandbox.max_memory.0, 128 << 20);
        assert_eq!(config.sandbox.instance_wait.0, Duration::from_secs(10));
        assert_eq!(config.sandbox.max_instances_per_ip, 64);
        let HomeSpec::Local { path } = &config.users[0].home else {
            panic!("a local home")
        };
        assert!(path.is_absolute() && path.ends_with("homes/alice"));
    }

    #[test]
    fn unknown_keys_are_refused_with_file_line_and_key() {
        let e = load_text(&minimal("colour = \"blue\"")).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("edgedav.toml:"), "{text}");
        assert!(text.contains("users[0]"), "{text}");
        assert!(text.contains("colour"), "{text}");
        assert_eq!(e.line, Some(9), "{text}");

        let e = load_text(&format!(
            "{}\n[server]\nshutdown_grace = \"5 fortnights\"\n",
            minimal("")
        ))
        .unwrap_err();
        assert_eq!(e.key, "server.shutdown_grace", "{e}");
        assert!(e.reason.contains("unknown unit"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        let e = load_text(&minimal("permissions = { \"/docs\" = [\"lsit\"] }")).unwrap_err();
        assert!(e.key.contains("permissions"), "{e}");
        assert!(e.reason.contains("lsit"), "{e}");

        let e = load_text(&minimal("permissions = { \"docs\" = [\"list\"] }")).unwrap_err();
        assert!(e.reason.contains("absolute"), "{e}");

        let e = load_text(&minimal("quota_bytes = 0")).unwrap_err();
        assert_eq!(e.key, "users[0].quota_bytes", "{e}");

        let bad_hash = minimal("").replace(HASH, "plaintext");
        let e = load_text(&bad_hash).unwrap_err();
        assert_eq!(e.key, "users[0].password_hash", "{e}");

        let e = load_text(&format!(
            "{}\n[[users]]\nname = \"alice\"\nhome = {{ backend = \"local\", path = \"x\" }}\n",
            minimal("")
        ))
        .unwrap_err();
        assert!(e.reason.contains("twice"), "{e}");

        let anon = minimal("").replace(
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:0\"\nanonymous_user = \"nobody\"",
        );
        let e = load_text(&anon).unwrap_err();
        assert_eq!(e.key, "bindings[0].anonymous_user", "{e}");

        let e =
            load_text("[[users]]\nname = \"a\"\nhome = { backend = \"local\", path = \"x\" }\n")
                .unwrap_err();
        assert_eq!(e.key, "bindings", "{e}");

        for (setting, key) in [
            (
                "max_connections_per_ip = 0",
                "bindings[0].max_connections_per_ip",
            ),
            (
                "keepalive_timeout = \"0s\"",
                "bindings[0].keepalive_timeout",
            ),
            ("min_body_rate_grace = 0", "bindings[0].min_body_rate_grace"),
        ] {
            let text = minimal("").replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:0\"\n{setting}"),
            );
            assert_eq!(load_text(&text).unwrap_err().key, key);
        }
        let e = load_text(&format!(
            "[sandbox]\nmax_instances_per_ip = 0\n{}",
            minimal("")
        ))
        .unwrap_err();
        assert_eq!(e.key, "sandbox.max_instances_per_ip", "{e}");
        let e = load_text(&format!(
            "[sandbox]\ninstance_wait = \"soon\"\n{}",
            minimal("")
        ))
        .unwrap_err();
        assert_eq!(e.key, "sandbox.instance_wait", "{e}");
    }
}
