//! Users and HTTP Basic authentication (`--config`): the challenge, OPTIONS
//! without credentials, users isolated in their homes, anonymous read-only
//! access per binding, per-user lock ownership, and SIGHUP reloading users.

use std::time::Duration;

use edgedav_tests::*;

/// Two bindings (the second with anonymous access as `guest`), and users:
/// alice and bob in their own homes, carol and dave sharing one, guest.
fn config(alice: &str, bob: &str, shared: &str) -> String {
    format!(
        r#"
[[bindings]]
listen = "127.0.0.1:0"

[[bindings]]
listen = "127.0.0.1:0"
anonymous_user = "guest"

[[users]]
name = "alice"
password_hash = "{alice}"
home = {{ backend = "local", path = "{{dir}}/homes/alice" }}

[[users]]
name = "bob"
password_hash = "{bob}"
home = {{ backend = "local", path = "{{dir}}/homes/bob" }}

[[users]]
name = "carol"
password_hash = "{shared}"
home = {{ backend = "local", path = "{{dir}}/homes/shared" }}

[[users]]
name = "dave"
password_hash = "{shared}"
home = {{ backend = "local", path = "{{dir}}/homes/shared" }}

[[users]]
name = "guest"
password_hash = "{shared}"
home = {{ backend = "local", path = "{{dir}}/homes/public" }}
"#
    )
}

fn start() -> Server {
    Server::start_config_with(
        &config(
            &hash_password("alice-pw"),
            &hash_password("bob-pw"),
            &hash_password("shared-pw"),
        ),
        |dir| {
            std::fs::create_dir_all(dir.join("homes/public")).unwrap();
            std::fs::write(dir.join("homes/public/readme.txt"), "public content").unwrap();
        },
    )
}

#[test]
fn requests_without_valid_credentials_get_one_basic_challenge() {
    let s = start();
    for (what, r) in [
        ("no credentials", s.get("/")),
        ("no credentials, PROPFIND", s.propfind("/", "0", None)),
        (
            "wrong password",
            s.req_as("alice", "nope", "GET", "/").exec(),
        ),
        (
            "unknown user",
            s.req_as("mallory", "alice-pw", "GET", "/").exec(),
        ),
        (
            "another user's password",
            s.req_as("alice", "bob-pw", "GET", "/").exec(),
        ),
    ] {
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        let challenges: Vec<_> = r.headers.get_all("www-authenticate").iter().collect();
        assert_eq!(challenges.len(), 1, "{what}: exactly one challenge");
        assert_eq!(challenges[0], "Basic realm=\"edgedav\"", "{what}");
    }
    let r = s
        .req("GET", "/")
        .header("Authorization", "Bearer abc")
        .exec();
    assert_eq!(r.status, 401);
    assert_eq!(s.req_as("alice", "alice-pw", "GET", "/").exec().status, 200);
}

#[test]
fn options_is_answered_without_credentials() {
    let s = start();
    let r = s.req("OPTIONS", "/").exec();
    r.expect(&[200], "OPTIONS without credentials");
    assert!(r.must_header("DAV").contains('2'), "{:?}", r.headers);
    // OPTIONS does not open the store to strangers.
    let r = s.req("OPTIONS", "/nothing-here").exec();
    assert!(r.status < 500, "{}", r.status);
}

