//! Admission: how many connections and component instances a client may
//! hold, and the queue a request waits in for an instance.
//!
//! * **Per-IP counts.** [`PerIp`] counts what each client address holds
//!   (open connections, instances). Entries exist only while something is
//!   held, so the table is bounded by what is open, not by how many
//!   addresses ever connected.
//! * **Instances.** Every request runs in its own component instance, and a
//!   slow client holds its instance while its body trickles in. A request
//!   therefore waits, in FIFO order and for at most `instance_wait`, for one
//!   of `max_instances` slots, and no client address may hold more than
//!   `max_instances_per_ip` of them: one address cannot occupy the whole
//!   pool, and a full pool makes requests queue instead of failing at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::canonical_ip;
use crate::metrics;

/// Counts of what each client address holds.
#[derive(Default)]
pub struct PerIp {
    held: Mutex<HashMap<IpAddr, u32>>,
}

/// One unit held by an address; released when dropped.
pub struct IpHold {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// Takes one unit for `ip` unless it already holds `max`.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<IpHold> {
        let ip = canonical_ip(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpHold {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for IpHold {
    fn drop(&mut self) {
        let mut held = self.table.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Why a request got no instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Every instance stayed busy for the whole wait.
    Pool,
    /// The client's address already holds its share.
    PerIp,
}

/// The instance pool's gate.
pub struct Admission {
    slots: Arc<Semaphore>,
    per_ip: Arc<PerIp>,
    max_per_ip: u32,
    wait: Duration,
}

/// An instance slot; the instance must be gone before this is dropped.
pub struct Slot {
    _pool: OwnedSemaphorePermit,
    _ip: IpHold,
}

impl Admission {
    pub fn new(max_instances: u32, max_per_ip: u32, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_instances as usize)),
            per_ip: Arc::default(),
            max_per_ip,
            wait,
        }
    }

    /// Waits up to `instance_wait` for a slot for a request from `ip`.
    pub async fn enter(&self, ip: IpAddr) -> Result<Slot, Busy> {
        let ip_hold = self
            .per_ip
            .try_take(ip, self.max_per_ip)
            .ok_or(Busy::PerIp)?;
        let pool = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _queued = Queued::new();
                tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
                    .await
                    .map_err(|_| Busy::Pool)?
                    .map_err(|_| Busy::Pool)?
            }
        };
        Ok(Slot {
            _pool: pool,
            _ip: ip_hold,
        })
    }
}

/// Counts a request in the queue while it waits.
struct Queued;

impl Queued {
    fn new() -> Self {
        metrics::get().instance_queue.fetch_add(1, Relaxed);
        Self
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        metrics::get().instance_queue.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_counts_are_bounded_and_released() {
        let table = Arc::new(PerIp::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| table.try_take(a, 3).unwrap()).collect();
        assert!(table.try_take(a, 3).is_none());
        // The same address written as IPv4-mapped IPv6 is the same client.
        assert!(
            table
                .try_take("::ffff:10.0.0.1".parse().unwrap(), 3)
                .is_none()
        );
        assert!(table.try_take("10.0.0.2".parse().unwrap(), 3).is_some());
        drop(held);
        assert!(table.held.lock().unwrap().is_empty());
        assert!(table.try_take(a, 3).is_some());
    }

    #[tokio::test]
    async fn a_full_pool_queues_then_refuses() {
        let admission = Admission::new(1, 1, Duration::from_millis(300));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = admission.enter(a).await.unwrap();
        // The same address is over its share at once.
        assert_eq!(admission.enter(a).await.err(), Some(Busy::PerIp));
        // Another address waits, and gets the slot when it is released.
        let waiting = admission.enter(b);
        let release = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(first);
        };
        let (second, ()) = tokio::join!(waiting, release);
        let second = second.unwrap();
        // With the slot held, a wait expires.
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!(admission.enter(c).await.err(), Some(Busy::Pool));
        drop(second);
        assert!(admission.enter(c).await.is_ok());
    }
}
