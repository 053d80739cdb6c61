//! Lock scenarios every composition must pass: each request runs in a fresh
//! instance, so locks live in the adapter's store and must hold across
//! instances and across a restart of the server.

use super::*;

fn lock(w: &Server, path: &str, scope: &str) -> Resp {
    w.req("LOCK", path)
        .header("Timeout", "Second-600")
        .header("Content-Type", "application/xml")
        .body(lockinfo(scope, "mailto:edge@example.org"))
        .exec()
}

/// Locks are enforced by the next instance and by the next server process
/// on the same store: tokens, scopes, depth, refresh and release.
pub(super) fn locks_hold_across_instances_and_restarts(w: &mut Server) {
    w.req("PUT", "/f.txt")
        .body("v1")
        .exec()
        .expect(&[201], "PUT");
    let r = lock(w, "/f.txt", "exclusive");
    r.expect(&[200], "LOCK");
    let token = r.lock_token();
    w.req("PUT", "/f.txt")
        .body("v2")
        .exec()
        .expect(&[423], "PUT without the token");
    lock(w, "/f.txt", "shared").expect(&[423], "shared LOCK over an exclusive one");
    w.req("PUT", "/f.txt")
        .header("If", format!("(<{token}>)"))
        .body("v2")
        .exec()
        .expect(&[204], "PUT with the token");
    w.req("LOCK", "/f.txt")
        .header("If", format!("(<{token}>)"))
        .header("Timeout", "Second-100")
        .exec()
        .expect(&[200], "LOCK refresh");
    w.req("MKCOL", "/shared").exec().expect(&[201], "MKCOL");
    for owner in ["x", "y"] {
        w.req("LOCK", "/shared")
            .header("Depth", "infinity")
            .body(lockinfo("shared", owner))
            .exec()
            .expect(&[200], "deep shared LOCK");
    }
    lock(w, "/shared", "exclusive").expect(&[423], "exclusive LOCK over shared ones");
    w.req("PUT", "/shared/new")
        .body("x")
        .exec()
        .expect(&[423], "PUT into a deep-locked collection");

    // A new server process on the same store: the locks survived.
    w.restart();
    w.req("PUT", "/f.txt")
        .body("v3")
        .exec()
        .expect(&[423], "PUT without the token after a restart");
    w.req("UNLOCK", "/f.txt")
        .header(
            "Lock-Token",
            "<urn:uuid:00000000-0000-4000-8000-000000000000>",
        )
        .exec()
        .expect(&[409, 412, 403, 400], "UNLOCK with an unknown token");
    w.req("UNLOCK", "/f.txt")
        .header("Lock-Token", format!("<{token}>"))
        .exec()
        .expect(&[204], "UNLOCK");
    w.req("PUT", "/f.txt")
        .body("v3")
        .exec()
        .expect(&[204], "PUT after UNLOCK");
    assert_eq!(w.req("GET", "/f.txt").exec().body, b"v3");
    // Depth-infinity locks cover members created later.
    w.req("MKCOL", "/d").exec().expect(&[201], "MKCOL");
    w.req("LOCK", "/d")
        .header("Depth", "infinity")
        .body(lockinfo("exclusive", "x"))
        .exec()
        .expect(&[200], "deep LOCK");
    w.req("PUT", "/d/new")
        .body("x")
        .exec()
        .expect(&[423], "PUT into a deep-locked collection");
}

/// Many clients LOCK the same resource at the same instant, in separate
/// instances: exactly one may win.
pub(super) fn lock_race(w: &Server) {
    const CLIENTS: usize = 16;
    // One connection per client, opened before the race starts.
    let clients: Vec<Client> = (0..CLIENTS)
        .map(|_| {
            let c = Client::builder().pool_max_idle_per_host(1).build().unwrap();
            c.request(reqwest::Method::OPTIONS, format!("{}/", w.base))
                .exec()
                .expect(&[200], "OPTIONS");
            c
        })
        .collect();
    for round in 0..40 {
        let path = format!("/race-{round}");
        let start = std::sync::Barrier::new(CLIENTS);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = clients
                .iter()
                .map(|c| {
                    let (start, url) = (&start, format!("{}{path}", w.base));
                    scope.spawn(move || {
                        start.wait();
                        c.request(reqwest::Method::from_bytes(b"LOCK").unwrap(), url)
                            .header("Timeout", "Second-600")
                            .body(lockinfo("exclusive", "mailto:edge@example.org"))
                            .exec()
                            .status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let granted = statuses.iter().filter(|s| matches!(s, 200 | 201)).count();
        let refused = statuses.iter().filter(|s| **s == 423).count();
        assert_eq!(
            (granted, refused),
            (1, CLIENTS - 1),
            "round {round}: statuses {statuses:?}"
        );
    }
}
