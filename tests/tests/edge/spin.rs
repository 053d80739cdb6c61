//! The Spin composition under the Spin test host: round trips, partial updates, chunked big files, locks.

use super::*;
use crate::locks::{lock_race, locks_hold_across_instances_and_restarts};
use crate::partial::partial_updates;
use crate::round_trips::{big_listing, dav_round_trips};

#[test]
fn spin_composition_round_trips_and_big_listings() {
    let Some(env) = edge_env("spin_composition_round_trips_and_big_listings") else {
        return;
    };
    let w = Server::deploy(&env.spin());
    dav_round_trips(&w);
    big_listing(&w);
}

#[test]
fn spin_composition_partial_updates() {
    let Some(env) = edge_env("spin_composition_partial_updates") else {
        return;
    };
    let w = Server::deploy(&env.spin());
    partial_updates(&w);
}

#[test]
fn spin_composition_big_files_are_chunked() {
    let Some(env) = edge_env("spin_composition_big_files_are_chunked") else {
        return;
    };
    let mut w = Server::deploy(&env.spin());
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 77)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    w.req("PUT", "/big.bin")
        .body(data.clone())
        .exec()
        .expect(&[201], "PUT 3 MiB");
    assert!(
        w.req("GET", "/big.bin").exec().body == data,
        "3 MiB differ after a round trip"
    );
    let r = w
        .req("GET", "/big.bin")
        .header("Range", "bytes=262140-262149")
        .exec();
    r.expect(&[206], "ranged GET across a chunk boundary");
    assert_eq!(r.body, &data[262_140..262_150]);
    // Replacing the file leaves no orphaned chunks or staged uploads.
    w.req("PUT", "/big.bin")
        .body(data[..1000].to_vec())
        .exec()
        .expect(&[204], "PUT smaller");
    w.req("COPY", "/big.bin")
        .header("Destination", format!("{}/copy.bin", w.base))
        .exec()
        .expect(&[201], "COPY");
    w.req("DELETE", "/copy.bin").exec().expect(&[204], "DELETE");
    w.stop();
    let db = db_counts(&env, &w.dir().join("spin.sqlite"));
    assert_eq!(db, (1, 0), "(chunks, staged uploads) left in the database");
}

/// (rows in edgedav_chunks, rows in edgedav_uploads) of a Spin database,
/// read with `edgedav-spin-testhost --query`.
pub(super) fn db_counts(env: &EdgeEnv, db: &Path) -> (u64, u64) {
    let query = |sql: &str| -> u64 {
        let out = Command::new(&env.spin_testhost)
            .arg("--query")
            .arg(db)
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (
        query("SELECT count(*) FROM edgedav_chunks"),
        query("SELECT count(*) FROM edgedav_uploads"),
    )
}

#[test]
fn spin_composition_locks_are_granted_once_and_survive_restarts() {
    let Some(env) = edge_env("spin_composition_locks_are_granted_once_and_survive_restarts") else {
        return;
    };
    let mut w = Server::deploy(&env.spin());
    lock_race(&w);
    locks_hold_across_instances_and_restarts(&mut w);
}
