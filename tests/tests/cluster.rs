//! Cluster mode: three hosts over one store share their locks, quota usage,
//! dead properties and defender bans through one PostgreSQL (each test
//! starts its own, see `edgedav_tests::Postgres`, at serializable isolation
//! as CockroachDB runs), and do without it for reads while it is down.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use edgedav_tests::*;

/// Three hosts with one configuration: the database, two users whose home
/// is one shared directory and one with a quota of her own, a defender that
/// bans after two failed logins.
struct Cluster {
    hosts: Vec<Server>,
    pg: Postgres,
    home: tempfile::TempDir,
    quota_home: tempfile::TempDir,
}

/// Carol's quota.
const QUOTA: u64 = 3_000_000;

fn cluster(test: &str) -> Option<Cluster> {
    cluster_with(test, None)
}

/// [`cluster`], with alice's and bob's home given (a TOML inline table)
/// instead of the shared directory.
fn cluster_with(test: &str, shared_home: Option<String>) -> Option<Cluster> {
    let Some(bin) = Postgres::binaries() else {
        skip(&format!(
            "SKIPPED {test}: PostgreSQL is not installed (apt-get install postgresql, \
             or set EDGEDAV_PG_BIN)"
        ));
        return None;
    };
    let pg = Postgres::start(bin);
    let home = tempfile::Builder::new()
        .prefix("edgedav-cluster-")
        .tempdir()
        .unwrap();
    let quota_home = tempfile::Builder::new()
        .prefix("edgedav-cluster-quota-")
        .tempdir()
        .unwrap();
    let hash = hash_password("pw");
    let shared_home = shared_home.unwrap_or_else(|| {
        format!(
            "{{ backend = \"local\", path = \"{}\" }}",
            home.path().display()
        )
    });
    let hosts = ["a", "b", "c"]
        .iter()
        .map(|node| {
            Server::start_config(&format!(
                r#"
[cluster]
database_url = "{url}"
node_name = "{node}"

[[bindings]]
listen = "127.0.0.1:0"
defender = {{ max_failures = 2, window = "1m", ban_time = "1h", action = "forbid" }}

[[users]]
name = "alice"
password_hash = "{hash}"
home = {shared_home}

[[users]]
name = "bob"
password_hash = "{hash}"
home = {shared_home}

[[users]]
name = "carol"
password_hash = "{hash}"
home = {{ backend = "local", path = "{quota_home}" }}
quota_bytes = {QUOTA}
"#,
                url = pg.url(),
                quota_home = quota_home.path().display(),
            ))
        })
        .collect();
    Some(Cluster {
        hosts,
        pg,
        home,
        quota_home,
    })
}

fn lock(s: &Server, user: &str, path: &str, depth: &str) -> Resp {
    s.req_as(user, "pw", "LOCK", path)
        .header("Timeout", "Second-600")
        .header("Depth", depth)
        .body(lockinfo("exclusive", "mailto:cluster@example.org"))
        .exec()
}

fn put(s: &Server, path: &str, body: &str, token: Option<&str>) -> Resp {
    let mut rb = s.req_as("alice", "pw", "PUT", path).body(body.to_owned());
    if let Some(token) = token {
        rb = rb.header("If", format!("(<{token}>)"));
    }
    rb.exec()
}

