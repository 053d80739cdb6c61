//! Requests racing on one path: what the storage decides atomically at
//! commit (created or replaced, create-only) must hold whichever request
//! wins, and refused COPY/MOVE must change nothing.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use edgedav_tests::*;

/// Runs `a` and `b` on two threads released at the same instant.
fn race<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    let start = Barrier::new(2);
    thread::scope(|scope| {
        let a = scope.spawn(|| {
            start.wait();
            a()
        });
        let b = scope.spawn(|| {
            start.wait();
            b()
        });
        (a.join().unwrap(), b.join().unwrap())
    })
}

#[test]
fn lock_null_creation_never_replaces_an_acknowledged_put() {
    let s = Server::start();
    for round in 0..50u32 {
        let path = format!("/race-{round}.bin");
        let body: Vec<u8> = (0..64 * 1024).map(|i| (i as u32 ^ round) as u8).collect();
        let (lock, put) = race(
            || s.lock(&path, "exclusive", Some("0")),
            || s.put(&path, body.clone()),
        );
        lock.expect(&[200, 201], "LOCK of a new path");
        // The PUT loses to the lock (423) or lands before it: both are fine,
        // but an acknowledged upload must be what is stored.
        put.expect(&[201, 204, 423], "PUT racing a LOCK");
        if (200..300).contains(&put.status) {
            let got = s.get(&path);
            got.expect(&[200], "GET after the race");
            assert!(
                got.body == body,
                "round {round}: PUT answered {} and LOCK {}, but the file holds {} bytes",
                put.status,
                lock.status,
                got.body.len()
            );
        }
    }
}

#[test]
fn concurrent_puts_creating_one_path_have_one_201() {
    let s = Server::start();
    let start = Barrier::new(20);
    let statuses: Vec<u16> = thread::scope(|scope| {
        let puts: Vec<_> = (0..20u8)
            .map(|i| {
                let (s, start) = (&s, &start);
                scope.spawn(move || {
                    start.wait();
                    s.put("/one.bin", vec![i; 4096]).status
                })
            })
            .collect();
        puts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let created = statuses.iter().filter(|&&status| status == 201).count();
    let replaced = statuses.iter().filter(|&&status| status == 204).count();
    assert_eq!((created, replaced), (1, 19), "statuses: {statuses:?}");
}

#[test]
fn copy_or_move_onto_an_ancestor_is_403_and_changes_nothing() {
    let s = Server::start();
    s.create_dir("/a/");
    s.create_dir("/a/b/");
    s.create("/a/b/f.txt", "precious");
    for method in ["MOVE", "COPY"] {
        for overwrite in ["T", "F"] {
            s.copy_move(method, "/a/b", "/a", &[("Overwrite", overwrite)])
                .expect(&[403], "onto the parent");
            s.copy_move(method, "/a", "/a/b/c", &[("Overwrite", overwrite)])
                .expect(&[403], "into itself");
            assert_eq!(
                s.get("/a/b/f.txt").expect(&[200], "source intact").text(),
                "precious",
                "{method} Overwrite: {overwrite}"
            );
        }
    }
}

/// A file replaced again and again while it is downloaded: each download
/// is one version whole, never the start of one version under the other's
/// length (a GET's lookup and its opening of the file once saw different
/// versions), never a transfer cut short.
#[test]
fn downloads_racing_replacements_get_one_version_whole() {
    let s = Server::start();
    let versions = [vec![b'a'; 1000], vec![b'b'; 200_000]];
    s.put("/f.bin", versions[0].clone())
        .expect(&[201], "first version");
    let replaced = AtomicBool::new(false);
    let downloads = thread::scope(|scope| {
        scope.spawn(|| {
            for round in 1..=300 {
                s.put("/f.bin", versions[round % 2].clone())
                    .expect(&[204], "replacement");
            }
            replaced.store(true, Ordering::Release);
        });
        let mut downloads = 0;
        while !replaced.load(Ordering::Acquire) {
            let got = s.get("/f.bin");
            // 503: replaced at each of a GET's attempts; asked to retry.
            got.expect(&[200, 503], "GET while the file is replaced");
            if got.status == 200 {
                assert!(
                    versions.contains(&got.body),
                    "download {downloads}: {} bytes starting {:?}, not a version",
                    got.body.len(),
                    got.body.first()
                );
                downloads += 1;
            }
        }
        downloads
    });
    assert!(downloads > 0, "no download completed");
}
