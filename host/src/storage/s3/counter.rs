//! The host's own count of the S3 requests it makes.
//!
//! An SDK interceptor sees every HTTP request the client transmits (each
//! attempt, so retries count too) and adds it to process-wide counters, by
//! operation name. [`request_stats`] reads them; the backend logs the totals
//! when it is dropped at shutdown, and with `--s3-log-requests` it logs every
//! request with the running total (what the end-to-end tests and the
//! benchmark read to count the requests one WebDAV request costs).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

static TOTAL: AtomicU64 = AtomicU64::new(0);
static BY_OPERATION: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
static LOG_EACH: AtomicBool = AtomicBool::new(false);

/// S3 requests made by this process so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub total: u64,
    /// Requests per S3 operation (`ListObjectsV2`, `PutObject`, …).
    pub by_operation: BTreeMap<String, u64>,
}

impl std::fmt::Display for RequestStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} S3 requests", self.total)?;
        let mut first = true;
        for (operation, count) in &self.by_operation {
            f.write_str(if first { " (" } else { ", " })?;
            write!(f, "{operation}: {count}")?;
            first = false;
        }
        if !first {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The S3 requests this process has made so far.
pub fn request_stats() -> RequestStats {
    RequestStats {
        total: TOTAL.load(Ordering::Relaxed),
        by_operation: BY_OPERATION
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    }
}

/// Logs every request (at info level) with the running total when set.
pub fn set_log_each(on: bool) {
    LOG_EACH.store(on, Ordering::Relaxed);
}

/// The interceptor installed on the S3 client.
#[derive(Debug)]
pub(super) struct RequestCounter;

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "edgedav-s3-request-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let total = TOTAL.fetch_add(1, Ordering::Relaxed) + 1;
        if LOG_EACH.load(Ordering::Relaxed) {
            tracing::info!(target: "edgedav::s3", total, operation = %operation, "s3 request");
        }
        *BY_OPERATION
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(operation)
            .or_default() += 1;
        Ok(())
    }
}