/// The statuses of `n` requests sent at once, round-robin through the
/// cluster's hosts: each client's `prepare`d input (its body, say) is ready
/// before a barrier releases them all into `send`.
fn at_once<P: Send>(
    c: &Cluster,
    n: usize,
    prepare: impl Fn(usize) -> P + Sync,
    send: impl Fn(&Server, P) -> u16 + Sync,
) -> Vec<u16> {
    let start = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (host, start, prepare, send) = (&c.hosts[i % 3], &start, &prepare, &send);
                scope.spawn(move || {
                    let input = prepare(i);
                    start.wait();
                    send(host, input)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Polls `check` until it holds, for at most `limit` (for what another
/// host learns on its next probe of the database, once a second).
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_lock_taken_through_one_host_holds_on_the_others() {
    let Some(c) = cluster("a_lock_taken_through_one_host_holds_on_the_others") else {
        return;
    };
    let [a, b, cc] = &c.hosts[..] else {
        unreachable!()
    };
    put(a, "/f.txt", "v1", None).expect(&[201], "PUT");
    let r = lock(a, "alice", "/f.txt", "0");
    r.expect(&[200], "LOCK through A");
    let token = r.lock_token();
    put(b, "/f.txt", "v2", None).expect(&[423], "PUT through B without the token");
    put(b, "/f.txt", "v2", Some(&token)).expect(&[204], "PUT through B with the token");
    // Another user cannot release it, through any host (the token is not
    // among the locks they see: 409, as on one host).
    b.req_as("bob", "pw", "UNLOCK", "/f.txt")
        .header("Lock-Token", format!("<{token}>"))
        .exec()
        .expect(&[409], "UNLOCK by another user");
    put(cc, "/f.txt", "v2", None).expect(&[423], "still locked through C");
    cc.req_as("alice", "pw", "UNLOCK", "/f.txt")
        .header("Lock-Token", format!("<{token}>"))
        .exec()
        .expect(&[204], "UNLOCK through C");
    put(b, "/f.txt", "v3", None).expect(&[204], "PUT through B after UNLOCK");
    assert_eq!(a.req_as("alice", "pw", "GET", "/f.txt").exec().text(), "v3");

    // A depth-infinity lock through A covers members locked through B.
    a.req_as("alice", "pw", "MKCOL", "/d")
        .exec()
        .expect(&[201], "MKCOL");
    lock(a, "alice", "/d", "infinity").expect(&[200], "deep LOCK through A");
    lock(b, "alice", "/d/m.txt", "0").expect(&[423], "LOCK of a member through B");
    put(cc, "/d/new.txt", "x", None).expect(&[423], "PUT into it through C");
    // And PROPFIND through C shows the lock taken through A.
    let r = cc
        .req_as("alice", "pw", "PROPFIND", "/d")
        .header("Depth", "0")
        .body(propfind_prop(&[("DAV:", "lockdiscovery")]))
        .exec();
    r.expect(&[207], "PROPFIND lockdiscovery");
    assert!(r.text().contains("infinity"), "{}", r.text());
}

#[test]
fn concurrent_locks_through_three_hosts_grant_exactly_one() {
    let Some(c) = cluster("concurrent_locks_through_three_hosts_grant_exactly_one") else {
        return;
    };
    const CLIENTS: usize = 60;
    put(&c.hosts[0], "/race.txt", "x", None).expect(&[201], "PUT");
    let statuses = at_once(
        &c,
        CLIENTS,
        |_| (),
        |host, ()| lock(host, "alice", "/race.txt", "0").status,
    );
    let granted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 423).count();
    assert_eq!((granted, refused), (1, CLIENTS - 1), "{statuses:?}");
}

/// Locks of different files do not conflict: every one is granted, however
/// many arrive at once through however many hosts (each acquisition queues
/// on the store's row in the database, and none may be undone for good).
#[test]
fn concurrent_locks_of_different_files_are_all_granted() {
    let Some(c) = cluster("concurrent_locks_of_different_files_are_all_granted") else {
        return;
    };
    const CLIENTS: usize = 30;
    let statuses = at_once(
        &c,
        CLIENTS,
        |i| format!("/many-{i}.txt"),
        |host, path| lock(host, "alice", &path, "0").status,
    );
    // 201: each file is created by its lock (RFC 4918 §9.10.4).
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
}

#[test]
fn parallel_uploads_through_three_hosts_never_exceed_a_quota() {
    let Some(c) = cluster("parallel_uploads_through_three_hosts_never_exceed_a_quota") else {
        return;
    };
    const UPLOADS: usize = 30;
    const SIZE: usize = 256 * 1024;
    let statuses = at_once(
        &c,
        UPLOADS,
        |i| (format!("/f{i}.bin"), pseudo_random(SIZE, i as u64 + 1)),
        |host, (path, body)| {
            host.req_as("carol", "pw", "PUT", &path)
                .body(body)
                .exec()
                .status
        },
    );
    let stored: u64 = std::fs::read_dir(c.quota_home.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 507).count();
    assert_eq!(created + refused, UPLOADS, "{statuses:?}");
    assert!(
        stored <= QUOTA,
        "{stored} bytes stored over a quota of {QUOTA}"
    );
    assert_eq!(stored, (created * SIZE) as u64);
    assert!(created >= 1 && refused >= 1, "{statuses:?}");
    // Every host agrees on what is left.
    for host in &c.hosts {
        let r = host
            .req_as("carol", "pw", "PROPFIND", "/")
            .header("Depth", "0")
            .body(propfind_prop(&[("DAV:", "quota-used-bytes")]))
            .exec();
        r.expect(&[207], "PROPFIND quota-used-bytes");
        let used = r.multistatus()[0]
            .prop_ok("DAV:", "quota-used-bytes")
            .all_text();
        assert_eq!(used, stored.to_string());
    }
}

#[test]
fn a_host_killed_mid_upload_loses_nothing_and_its_locks_hold() {
    use std::io::Write;
    let Some(c) = cluster("a_host_killed_mid_upload_loses_nothing_and_its_locks_hold") else {
        return;
    };
    let [a, b, cc] = &c.hosts[..] else {
        unreachable!()
    };
    put(a, "/doc.txt", "v1", None).expect(&[201], "PUT");
    let token = lock(a, "alice", "/doc.txt", "0").lock_token();
    // An upload through A, 1 MiB of its announced 10 MB sent, and a
    // replacement of doc.txt under the lock, half sent.
    let mut uploads = Vec::new();
    for (path, extra) in [
        ("/big.bin", String::new()),
        ("/doc.txt", format!("If: (<{token}>)\r\n")),
    ] {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
        write!(
            stream,
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic YWxpY2U6cHc=\r\n\
             {extra}Content-Length: 10000000\r\n\r\n"
        )
        .unwrap();
        stream.write_all(&pseudo_random(1 << 20, 9)).unwrap();
        uploads.push(stream);
    }
    // Killed once both are being written into their staged files.
    eventually(Duration::from_secs(30), "both uploads staged", || {
        let open = a.open_files_below(c.home.path());
        open.into_iter().filter(|&len| len > 0).count() >= 2
    });
    a.signal(libc::SIGKILL);
    drop(uploads);
    // B and C keep serving; neither upload is visible, whole or in part.
    b.req_as("alice", "pw", "GET", "/big.bin")
        .exec()
        .expect(&[404], "GET of the upload cut by the crash");
    let r = cc.req_as("alice", "pw", "GET", "/doc.txt").exec();
    r.expect(&[200], "GET through C");
    assert_eq!(r.text(), "v1");
    let listing = cc
        .req_as("alice", "pw", "PROPFIND", "/")
        .header("Depth", "1")
        .exec();
    listing.expect(&[207], "PROPFIND");
    let names: Vec<String> = listing.multistatus().iter().map(|m| m.path()).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("big.bin") || n.contains(".edgedav")),
        "{names:?}"
    );
    // A's lock holds through the others.
    put(b, "/doc.txt", "v2", None).expect(&[423], "PUT without the token");
    put(cc, "/doc.txt", "v2", Some(&token)).expect(&[204], "PUT with the token");
}

#[test]
fn a_ban_on_one_host_holds_on_the_others() {
    let Some(c) = cluster("a_ban_on_one_host_holds_on_the_others") else {
        return;
    };
    let (a, b) = (&c.hosts[0], &c.hosts[1]);
    let wrong = |s: &Server| s.req_as("alice", "wrong", "GET", "/").exec().status;
    assert_eq!(wrong(a), 401);
    assert_eq!(wrong(a), 401, "the second failure bans");
    assert_eq!(
        a.req_as("alice", "pw", "GET", "/").exec().status,
        403,
        "banned on A"
    );
    eventually(Duration::from_secs(15), "the ban reaching B", || {
        b.req_as("alice", "pw", "GET", "/").exec().status == 403
    });
}

#[test]
fn without_the_database_reads_work_writes_wait_and_hosts_recover() {
    let Some(c) = cluster("without_the_database_reads_work_writes_wait_and_hosts_recover") else {
        return;
    };
    let [a, b, _] = &c.hosts[..] else {
        unreachable!()
    };
    put(a, "/f.txt", "kept", None).expect(&[201], "PUT");
    let token = lock(a, "alice", "/f.txt", "0").lock_token();
    c.pg.stop();
    // The first write after the database went away finds out (503 either
    // way); from then on every host refuses writes up front.
    for host in [a, b] {
        eventually(Duration::from_secs(15), "a host noticing", || {
            let r = lock(host, "alice", "/other.txt", "0");
            r.status == 503 && r.header("Retry-After").is_some()
        });
        put(host, "/f.txt", "lost?", Some(&token)).expect(&[503], "PUT without the database");
        let r = host.req_as("alice", "pw", "GET", "/f.txt").exec();
        r.expect(&[200], "GET without the database");
        assert_eq!(r.text(), "kept");
    }
    c.pg.start_again();
    eventually(Duration::from_secs(15), "recovery", || {
        put(b, "/f.txt", "v2", None).status == 423
    });
    // The lock survived in the database.
    put(b, "/f.txt", "v2", Some(&token)).expect(&[204], "PUT with the token after recovery");
}

#[test]
fn dead_properties_of_an_s3_home_live_in_the_database() {
    let test = "dead_properties_of_an_s3_home_live_in_the_database";
    let Some(endpoint) = std::env::var("EDGEDAV_S3_ENDPOINT").ok() else {
        skip(&format!(
            "SKIPPED {test}: EDGEDAV_S3_ENDPOINT is not set (scripts/garage.sh)"
        ));
        return;
    };
    let bucket = std::env::var("EDGEDAV_S3_BUCKET").unwrap_or_else(|_| "edgedav".into());
    let region = std::env::var("EDGEDAV_S3_REGION").unwrap_or_else(|_| "garage".into());
    let prefix = format!("cluster-props-{}", std::process::id());
    let home = format!(
        "{{ backend = \"s3\", bucket = \"{bucket}\", prefix = \"{prefix}\", \
         endpoint = \"{endpoint}\", region = \"{region}\", path_style = true }}"
    );
    let Some(c) = cluster_with(test, Some(home)) else {
        return;
    };
    let [a, b, cc] = &c.hosts[..] else {
        unreachable!()
    };
    let rows = || c.pg.query("SELECT count(*) FROM edgedav_properties");
    a.req_as("alice", "pw", "MKCOL", "/d")
        .exec()
        .expect(&[201], "MKCOL");
    for i in 0..20 {
        put(a, &format!("/d/f{i:02}.txt"), "x", None).expect(&[201], "PUT");
    }
    let tag = |value: &str| {
        format!(
            r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:cluster"><D:set><D:prop><Z:tag>{value}</Z:tag></D:prop></D:set></D:propertyupdate>"#
        )
    };
    for i in (0..20).step_by(2) {
        b.req_as("alice", "pw", "PROPPATCH", &format!("/d/f{i:02}.txt"))
            .body(tag(&format!("v{i}")))
            .exec()
            .expect(&[207], "PROPPATCH through B");
    }
    assert_eq!(rows(), "10", "one row per resource with properties");
    // Depth 1 allprop through C: every tagged member shows its tag.
    let r = cc
        .req_as("alice", "pw", "PROPFIND", "/d")
        .header("Depth", "1")
        .exec();
    r.expect(&[207], "PROPFIND allprop");
    let ms = r.multistatus();
    for i in 0..20 {
        let member = find_response(&ms, &format!("/d/f{i:02}.txt")).expect("listed");
        let tag = member.prop("urn:cluster", "tag").map(|(_, x)| x.all_text());
        let expected = (i % 2 == 0).then(|| format!("v{i}"));
        assert_eq!(tag, expected, "f{i:02}");
    }
    // MOVE carries them, DELETE removes them.
    a.req_as("alice", "pw", "MOVE", "/d/f00.txt")
        .header("Destination", a.url("/d/moved.txt"))
        .exec()
        .expect(&[201], "MOVE");
    let moved = b
        .req_as("alice", "pw", "PROPFIND", "/d/moved.txt")
        .header("Depth", "0")
        .body(propfind_prop(&[("urn:cluster", "tag")]))
        .exec();
    moved.expect(&[207], "PROPFIND of the moved file");
    assert_eq!(
        moved.multistatus()[0]
            .prop_ok("urn:cluster", "tag")
            .all_text(),
        "v0"
    );
    cc.req_as("alice", "pw", "DELETE", "/d/f02.txt")
        .exec()
        .expect(&[204], "DELETE");
    assert_eq!(rows(), "9");
    // Properties left by a resource that is gone never show on a new one.
    c.pg.query(
        "INSERT INTO edgedav_properties (store, path, parent, props) \
         SELECT store, '/d/f02.txt', parent, props FROM edgedav_properties \
         WHERE path = '/d/moved.txt'",
    );
    put(b, "/d/f02.txt", "new", None).expect(&[201], "PUT over a stale row");
    // And a listing of their collection removes rows of resources that are
    // gone.
    c.pg.query(
        "INSERT INTO edgedav_properties (store, path, parent, props) \
         SELECT store, '/d/ghost.txt', parent, props FROM edgedav_properties \
         WHERE path = '/d/moved.txt'",
    );
    assert_eq!(rows(), "10");
    cc.req_as("alice", "pw", "PROPFIND", "/d")
        .header("Depth", "1")
        .exec()
        .expect(&[207], "PROPFIND Depth 1");
    assert_eq!(rows(), "9", "the orphan row is gone");
    let fresh = cc
        .req_as("alice", "pw", "PROPFIND", "/d/f02.txt")
        .header("Depth", "0")
        .exec();
    fresh.expect(&[207], "PROPFIND");
    assert!(!fresh.text().contains("urn:cluster"), "{}", fresh.text());
}
