//! Sandbox limits: a component that spins, traps or exhausts its memory gets
//! a 5xx (503 for the CPU-time deadline, 500 for a trap), the failure is
//! counted, and the server keeps serving; wall time spent waiting is not
//! CPU time.
//!
//! The misbehaving component is `tests/fixtures/misbehave`, built here for
//! wasm32-wasip2 (into `target/fixtures`) the first time a test needs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use edgedav_tests::*;

fn misbehaving_component() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_path_buf();
            let manifest = workspace.join("tests/fixtures/misbehave/Cargo.toml");
            let target_dir = workspace.join("target/fixtures");
            let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
            cmd.current_dir(&workspace)
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--manifest-path",
                ])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target_dir);
            for var in [
                "RUSTFLAGS",
                "CARGO_ENCODED_RUSTFLAGS",
                "CARGO_BUILD_TARGET",
                "CARGO_TARGET_DIR",
            ] {
                cmd.env_remove(var);
            }
            let status = cmd
                .status()
                .expect("running cargo to build the test component");
            assert!(status.success(), "building tests/fixtures/misbehave failed");
            let wasm = target_dir.join("wasm32-wasip2/release/edgedav_misbehave.wasm");
            assert!(wasm.is_file(), "{} missing", wasm.display());
            wasm
        })
        .clone()
}

fn start() -> Server {
    start_with("")
}

/// `binding` adds settings to the one binding.
fn start_with(binding: &str) -> Server {
    let component = misbehaving_component();
    let hash = hash_password("pw");
    Server::start_config(&format!(
        r#"
[server]
component = "{}"

[sandbox]
max_cpu_time = "1s"
max_memory = "32MiB"

[admin]
listen = "127.0.0.1:0"

[[bindings]]
listen = "127.0.0.1:0"
anonymous_user = "guest"
{binding}

[[users]]
name = "guest"
password_hash = "{hash}"
home = {{ backend = "local", path = "{{dir}}/home" }}
"#,
        component.display()
    ))
}

fn errors(s: &Server, kind: &str) -> u64 {
    let text = s
        .client()
        .get(format!("{}/metrics", s.admin.as_ref().unwrap()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let key = format!("edgedav_component_errors_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn a_spinning_guest_is_stopped_at_its_cpu_deadline() {
    let s = start();
    assert_eq!(s.get("/ok").text(), "ok\n");

    // While one request spins, others are served promptly.
    let base = s.base.clone();
    let spinner = std::thread::spawn(move || {
        let started = Instant::now();
        let r = reqwest::blocking::Client::new()
            .get(format!("{base}/spin"))
            .timeout(Duration::from_secs(60))
            .send()
            .unwrap();
        (r.status().as_u16(), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(s.get("/ok").status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
    }
    let (status, took) = spinner.join().unwrap();
    assert_eq!(status, 503);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(15),
        "{took:?}"
    );

    assert_eq!(s.get("/ok").status, 200, "the next request succeeds");
    assert_eq!(errors(&s, "deadline"), 1);
    assert!(s.log().contains("deadline"), "logged");
}

#[test]
fn traps_and_memory_exhaustion_answer_500_and_the_server_goes_on() {
    let s = start();
    let r = s.get("/trap");
    assert_eq!(r.status, 500);
    assert_eq!(s.get("/ok").status, 200, "after a trap");
    let started = Instant::now();
    let r = s.get("/oom");
    assert_eq!(r.status, 500, "out of memory (32 MiB cap)");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(s.get("/ok").status, 200, "after running out of memory");
    assert_eq!(errors(&s, "trap"), 2);
    assert_eq!(errors(&s, "deadline"), 0);
}

#[test]
fn waiting_is_not_cpu_time() {
    let s = start();
    // 2.5 s on a host timer, with a 1 s CPU-time deadline.
    let started = Instant::now();
    let r = s.get("/sleep?2500");
    assert_eq!((r.status, r.text().as_str()), (200, "slept\n"));
    assert!(started.elapsed() >= Duration::from_millis(2400));
    assert_eq!(errors(&s, "deadline"), 0);
}

#[test]
fn a_request_with_no_answer_within_request_timeout_gets_503() {
    let s = start_with("request_timeout = \"1s\"");
    let started = Instant::now();
    let r = s.get("/sleep?5000");
    assert_eq!(r.status, 503);
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.get("/sleep?100").status, 200);
}