#[test]
fn two_users_are_isolated_from_each_other() {
    let s = start();
    let alice = |m: &str, p: &str| s.req_as("alice", "alice-pw", m, p);
    let bob = |m: &str, p: &str| s.req_as("bob", "bob-pw", m, p);

    alice("PUT", "/secret.txt")
        .body("alice's secret")
        .exec()
        .expect(&[201], "alice PUT");
    alice("MKCOL", "/private/")
        .exec()
        .expect(&[201], "alice MKCOL");
    assert_eq!(
        std::fs::read_to_string(s.dir().join("homes/alice/secret.txt")).unwrap(),
        "alice's secret",
        "stored in alice's home"
    );
    assert!(!s.dir().join("homes/bob/secret.txt").exists());

    // Bob sees none of it, by any path.
    assert_eq!(bob("GET", "/secret.txt").exec().status, 404);
    assert_eq!(bob("GET", "/private/").exec().status, 404);
    let listing = bob("PROPFIND", "/").header("Depth", "1").exec();
    listing.expect(&[207], "bob PROPFIND");
    assert!(!listing.text().contains("secret"), "{}", listing.text());
    for target in [
        "/../alice/secret.txt",
        "/%2e%2e/alice/secret.txt",
        "/..%2falice/secret.txt",
    ] {
        let r = s.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Ym9iOmJvYi1wdw==\r\nConnection: close\r\n\r\n"
        ));
        assert!(
            !r.text().contains("alice's secret"),
            "{target}: {}",
            r.status
        );
        assert_ne!(r.status, 200, "{target}");
    }

    // The same name in bob's home is another file.
    bob("PUT", "/secret.txt")
        .body("bob's")
        .exec()
        .expect(&[201], "bob PUT (created)");
    assert_eq!(bob("GET", "/secret.txt").exec().text(), "bob's");
    assert_eq!(alice("GET", "/secret.txt").exec().text(), "alice's secret");

    // COPY/MOVE cannot aim at another home: destinations are in the user's own.
    let r = bob("COPY", "/secret.txt")
        .header("Destination", s.url("/../alice/stolen.txt"))
        .exec();
    assert_ne!(r.status / 100, 2, "{}", r.status);
    assert!(!s.dir().join("homes/alice/stolen.txt").exists());
}

#[test]
fn anonymous_access_is_read_only_and_per_binding() {
    let s = start();
    assert_eq!(s.urls.len(), 2);
    let anon = &s.urls[1];
    let client = s.client();

    // The anonymous binding serves the guest's home without credentials.
    let r = Resp::read(
        "GET".into(),
        client.get(format!("{anon}/readme.txt")).send().unwrap(),
    );
    assert_eq!((r.status, r.text().as_str()), (200, "public content"));
    let r = Resp::read(
        "PROPFIND".into(),
        client
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                format!("{anon}/"),
            )
            .header("Depth", "1")
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 207);

    // Writing asks for credentials; nothing is written.
    for (method, path, body) in [
        ("PUT", "/new.txt", "x"),
        ("MKCOL", "/d/", ""),
        ("DELETE", "/readme.txt", ""),
    ] {
        let r = Resp::read(
            method.into(),
            client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{anon}{path}"),
                )
                .body(body)
                .send()
                .unwrap(),
        );
        assert_eq!(r.status, 401, "anonymous {method}");
        assert_eq!(r.must_header("WWW-Authenticate"), "Basic realm=\"edgedav\"");
    }
    assert!(!s.dir().join("homes/public/new.txt").exists());
    assert!(s.dir().join("homes/public/readme.txt").exists());

    // With credentials the same binding lets the guest write.
    let r = Resp::read(
        "PUT".into(),
        client
            .put(format!("{anon}/new.txt"))
            .basic_auth("guest", Some("shared-pw"))
            .body("hi")
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 201);

    // The first binding has no anonymous access.
    assert_eq!(s.get("/readme.txt").status, 401);
}

