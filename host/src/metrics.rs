//! Process-wide counters, rendered in the Prometheus text format on the
//! admin listener's `GET /metrics`.
//!
//! A handful of atomics and small label maps written by hand: the set of
//! metrics is fixed and small, and a metrics crate would be more code to
//! audit than this. Label values are bounded (methods outside the WebDAV
//! set are counted as `OTHER`), so no client can grow the maps.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The one registry of this process.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

/// Buckets of the instantiation-time histogram, in seconds.
const BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
];

#[derive(Default)]
pub struct Metrics {
    pub login_attempts: AtomicU64,
    pub login_successes: AtomicU64,
    pub login_failures: AtomicU64,
    /// argon2 verifications run (logins the users cache did not answer).
    pub password_verifications: AtomicU64,
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Of those, sent from the file without being read (`runtime::file_splice`).
    pub bytes_sent_unread: AtomicU64,
    pub active_connections: AtomicI64,
    /// Requests waiting for a component instance now.
    pub instance_queue: AtomicI64,
    /// Idle instances kept for their tenant's next request now.
    pub warm_instances: AtomicI64,
    /// Requests answered by an instance that had answered one before.
    pub instance_reuses: AtomicU64,
    pub connections_accepted: AtomicU64,
    refusals: [AtomicU64; Refusal::ALL.len()],
    timeouts: [AtomicU64; Timeout::ALL.len()],
    instantiation: Histogram,
    component_errors: Mutex<BTreeMap<&'static str, u64>>,
    pub bans: AtomicU64,
    pub banned_requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub config_reloads: AtomicU64,
    pub config_reload_failures: AtomicU64,
}

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// Kinds of component failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentError {
    /// The instance could not be created (pool exhausted, memory).
    Instantiation,
    /// The guest trapped (panic, out of memory, …).
    Trap,
    /// The guest used up its CPU-time deadline.
    Deadline,
    /// The guest ended without answering, or answered with an error.
    NoResponse,
}

impl ComponentError {
    pub fn label(self) -> &'static str {
        match self {
            ComponentError::Instantiation => "instantiation",
            ComponentError::Trap => "trap",
            ComponentError::Deadline => "deadline",
            ComponentError::NoResponse => "no_response",
        }
    }
}

/// Why a connection or a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Connection: the binding's `max_connections`.
    MaxConnections,
    /// Connection: the binding's `max_connections_per_ip`.
    MaxConnectionsPerIp,
    /// Connection: a banned client with `action = "drop"`.
    Banned,
    /// Request: no instance became free within `instance_wait`.
    InstancesBusy,
    /// Request: the client address holds `max_instances_per_ip` instances.
    InstancesPerIp,
    /// Request: the body came slower than `min_body_rate`.
    SlowBody,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Refusal::MaxConnections,
        Refusal::MaxConnectionsPerIp,
        Refusal::Banned,
        Refusal::InstancesBusy,
        Refusal::InstancesPerIp,
        Refusal::SlowBody,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerIp => "max_connections_per_ip",
            Refusal::Banned => "banned",
            Refusal::InstancesBusy => "instances_busy",
            Refusal::InstancesPerIp => "max_instances_per_ip",
            Refusal::SlowBody => "min_body_rate",
        }
    }

    /// The text of the answer.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::MaxConnections | Refusal::InstancesBusy => "server busy, retry later",
            Refusal::MaxConnectionsPerIp | Refusal::InstancesPerIp => {
                "too many connections or requests from your address, retry later"
            }
            Refusal::Banned => "banned",
            Refusal::SlowBody => "the request body arrived too slowly",
        }
    }

    fn is_connection(self) -> bool {
        matches!(
            self,
            Refusal::MaxConnections | Refusal::MaxConnectionsPerIp | Refusal::Banned
        )
    }
}

/// Which deadline closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The first request (TLS handshake, preface, headers) within
    /// `header_read_timeout` of the accept.
    FirstRequest,
    /// A later request's headers within `header_read_timeout` of its first byte.
    RequestHeaders,
    /// No request for `keepalive_timeout`.
    KeepAlive,
    /// No bytes moving for `idle_timeout`.
    Idle,
}

impl Timeout {
    const ALL: [Timeout; 4] = [
        Timeout::FirstRequest,
        Timeout::RequestHeaders,
        Timeout::KeepAlive,
        Timeout::Idle,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Timeout::FirstRequest => "first_request",
            Timeout::RequestHeaders => "request_headers",
            Timeout::KeepAlive => "keepalive",
            Timeout::Idle => "idle",
        }
    }
}

