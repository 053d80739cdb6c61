//! Defender bans shared by the hosts of a cluster: a client banned by one
//! host is refused by all of them.
//!
//! A host that bans a client records the ban in `edgedav_bans` (by binding
//! and address, until a time of the database's clock); every host reads the
//! live bans with its probe, every [`super::PROBE_INTERVAL`], and applies
//! them to its own defenders. So a ban taken on one host holds on the others
//! within about a second; failed logins are counted per host.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Object;
use tracing::warn;

use super::Cluster;
use crate::gate::limits::Defender;

/// Records a ban this host took, for every host.
pub async fn publish(cluster: Arc<Cluster>, binding: usize, ip: IpAddr, ban: Duration) {
    let published = async {
        let client = cluster.client().await.map_err(|e| e.to_string())?;
        client
            .execute(
                "INSERT INTO edgedav_bans (binding, ip, until) \
                 VALUES ($1, $2, now() + $3::BIGINT * INTERVAL '1 second') \
                 ON CONFLICT (binding, ip) DO UPDATE SET until = GREATEST(edgedav_bans.until, EXCLUDED.until)",
                &[&binding_key(binding), &ip.to_string(), &secs(ban)],
            )
            .await
            .map_err(|e| cluster.failed(e).to_string())
    };
    if let Err(e) = published.await {
        warn!(remote = %ip, error = %e, "the ban is not shared with the cluster");
    }
}

/// Applies the cluster's live bans to this host's defenders (and drops
/// the expired ones from the table).
pub async fn adopt(client: &Object, defenders: &[Arc<Defender>]) {
    let rows = match client
        .query(
            "SELECT binding, ip, CEIL(EXTRACT(EPOCH FROM (until - now())))::BIGINT \
             FROM edgedav_bans WHERE until > now()",
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            warn!(error = %e, "reading the cluster's bans");
            return;
        }
    };
    for row in rows {
        let (binding, ip, left): (i32, String, i64) = (row.get(0), row.get(1), row.get(2));
        let Ok(ip) = ip.parse::<IpAddr>() else {
            continue;
        };
        let left = Duration::from_secs(u64::try_from(left).unwrap_or(0));
        for defender in defenders {
            if binding_key(defender.binding) == binding {
                defender.adopt(ip, left);
            }
        }
    }
    let _ = client
        .execute(
            "DELETE FROM edgedav_bans WHERE until < now() - INTERVAL '1 minute'",
            &[],
        )
        .await;
}

fn binding_key(binding: usize) -> i32 {
    i32::try_from(binding).unwrap_or(i32::MAX)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX)
}