#[test]
fn locks_belong_to_the_user_who_took_them() {
    let s = start();
    let carol = |m: &str, p: &str| s.req_as("carol", "shared-pw", m, p);
    let dave = |m: &str, p: &str| s.req_as("dave", "shared-pw", m, p);

    carol("PUT", "/doc.txt")
        .body("v1")
        .exec()
        .expect(&[201], "PUT");
    let r = carol("LOCK", "/doc.txt")
        .header("Timeout", "Second-600")
        .header("Content-Type", "application/xml")
        .body(lockinfo("exclusive", "mailto:carol@example.org"))
        .exec();
    r.expect(&[200], "carol LOCK");
    let token = r.lock_token();

    // Dave shares the home, so he sees the lock but never its token.
    let r = dave("PROPFIND", "/doc.txt")
        .header("Depth", "0")
        .body(propfind_prop(&[(DAV, "lockdiscovery")]))
        .exec();
    r.expect(&[207], "dave PROPFIND lockdiscovery");
    assert!(r.text().contains("locktoken"), "{}", r.text());
    assert!(
        !r.text().contains(&token),
        "dave must not see carol's token:\n{}",
        r.text()
    );
    let r = carol("PROPFIND", "/doc.txt")
        .header("Depth", "0")
        .body(propfind_prop(&[(DAV, "lockdiscovery")]))
        .exec();
    assert!(r.text().contains(&token), "carol sees her token");

    // Dave can neither write through it, nor refresh, nor release it, even
    // with the real token.
    assert_eq!(dave("PUT", "/doc.txt").body("dave").exec().status, 423);
    let r = dave("PUT", "/doc.txt")
        .header("If", format!("(<{token}>)"))
        .body("dave")
        .exec();
    assert!(
        r.status == 412 || r.status == 423,
        "PUT with carol's token: {}",
        r.status
    );
    let r = dave("LOCK", "/doc.txt")
        .header("If", format!("(<{token}>)"))
        .header("Timeout", "Second-60")
        .exec();
    assert_ne!(
        r.status / 100,
        2,
        "dave refreshed carol's lock: {}",
        r.status
    );
    let r = dave("UNLOCK", "/doc.txt")
        .header("Lock-Token", format!("<{token}>"))
        .exec();
    assert_ne!(
        r.status / 100,
        2,
        "dave released carol's lock: {}",
        r.status
    );
    let r = dave("LOCK", "/doc.txt")
        .header("Content-Type", "application/xml")
        .body(lockinfo("shared", "mailto:dave@example.org"))
        .exec();
    assert_eq!(r.status, 423, "dave locked over carol's exclusive lock");
    assert_eq!(carol("GET", "/doc.txt").exec().text(), "v1");

    // Carol uses and releases it.
    carol("PUT", "/doc.txt")
        .header("If", format!("(<{token}>)"))
        .body("v2")
        .exec()
        .expect(&[204], "carol PUT with token");
    carol("UNLOCK", "/doc.txt")
        .header("Lock-Token", format!("<{token}>"))
        .exec()
        .expect(&[204], "carol UNLOCK");
    dave("PUT", "/doc.txt")
        .body("v3")
        .exec()
        .expect(&[204], "dave PUT after unlock");

    // Alice's home is elsewhere: her locks never touch carol's files.
    let r = s
        .req_as("alice", "alice-pw", "LOCK", "/doc.txt")
        .header("Content-Type", "application/xml")
        .body(lockinfo("exclusive", "mailto:alice@example.org"))
        .exec();
    r.expect(&[200, 201], "alice LOCK in her own home");
    dave("PUT", "/doc.txt")
        .body("v4")
        .exec()
        .expect(&[204], "unaffected by alice's lock");
}

#[test]
fn sighup_reloads_users_and_invalidates_the_cache() {
    let alice = hash_password("alice-pw");
    let bob = hash_password("bob-pw");
    let shared = hash_password("shared-pw");
    let s = start_with_hashes(&alice, &bob, &shared);
    assert_eq!(s.req_as("alice", "alice-pw", "GET", "/").exec().status, 200);

    // New password for alice; bob removed.
    let new_alice = hash_password("new-alice-pw");
    let text = config(&new_alice, &bob, &shared).replace("name = \"bob\"", "name = \"robert\"");
    s.write_config(&text);
    s.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(10), || {
        s.req_as("alice", "new-alice-pw", "GET", "/").exec().status == 200
    });
    assert_eq!(
        s.req_as("alice", "alice-pw", "GET", "/").exec().status,
        401,
        "old password still cached"
    );
    assert_eq!(
        s.req_as("bob", "bob-pw", "GET", "/").exec().status,
        401,
        "removed user"
    );
    assert_eq!(s.req_as("robert", "bob-pw", "GET", "/").exec().status, 200);

    // A broken file is refused and the running configuration stays.
    s.write_config("this is = = not toml");
    s.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(10), || {
        s.log().contains("reload refused")
    });
    assert_eq!(
        s.req_as("alice", "new-alice-pw", "GET", "/").exec().status,
        200
    );
}

fn start_with_hashes(alice: &str, bob: &str, shared: &str) -> Server {
    Server::start_config(&config(alice, bob, shared))
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
