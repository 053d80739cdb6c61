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
    metric(
        s,
        &format!("edgedav_component_errors_total{{kind=\"{kind}\"}}"),
    )
}

/// A sample of the server's metrics, by its exact name and labels.
fn metric(s: &Server, name: &str) -> u64 {
    s.metric(name)
        .unwrap_or_else(|| panic!("no {name} in /metrics")) as u64
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

/// Two users and the anonymous user of the misbehaving component, with
/// `sandbox` added to its sandbox settings.
fn start_tenants(sandbox: &str) -> Server {
    let component = misbehaving_component();
    let hash = hash_password("pw");
    let user = |name: &str| {
        format!(
            "[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\n\
             home = {{ backend = \"local\", path = \"{{dir}}/{name}\" }}\n"
        )
    };
    Server::start_config(&format!(
        r#"
[server]
component = "{}"

[sandbox]
max_memory = "32MiB"
{sandbox}

[admin]
listen = "127.0.0.1:0"

[[bindings]]
listen = "127.0.0.1:0"
anonymous_user = "guest"

{}{}{}"#,
        component.display(),
        user("alice"),
        user("bob"),
        user("guest"),
    ))
}

/// `GET /count` as `user` (none: anonymously): how many such requests the
/// instance that answered has answered.
fn count(s: &Server, user: Option<&str>) -> u32 {
    let request = match user {
        Some(user) => s.req_as(user, "pw", "GET", "/count"),
        None => s.http("GET", "/count"),
    };
    let r = Resp::read("GET /count".into(), request.send().unwrap());
    assert_eq!(r.status, 200);
    r.text().trim().parse().unwrap()
}

/// Waits until the server keeps `n` idle instances: an instance goes back
/// to its user's pool just after its response is sent.
fn wait_warm(s: &Server, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(s, "edgedav_warm_instances") != n {
        assert!(Instant::now() < deadline, "never {n} warm instances");
        std::thread::yield_now();
    }
}

/// An instance answers further requests of its own user only, and one that
/// trapped answers nothing more.
#[test]
fn warm_instances_serve_their_own_user_only() {
    let s = start_tenants("");
    assert_eq!(count(&s, Some("alice")), 1);
    wait_warm(&s, 1);
    assert_eq!(count(&s, Some("alice")), 2, "alice's instance again");
    wait_warm(&s, 1);
    assert_eq!(count(&s, Some("bob")), 1, "not alice's instance");
    wait_warm(&s, 2);
    assert_eq!(count(&s, None), 1, "anonymous: not alice's instance either");
    wait_warm(&s, 3);
    assert_eq!(metric(&s, "edgedav_instance_reuses_total"), 1);

    // The trap retires alice's instance; her next request gets a new one.
    assert_eq!(
        s.req_as("alice", "pw", "GET", "/trap")
            .send()
            .unwrap()
            .status(),
        500
    );
    wait_warm(&s, 2);
    assert_eq!(
        count(&s, Some("alice")),
        1,
        "a fresh instance after the trap"
    );
    assert_eq!(errors(&s, "trap"), 1);
}

#[test]
fn instance_reuse_can_be_turned_off() {
    let s = start_tenants("instance_reuse = false");
    for _ in 0..3 {
        assert_eq!(count(&s, Some("alice")), 1);
    }
    assert_eq!(metric(&s, "edgedav_warm_instances"), 0);
    assert_eq!(metric(&s, "edgedav_instance_reuses_total"), 0);
}
