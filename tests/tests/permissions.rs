//! Read-only users and per-path permissions, enforced by the host's storage
//! guard: refusals are 403 and leave the store as it was.

use edgedav_tests::*;

fn start() -> Server {
    let hash = hash_password("pw");
    Server::start_config_with(
        &format!(
            r#"
[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "reader"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
read_only = true

[[users]]
name = "writer"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
permissions = {{ "/" = ["*"], "/ro" = ["list", "download"], "/dropbox" = ["upload", "create_dirs"], "/nolist" = ["download", "upload", "overwrite"] }}
"#
        ),
        |dir| {
            for d in ["home/ro", "home/dropbox", "home/nolist"] {
                std::fs::create_dir_all(dir.join(d)).unwrap();
            }
            std::fs::write(dir.join("home/top.txt"), "top").unwrap();
            std::fs::write(dir.join("home/ro/a.txt"), "read me").unwrap();
            std::fs::write(dir.join("home/nolist/hidden.txt"), "hidden").unwrap();
        },
    )
}

fn unchanged(s: &Server) {
    let home = s.dir().join("home");
    assert_eq!(
        std::fs::read_to_string(home.join("top.txt")).unwrap(),
        "top"
    );
    assert_eq!(
        std::fs::read_to_string(home.join("ro/a.txt")).unwrap(),
        "read me"
    );
}

#[test]
fn read_only_users_can_read_but_not_change_anything() {
    let s = start();
    let reader = |m: &str, p: &str| s.req_as("reader", "pw", m, p);
    assert_eq!(reader("GET", "/top.txt").exec().text(), "top");
    assert_eq!(reader("GET", "/ro/a.txt").exec().status, 200);
    reader("PROPFIND", "/")
        .header("Depth", "1")
        .exec()
        .expect(&[207], "reader PROPFIND");

    for (method, path) in [
        ("PUT", "/new.txt"),
        ("PUT", "/top.txt"),
        ("MKCOL", "/newdir/"),
        ("DELETE", "/top.txt"),
        ("DELETE", "/ro/"),
    ] {
        let body = if method == "PUT" { "x" } else { "" };
        let r = reader(method, path).body(body).exec();
        assert_eq!(r.status, 403, "reader {method} {path}: {}", r.text());
    }
    for method in ["COPY", "MOVE"] {
        let r = reader(method, "/top.txt")
            .header("Destination", s.url("/copy.txt"))
            .exec();
        assert_eq!(r.status, 403, "reader {method}");
    }
    let r = reader("LOCK", "/top.txt")
        .header("Content-Type", "application/xml")
        .body(lockinfo("exclusive", "mailto:r@example.org"))
        .exec();
    assert_eq!(r.status, 403, "reader LOCK");
    let r = reader("PROPPATCH", "/top.txt")
        .header("Content-Type", "application/xml")
        .body(r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:p>v</Z:p></D:prop></D:set></D:propertyupdate>"#)
        .exec();
    assert!(
        r.status == 403 || (r.status == 207 && r.text().contains("403")),
        "reader PROPPATCH: {} {}",
        r.status,
        r.text()
    );

    unchanged(&s);
    assert!(!s.dir().join("home/new.txt").exists());
    assert!(!s.dir().join("home/newdir").exists());
    assert!(!s.dir().join("home/copy.txt").exists());
}

#[test]
fn per_path_permissions_apply_to_their_subtree() {
    let s = start();
    let writer = |m: &str, p: &str| s.req_as("writer", "pw", m, p);

    // "/" allows everything.
    writer("PUT", "/free.txt")
        .body("x")
        .exec()
        .expect(&[201], "PUT in /");
    writer("MKCOL", "/made/")
        .exec()
        .expect(&[201], "MKCOL in /");

    // "/ro": list and download only.
    assert_eq!(writer("GET", "/ro/a.txt").exec().text(), "read me");
    writer("PROPFIND", "/ro/")
        .header("Depth", "1")
        .exec()
        .expect(&[207], "list /ro");
    assert_eq!(writer("PUT", "/ro/new.txt").body("x").exec().status, 403);
    assert_eq!(writer("PUT", "/ro/a.txt").body("x").exec().status, 403);
    assert_eq!(writer("DELETE", "/ro/a.txt").exec().status, 403);
    assert_eq!(writer("MKCOL", "/ro/sub/").exec().status, 403);
    let r = writer("MOVE", "/free.txt")
        .header("Destination", s.url("/ro/free.txt"))
        .exec();
    assert_eq!(r.status, 403, "MOVE into /ro");
    let r = writer("MOVE", "/ro/a.txt")
        .header("Destination", s.url("/a.txt"))
        .exec();
    assert_eq!(r.status, 403, "MOVE out of /ro");
    // Deleting /ro itself would delete what /ro protects.
    assert_eq!(writer("DELETE", "/ro/").exec().status, 403);
    // Copying out of /ro is reading it: allowed.
    writer("COPY", "/ro/a.txt")
        .header("Destination", s.url("/a-copy.txt"))
        .exec()
        .expect(&[201], "COPY out of /ro");

    // "/dropbox": upload and create_dirs, but no reading, listing or overwriting.
    writer("PUT", "/dropbox/in.txt")
        .body("drop")
        .exec()
        .expect(&[201], "PUT into dropbox");
    writer("MKCOL", "/dropbox/sub/")
        .exec()
        .expect(&[201], "MKCOL in dropbox");
    assert_eq!(writer("GET", "/dropbox/in.txt").exec().status, 403);
    assert_eq!(
        writer("PUT", "/dropbox/in.txt").body("again").exec().status,
        403
    );
    // A listing that is not allowed shows the collection, then 403 for its members.
    let r = writer("PROPFIND", "/dropbox/").header("Depth", "1").exec();
    assert_eq!(r.status, 207);
    assert!(
        r.text().contains("403") && !r.text().contains("in.txt"),
        "{}",
        r.text()
    );
    assert_eq!(writer("DELETE", "/dropbox/in.txt").exec().status, 403);
    assert_eq!(
        std::fs::read_to_string(s.dir().join("home/dropbox/in.txt")).unwrap(),
        "drop"
    );

    // "/nolist": files can be read by name but not listed.
    assert_eq!(writer("GET", "/nolist/hidden.txt").exec().text(), "hidden");
    let r = writer("PROPFIND", "/nolist/").header("Depth", "1").exec();
    assert!(
        r.text().contains("403") && !r.text().contains("hidden.txt"),
        "{}",
        r.text()
    );
    writer("PUT", "/nolist/hidden.txt")
        .body("new")
        .exec()
        .expect(&[204], "overwrite in /nolist");

    unchanged(&s);
}
