//! The web interface in a real browser: `tests/browser/webui.mjs` drives
//! Debian's headless Chromium (through playwright-core) against the release
//! server, as an anonymous user, as a Basic-auth user and as a read-only
//! user. `scripts/test.sh` installs Chromium and the script's npm packages;
//! this test installs nothing, and without them it is skipped (a failure
//! under `EDGEDAV_REQUIRE_ALL=1`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use edgedav_tests::*;

/// One browser at a time: two Chromiums at once on a loaded 2-core machine
/// would only make both slow.
static BROWSER: Mutex<()> = Mutex::new(());

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// What the browser test needs, or why it cannot run.
fn missing_tools() -> Option<String> {
    let chromium = std::env::var_os("EDGEDAV_CHROMIUM")
        .map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    if !chromium.is_file() {
        return Some(format!(
            "{} is missing (apt-get install -y chromium)",
            chromium.display()
        ));
    }
    if !Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some("node is missing (Node.js 20 or later)".into());
    }
    let module = workspace().join("tests/browser/node_modules/playwright-core");
    if !module.is_dir() {
        return Some(format!(
            "{} is missing (npm ci --prefix tests/browser)",
            module.display()
        ));
    }
    None
}

/// Runs the browser script; panics with its output unless it passed.
/// False when the tools are missing and the test is skipped.
fn browse(name: &str, args: &[&str]) -> bool {
    if let Some(why) = missing_tools() {
        skip(&format!("SKIPPED {name}: {why}\n"));
        return false;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new("node")
        .arg(workspace().join("tests/browser/webui.mjs"))
        .args(args)
        .output()
        .expect("spawn node");
    assert!(
        out.status.success(),
        "the browser test failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

fn screenshot(name: &str) -> String {
    workspace().join("target").join(name).display().to_string()
}

#[test]
fn webui_works_in_a_browser_without_auth() {
    let s = Server::start();
    if !browse(
        "webui_works_in_a_browser_without_auth",
        &[&s.url("/"), &screenshot("webui-screenshot.png")],
    ) {
        return;
    }
    // What the browser did is on disk.
    let root = s.root();
    assert_eq!(
        std::fs::read(root.join("hello big.bin")).unwrap().len(),
        3 << 20
    );
    assert_eq!(
        std::fs::read_to_string(root.join("dropped.txt")).unwrap(),
        "dropped!"
    );
    let folder = root.join("a b ü #%&");
    assert!(folder.is_dir());
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
}

#[test]
fn webui_works_for_basic_auth_and_read_only_users() {
    let hash = hash_password("pw 1:x");
    let s = Server::start_config_with(
        &format!(
            r#"
[[bindings]]
listen = "127.0.0.1:0"

[[users]]
name = "writer"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}

[[users]]
name = "reader"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
read_only = true
"#
        ),
        |dir| std::fs::create_dir_all(dir.join("home")).unwrap(),
    );
    // Without credentials the listing is refused, so the browser's
    // successes below are the users' own.
    s.get("/").expect(&[401], "anonymous GET");
    let authority = s.base.trim_start_matches("http://");
    let as_user = |user: &str| format!("http://{user}:pw%201%3Ax@{authority}/");
    if !browse(
        "webui_works_for_basic_auth_and_read_only_users",
        &[
            &as_user("writer"),
            &screenshot("webui-screenshot-auth.png"),
            &as_user("reader"),
        ],
    ) {
        return;
    }
    let home = s.dir().join("home");
    assert!(home.join("a b ü #%&").is_dir());
    assert!(!home.join("nope.txt").exists());
    assert!(home.join("dropped.txt").is_file());
}
