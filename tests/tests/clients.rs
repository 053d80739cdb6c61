//! Real WebDAV clients against the real server: rclone (a sync tool) and
//! cadaver (a command-line client). `scripts/test.sh` installs both.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use edgedav_tests::{Dav, Server};

fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed: run ./scripts/test.sh (or apt-get install {tool})"
    );
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn rclone(server: &Server, args: &[&str]) -> Output {
    let mut cmd = Command::new("rclone");
    cmd.args([
        "--config",
        "/dev/null",
        "--webdav-url",
        &server.url("/"),
        "--webdav-vendor",
        "other",
        "-q",
    ]);
    cmd.args(args);
    run(&mut cmd)
}

fn write_tree(root: &Path) {
    fs::create_dir_all(root.join("nested/deeper")).unwrap();
    fs::write(root.join("a.txt"), b"alpha\n").unwrap();
    fs::write(root.join("spaced name & more.txt"), b"spaces").unwrap();
    fs::write(root.join("nested/ünïcødé €.txt"), "unicode".as_bytes()).unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    fs::write(root.join("nested/deeper/big.bin"), big).unwrap();
}

#[test]
fn rclone_syncs_a_tree_both_ways() {
    require("rclone");
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    write_tree(&src);

    rclone(&server, &["mkdir", ":webdav:/r"]);
    rclone(&server, &["copy", src.to_str().unwrap(), ":webdav:/r"]);
    let listing = String::from_utf8(rclone(&server, &["lsf", "-R", ":webdav:/r"]).stdout).unwrap();
    for name in [
        "a.txt",
        "spaced name & more.txt",
        "nested/ünïcødé €.txt",
        "nested/deeper/big.bin",
    ] {
        assert!(
            listing.lines().any(|l| l == name),
            "{name} missing from rclone's listing:\n{listing}"
        );
    }
    // rclone compares sizes and modification times of every file.
    rclone(&server, &["check", src.to_str().unwrap(), ":webdav:/r"]);

    // Server-side rename and copy, then delete.
    rclone(
        &server,
        &["moveto", ":webdav:/r/a.txt", ":webdav:/r/renamed.txt"],
    );
    rclone(
        &server,
        &[
            "copyto",
            ":webdav:/r/renamed.txt",
            ":webdav:/r/nested/copy.txt",
        ],
    );
    rclone(
        &server,
        &["deletefile", ":webdav:/r/spaced name & more.txt"],
    );

    let back = work.path().join("back");
    rclone(&server, &["copy", ":webdav:/r", back.to_str().unwrap()]);
    assert_eq!(fs::read(back.join("renamed.txt")).unwrap(), b"alpha\n");
    assert_eq!(fs::read(back.join("nested/copy.txt")).unwrap(), b"alpha\n");
    assert!(!back.join("a.txt").exists());
    assert!(!back.join("spaced name & more.txt").exists());
    assert_eq!(
        fs::read(back.join("nested/deeper/big.bin")).unwrap(),
        fs::read(src.join("nested/deeper/big.bin")).unwrap()
    );

    rclone(&server, &["purge", ":webdav:/r"]);
    assert_eq!(server.get("/r/").status, 404);
}

#[test]
fn cadaver_session() {
    require("cadaver");
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("local.txt"), b"from cadaver\n").unwrap();
    let script = "mkcol docs\n\
                  put local.txt docs/file.txt\n\
                  lock docs/file.txt\n\
                  propset docs/file.txt colour blue\n\
                  propget docs/file.txt colour\n\
                  unlock docs/file.txt\n\
                  copy docs/file.txt docs/copy.txt\n\
                  move docs/copy.txt docs/moved.txt\n\
                  get docs/moved.txt fetched.txt\n\
                  ls docs\n\
                  rm docs/file.txt\n\
                  quit\n";
    let mut child = Command::new("cadaver")
        .arg(server.url("/"))
        .current_dir(work.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cadaver");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("failed"),
        "a cadaver command failed:\n{text}"
    );
    assert!(
        text.contains("blue"),
        "propget did not show the value:\n{text}"
    );
    assert!(
        text.contains("moved.txt"),
        "ls did not list the moved file:\n{text}"
    );
    assert_eq!(
        fs::read(work.path().join("fetched.txt")).unwrap(),
        b"from cadaver\n"
    );
    assert_eq!(server.get("/docs/file.txt").status, 404);
    assert_eq!(server.get("/docs/moved.txt").text(), "from cadaver\n");
}