/// The label of a request method: the WebDAV methods, or `OTHER`.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 14] = [
        "OPTIONS",
        "GET",
        "HEAD",
        "PUT",
        "DELETE",
        "MKCOL",
        "COPY",
        "MOVE",
        "PROPFIND",
        "PROPPATCH",
        "LOCK",
        "UNLOCK",
        "POST",
        "PATCH",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

impl Metrics {
    pub fn request(&self, method: &str, status: u16) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method_label(method), status))
            .or_default() += 1;
    }

    pub fn component_error(&self, kind: ComponentError) {
        *self
            .component_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.label())
            .or_default() += 1;
    }

    pub fn refused(&self, reason: Refusal) {
        let i = Refusal::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.refusals[i].fetch_add(1, Relaxed);
    }

    pub fn connection_timed_out(&self, timeout: Timeout) {
        let i = Timeout::ALL.iter().position(|t| *t == timeout).unwrap_or(0);
        self.timeouts[i].fetch_add(1, Relaxed);
    }

    pub fn instantiated(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bucket, count) in BUCKETS.iter().zip(&self.instantiation.counts) {
            if secs <= *bucket {
                count.fetch_add(1, Relaxed);
            }
        }
        self.instantiation.count.fetch_add(1, Relaxed);
        self.instantiation
            .sum_nanos
            .fetch_add(took.as_nanos().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    /// The Prometheus text exposition; `banned_ips` is the number of IPs
    /// banned right now.
    pub fn render(&self, banned_ips: usize) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "edgedav_login_attempts_total",
            "HTTP Basic logins attempted.",
            self.login_attempts.load(Relaxed),
        );
        counter(
            "edgedav_login_successes_total",
            "Logins with a valid user name and password.",
            self.login_successes.load(Relaxed),
        );
        counter(
            "edgedav_login_failures_total",
            "Logins refused (unknown user or wrong password).",
            self.login_failures.load(Relaxed),
        );
        counter(
            "edgedav_password_verifications_total",
            "argon2 password verifications run (logins not answered by the users cache).",
            self.password_verifications.load(Relaxed),
        );
        counter(
            "edgedav_bytes_received_total",
            "Request body bytes received.",
            self.bytes_received.load(Relaxed),
        );
        counter(
            "edgedav_bytes_sent_total",
            "Response body bytes sent.",
            self.bytes_sent.load(Relaxed),
        );
        counter(
            "edgedav_bytes_sent_unread_total",
            "Response body bytes sent from the file without being read (plain HTTP/1 downloads from local disk).",
            self.bytes_sent_unread.load(Relaxed),
        );
        counter(
            "edgedav_connections_accepted_total",
            "Connections accepted.",
            self.connections_accepted.load(Relaxed),
        );
        counter(
            "edgedav_bans_total",
            "IPs banned by the defender.",
            self.bans.load(Relaxed),
        );
        counter(
            "edgedav_banned_requests_total",
            "Requests refused because the client IP is banned.",
            self.banned_requests.load(Relaxed),
        );
        counter(
            "edgedav_rate_limited_total",
            "Requests answered 429 by the rate limit.",
            self.rate_limited.load(Relaxed),
        );
        counter(
            "edgedav_instance_reuses_total",
            "Requests answered by a warm instance (one that answered an earlier request of the same user).",
            self.instance_reuses.load(Relaxed),
        );
        counter(
            "edgedav_config_reloads_total",
            "Configuration reloads (SIGHUP) applied.",
            self.config_reloads.load(Relaxed),
        );
        counter(
            "edgedav_config_reload_failures_total",
            "Configuration reloads refused (the old configuration stays).",
            self.config_reload_failures.load(Relaxed),
        );

        let _ = writeln!(
            out,
            "# HELP edgedav_active_connections Connections open now.\n\
             # TYPE edgedav_active_connections gauge\n\
             edgedav_active_connections {}",
            self.active_connections.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP edgedav_instance_queue Requests waiting for a component instance now.\n\
             # TYPE edgedav_instance_queue gauge\n\
             edgedav_instance_queue {}",
            self.instance_queue.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP edgedav_warm_instances Idle component instances kept for their user's next request.\n\
             # TYPE edgedav_warm_instances gauge\n\
             edgedav_warm_instances {}",
            self.warm_instances.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP edgedav_banned_ips IPs banned now.\n\
             # TYPE edgedav_banned_ips gauge\n\
             edgedav_banned_ips {banned_ips}"
        );

        for (name, help, connections) in [
            (
                "edgedav_connections_rejected_total",
                "Connections refused when accepted (answered 503 on plain HTTP), by reason.",
                true,
            ),
            (
                "edgedav_requests_refused_total",
                "Requests refused by a host limit (503 or 408), by reason.",
                false,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (reason, n) in Refusal::ALL.iter().zip(&self.refusals) {
                if reason.is_connection() == connections {
                    let _ = writeln!(
                        out,
                        "{name}{{reason=\"{}\"}} {}",
                        reason.label(),
                        n.load(Relaxed)
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP edgedav_connections_timed_out_total Connections closed by a deadline, by which.\n\
             # TYPE edgedav_connections_timed_out_total counter"
        );
        for (timeout, n) in Timeout::ALL.iter().zip(&self.timeouts) {
            let _ = writeln!(
                out,
                "edgedav_connections_timed_out_total{{reason=\"{}\"}} {}",
                timeout.label(),
                n.load(Relaxed)
            );
        }

        let _ = writeln!(
            out,
            "# HELP edgedav_requests_total Requests answered, by method and status.\n\
             # TYPE edgedav_requests_total counter"
        );
        for ((method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "edgedav_requests_total{{method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }

        let _ = writeln!(
            out,
            "# HELP edgedav_component_errors_total Component failures, by kind.\n\
             # TYPE edgedav_component_errors_total counter"
        );
        let errors = self
            .component_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for kind in [
            ComponentError::Instantiation,
            ComponentError::Trap,
            ComponentError::Deadline,
            ComponentError::NoResponse,
        ] {
            let label = kind.label();
            let n = errors.get(label).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "edgedav_component_errors_total{{kind=\"{label}\"}} {n}"
            );
        }

        let h = &self.instantiation;
        let _ = writeln!(
            out,
            "# HELP edgedav_instantiation_seconds Time to instantiate the component for a request.\n\
             # TYPE edgedav_instantiation_seconds histogram"
        );
        for (bucket, count) in BUCKETS.iter().zip(&h.counts) {
            let _ = writeln!(
                out,
                "edgedav_instantiation_seconds_bucket{{le=\"{bucket}\"}} {}",
                count.load(Relaxed)
            );
        }
        let count = h.count.load(Relaxed);
        let _ = writeln!(
            out,
            "edgedav_instantiation_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             edgedav_instantiation_seconds_sum {}\n\
             edgedav_instantiation_seconds_count {count}",
            h.sum_nanos.load(Relaxed) as f64 / 1e9
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("PUT", 201);
        m.request("PUT", 201);
        m.request("BREW", 405);
        m.component_error(ComponentError::Deadline);
        m.instantiated(Duration::from_micros(300));
        let text = m.render(2);
        assert!(text.contains("edgedav_requests_total{method=\"PUT\",status=\"201\"} 2"));
        assert!(text.contains("edgedav_requests_total{method=\"OTHER\",status=\"405\"} 1"));
        assert!(text.contains("edgedav_component_errors_total{kind=\"deadline\"} 1"));
        assert!(text.contains("edgedav_component_errors_total{kind=\"trap\"} 0"));
        assert!(text.contains("edgedav_instantiation_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("edgedav_instantiation_seconds_bucket{le=\"0.00025\"} 0"));
        assert!(text.contains("edgedav_instantiation_seconds_count 1"));
        assert!(text.contains("edgedav_banned_ips 2"));
        m.refused(Refusal::MaxConnectionsPerIp);
        m.refused(Refusal::InstancesBusy);
        m.connection_timed_out(Timeout::KeepAlive);
        let text = m.render(0);
        assert!(
            text.contains(
                "edgedav_connections_rejected_total{reason=\"max_connections_per_ip\"} 1"
            )
        );
        assert!(text.contains("edgedav_connections_rejected_total{reason=\"banned\"} 0"));
        assert!(text.contains("edgedav_requests_refused_total{reason=\"instances_busy\"} 1"));
        assert!(!text.contains("edgedav_requests_refused_total{reason=\"banned\"}"));
        assert!(text.contains("edgedav_connections_timed_out_total{reason=\"keepalive\"} 1"));
    }
}
