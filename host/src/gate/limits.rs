//! Abuse limits: a per-client-IP request rate limit, the defender that bans
//! IPs after repeated failed logins, and per-user bandwidth throttles.
//!
//! All three are token buckets or counters behind a mutex, in memory: they
//! protect one process and reset on restart (a ban does not survive a
//! restart). In cluster mode the defender's bans are also shared with the
//! other hosts ([`crate::cluster::bans`]); counts and rates stay per host.
//! Tables keyed by IP are pruned as they grow, so a flood of distinct
//! addresses cannot grow them without bound.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{BanAction, DefenderConfig, RateLimitConfig};

/// Entries kept before a table is pruned.
const PRUNE_AT: usize = 10_000;

/// A token bucket per client IP.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            rate: config.requests_per_second,
            burst: f64::from(config.burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`, or says how long until one is available.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(&ip) {
            // Buckets that have refilled are the same as absent ones.
            let (rate, burst) = (self.rate, self.burst);
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// Bans IPs that fail to log in too often.
pub struct Defender {
    /// The binding (index in the configuration) it guards.
    pub binding: usize,
    max_failures: usize,
    window: Duration,
    ban_time: Duration,
    pub action: BanAction,
    hosts: Mutex<HashMap<IpAddr, Host>>,
}

#[derive(Default)]
struct Host {
    failures: VecDeque<Instant>,
    banned_until: Option<Instant>,
}

impl Defender {
    pub fn new(binding: usize, config: &DefenderConfig) -> Self {
        Self {
            binding,
            max_failures: config.max_failures as usize,
            window: config.window.0,
            ban_time: config.ban_time.0,
            action: config.action,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn hosts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Host>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ip` is banned now.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        self.hosts()
            .get(&ip)
            .and_then(|h| h.banned_until)
            .is_some_and(|until| until > now)
    }

    /// Records a failed login; true when it gets `ip` banned.
    pub fn record_failure(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut hosts = self.hosts();
        if hosts.len() >= PRUNE_AT && !hosts.contains_key(&ip) {
            let window = self.window;
            hosts.retain(|_, h| {
                h.banned_until.is_some_and(|until| until > now)
                    || h.failures
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let host = hosts.entry(ip).or_default();
        if host.banned_until.is_some_and(|until| until > now) {
            return false;
        }
        while host
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            host.failures.pop_front();
        }
        host.failures.push_back(now);
        if host.failures.len() >= self.max_failures {
            host.failures.clear();
            host.banned_until = Some(now + self.ban_time);
            true
        } else {
            false
        }
    }

    /// How long a ban lasts.
    pub fn ban_time(&self) -> Duration {
        self.ban_time
    }

    /// Bans `ip` for `left` from now, unless it is banned longer already (a
    /// ban another host of the cluster took).
    pub fn adopt(&self, ip: IpAddr, left: Duration) {
        let until = Instant::now() + left;
        let mut hosts = self.hosts();
        let host = hosts.entry(ip).or_default();
        if host.banned_until.is_none_or(|current| current < until) {
            host.banned_until = Some(until);
        }
    }

    /// IPs banned now.
    pub fn banned_count(&self) -> usize {
        let now = Instant::now();
        self.hosts()
            .values()
            .filter(|h| h.banned_until.is_some_and(|until| until > now))
            .count()
    }
}

/// A bandwidth limit shared by all of one user's transfers in one direction.
///
/// A token bucket that may go into debt: a chunk always passes, and the
/// transfer then waits until the debt is paid, so the average rate is the
/// limit whatever the chunk sizes. Up to one second's worth passes at once.
pub struct Throttle {
    rate: f64,
    state: Mutex<Bucket>,
}

impl Throttle {
    /// `rate` in bytes per second.
    pub fn new(rate: u64) -> Self {
        Self {
            rate: rate as f64,
            state: Mutex::new(Bucket {
                tokens: rate as f64,
                last: Instant::now(),
            }),
        }
    }

    /// Accounts `bytes`; returns how long to wait before moving more.
    pub fn take(&self, bytes: usize) -> Duration {
        let now = Instant::now();
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.rate);
        b.last = now;
        b.tokens -= bytes as f64;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dur;

    #[test]
    fn rate_limit_allows_a_burst_then_refuses() {
        let limiter = RateLimiter::new(&RateLimitConfig {
            requests_per_second: 1.0,
            burst: 3,
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            limiter.check(ip).unwrap();
        }
        let wait = limiter.check(ip).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        // Another client is unaffected.
        limiter.check("127.0.0.2".parse().unwrap()).unwrap();
    }

    #[test]
    fn defender_bans_after_max_failures() {
        let defender = Defender::new(
            0,
            &DefenderConfig {
                max_failures: 3,
                window: Dur(Duration::from_secs(60)),
                ban_time: Dur(Duration::from_secs(60)),
                action: BanAction::Forbid,
            },
        );
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(!defender.record_failure(ip));
        assert!(!defender.record_failure(ip));
        assert!(!defender.is_banned(ip));
        assert!(defender.record_failure(ip));
        assert!(defender.is_banned(ip));
        assert_eq!(defender.banned_count(), 1);
        assert!(!defender.is_banned("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn throttle_makes_transfers_wait() {
        let throttle = Throttle::new(1000);
        assert_eq!(throttle.take(1000), Duration::ZERO);
        let wait = throttle.take(500);
        assert!(wait > Duration::from_millis(450) && wait <= Duration::from_millis(500));
    }
}
