//! The handler component on the edge (issue 5): the compositions that
//! `scripts/edge.sh` builds with `wac plug`, run under stock `wasmtime serve`
//! or checked against Spin's world, plus partial updates on the native host.
//!
//! The composition tests need the files and tools `scripts/edge.sh` sets up
//! and skip, loudly, only when `EDGEDAV_EDGE_FS_WASM` is absent. With it set,
//! every other variable must be valid too:
//!
//! * `EDGEDAV_EDGE_FS_WASM`, `EDGEDAV_EDGE_SPIN_WASM`: the compositions;
//! * `EDGEDAV_EDGE_HANDLER_WASM`: the handler file they were composed from;
//! * `EDGEDAV_FS_ADAPTER_WASM`, `EDGEDAV_SPIN_ADAPTER_WASM`: the adapters
//!   on their own (for the storage conformance suite);
//! * `EDGEDAV_WASMTIME`, `EDGEDAV_WASM_TOOLS`: the tools;
//! * `EDGEDAV_EDGE_SPIN_WIT`, `EDGEDAV_EDGE_SPIN_WORLD`: the WIT directory
//!   (examples/spin/wit/edge.wit with spin-sdk 5.2.0's WIT as deps) and world;
//! * `EDGEDAV_SPIN_TESTHOST`: examples/spin-testhost, which serves the Spin
//!   composition as Spin would (Spin itself cannot be built here).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use edgedav_tests::*;

const PARTIAL: &str = "application/x-sabredav-partialupdate";

struct EdgeEnv {
    fs_wasm: PathBuf,
    spin_wasm: PathBuf,
    handler_wasm: PathBuf,
    fs_adapter: PathBuf,
    spin_adapter: PathBuf,
    wasmtime: PathBuf,
    wasm_tools: PathBuf,
    spin_wit: PathBuf,
    spin_world: String,
    spin_testhost: PathBuf,
}

fn edge_env(test: &str) -> Option<EdgeEnv> {
    let Some(fs_wasm) = std::env::var_os("EDGEDAV_EDGE_FS_WASM") else {
        edgedav_tests::skip(&format!(
            "\n==================== SKIPPED {test} ====================\n\
             EDGEDAV_EDGE_FS_WASM is not set: this test needs the compositions and tools\n\
             that ./scripts/edge.sh builds and installs (run that script to run it).\n\
             ========================================================\n"
        ));
        return None;
    };
    let file = |var: &str| {
        let p = PathBuf::from(
            std::env::var_os(var)
                .unwrap_or_else(|| panic!("{var} is not set (EDGEDAV_EDGE_FS_WASM is)")),
        );
        assert!(p.is_file(), "{var}={} does not exist", p.display());
        p
    };
    let env = EdgeEnv {
        fs_wasm: PathBuf::from(fs_wasm),
        spin_wasm: file("EDGEDAV_EDGE_SPIN_WASM"),
        handler_wasm: file("EDGEDAV_EDGE_HANDLER_WASM"),
        fs_adapter: file("EDGEDAV_FS_ADAPTER_WASM"),
        spin_adapter: file("EDGEDAV_SPIN_ADAPTER_WASM"),
        wasmtime: file("EDGEDAV_WASMTIME"),
        wasm_tools: file("EDGEDAV_WASM_TOOLS"),
        spin_wit: PathBuf::from(
            std::env::var_os("EDGEDAV_EDGE_SPIN_WIT").expect("EDGEDAV_EDGE_SPIN_WIT is not set"),
        ),
        spin_world: std::env::var("EDGEDAV_EDGE_SPIN_WORLD")
            .expect("EDGEDAV_EDGE_SPIN_WORLD is not set"),
        spin_testhost: file("EDGEDAV_SPIN_TESTHOST"),
    };
    assert!(
        env.fs_wasm.is_file(),
        "EDGEDAV_EDGE_FS_WASM={} does not exist",
        env.fs_wasm.display()
    );
    assert!(
        env.spin_wit.is_dir(),
        "EDGEDAV_EDGE_SPIN_WIT={} is not a directory",
        env.spin_wit.display()
    );
    Some(env)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// FNV-1a, to name file contents in messages.
fn digest(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    });
    format!("{h:016x} ({} bytes)", bytes.len())
}

// ---------------------------------------------------------------- servers

/// A composition being served: by `wasmtime serve` (the fs one) or by the
/// Spin test host (the Spin one). Killed on drop.
struct Edge {
    child: Child,
    base: String,
    log: PathBuf,
    client: Client,
}

impl Edge {
    /// `wasmtime serve -S cli --dir ROOT::/data --addr 127.0.0.1:0 FS_WASM`.
    fn wasmtime(env: &EdgeEnv, root: &Path, log: PathBuf) -> Edge {
        let mut cmd = Command::new(&env.wasmtime);
        cmd.arg("serve")
            .arg("-S")
            .arg("cli")
            .arg("--dir")
            .arg(format!("{}::/data", root.display()))
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg(&env.fs_wasm);
        Edge::spawn(cmd, log)
    }

    /// The Spin test host serving the Spin composition on a SQLite file.
    fn spin(env: &EdgeEnv, database: &Path, log: PathBuf) -> Edge {
        let mut cmd = Command::new(&env.spin_testhost);
        cmd.arg(&env.spin_wasm).arg(database).arg("127.0.0.1:0");
        Edge::spawn(cmd, log)
    }

    /// Starts `cmd`; its first `http://` word (on stdout or stderr) is the
    /// address; both streams go to `log`.
    fn spawn(mut cmd: Command, log: PathBuf) -> Edge {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(target_os = "linux")]
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (tx, rx) = mpsc::channel::<String>();
        let file = std::sync::Arc::new(std::sync::Mutex::new(std::fs::File::create(&log).unwrap()));
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [stdout, stderr] {
            let (tx, file) = (tx.clone(), file.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    use std::io::Write;
                    let _ = writeln!(file.lock().unwrap(), "{line}");
                    if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                        let _ = tx.send(url.trim_end_matches('/').to_owned());
                    }
                }
            });
        }
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{cmd:?} printed no address; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        Edge {
            child,
            base,
            log,
            client,
        }
    }

    fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.base),
        )
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let mut cut = log.len().saturating_sub(4000);
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            eprintln!("---- server log (tail) ----\n{}", &log[cut..]);
        }
    }
}

/// A scratch directory with `root/` (served) and logs.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("edgedav-edge-")
        .tempdir()
        .unwrap();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    dir
}

/// `wasmtime serve` on the fs composition, serving `dir/root`.
fn start(env: &EdgeEnv, dir: &tempfile::TempDir, name: &str) -> Edge {
    Edge::wasmtime(
        env,
        &dir.path().join("root"),
        dir.path().join(format!("{name}.log")),
    )
}

/// The Spin test host on the Spin composition, with `dir/spin.sqlite`.
fn start_spin(env: &EdgeEnv, dir: &tempfile::TempDir, name: &str) -> Edge {
    Edge::spin(
        env,
        &dir.path().join("spin.sqlite"),
        dir.path().join(format!("{name}.log")),
    )
}

// ---------------------------------------------------------------- one handler file

/// Both guest adapters, called directly through their `edgedav:dav/storage`
/// exports, pass the storage conformance suite (`conformance/`) that the
/// native backends and the in-memory store pass.
#[test]
fn both_adapters_pass_the_storage_conformance_suite() {
    let Some(env) = edge_env("both_adapters_pass_the_storage_conformance_suite") else {
        return;
    };
    for adapter in [&env.fs_adapter, &env.spin_adapter] {
        let dir = scratch();
        let out = Command::new(&env.spin_testhost)
            .arg("--conformance")
            .arg(adapter)
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.lines().any(|line| line == "0 failed cases"),
            "{}:\n{stdout}{}",
            adapter.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_composed_handler_is_the_file_the_native_host_embeds() {
    let Some(env) = edge_env("the_composed_handler_is_the_file_the_native_host_embeds") else {
        return;
    };
    let handler = std::fs::read(&env.handler_wasm).unwrap();
    let host_bin = binary();
    let host = std::fs::read(&host_bin).unwrap();
    assert!(
        contains(&host, &handler),
        "{} does not embed {} {}: rebuild the host (`cargo build --release -p edgedav`) after the handler",
        host_bin.display(),
        env.handler_wasm.display(),
        digest(&handler)
    );
    // wac embeds the plugged components whole: both compositions carry the
    // handler file byte for byte.
    for composed in [&env.fs_wasm, &env.spin_wasm] {
        let bytes = std::fs::read(composed).unwrap();
        assert!(
            contains(&bytes, &handler),
            "{} does not contain the handler {}: recompose with scripts/edge.sh",
            composed.display(),
            digest(&handler)
        );
    }
}

// ---------------------------------------------------------------- worlds

fn wit_lines(env: &EdgeEnv, file: &Path, kind: &str) -> Vec<String> {
    let out = Command::new(&env.wasm_tools)
        .arg("component")
        .arg("wit")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wasm-tools component wit {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("  {kind} ");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.strip_prefix(&prefix)
                .map(|s| s.trim_end_matches(';').to_owned())
        })
        .collect()
}

#[test]
fn fs_composition_imports_only_wasi_and_exports_only_the_http_handler() {
    let Some(env) = edge_env("fs_composition_imports_only_wasi_and_exports_only_the_http_handler")
    else {
        return;
    };
    let imports = wit_lines(&env, &env.fs_wasm, "import");
    assert!(!imports.is_empty());
    let foreign: Vec<_> = imports.iter().filter(|i| !i.starts_with("wasi:")).collect();
    assert!(foreign.is_empty(), "non-WASI imports: {foreign:?}");
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:filesystem/")),
        "{imports:?}"
    );
    assert_eq!(
        wit_lines(&env, &env.fs_wasm, "export"),
        ["wasi:http/incoming-handler@0.2.6"]
    );
    // The Spin one: WASI plus Spin's SQLite, nothing of edgedav:dav left.
    let imports = wit_lines(&env, &env.spin_wasm, "import");
    let foreign: Vec<_> = imports
        .iter()
        .filter(|i| !i.starts_with("wasi:") && !i.starts_with("spin:sqlite/"))
        .collect();
    assert!(foreign.is_empty(), "unexpected imports: {foreign:?}");
    assert_eq!(
        wit_lines(&env, &env.spin_wasm, "export"),
        ["wasi:http/incoming-handler@0.2.6"]
    );
}

fn targets(env: &EdgeEnv, world: &str, file: &Path) -> (bool, String) {
    let out = Command::new(&env.wasm_tools)
        .args(["component", "targets", "--world", world])
        .arg(&env.spin_wit)
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn spin_composition_targets_spins_http_trigger_world() {
    let Some(env) = edge_env("spin_composition_targets_spins_http_trigger_world") else {
        return;
    };
    let (ok, err) = targets(&env, &env.spin_world, &env.spin_wasm);
    assert!(
        ok,
        "{} does not target {}: {err}",
        env.spin_wasm.display(),
        env.spin_world
    );
    let (ok, err) = targets(&env, "spin:up/platform@3.6.0", &env.spin_wasm);
    assert!(ok, "imports outside spin:up/platform@3.6.0: {err}");
    // The check discriminates: the bare handler imports edgedav:dav, which
    // Spin does not provide.
    let (ok, err) = targets(&env, &env.spin_world, &env.handler_wasm);
    assert!(!ok, "the bare handler passed the Spin check");
    assert!(err.contains("edgedav:dav"), "unexpected failure: {err}");
}

// ---------------------------------------------------------------- wasmtime serve

#[test]
fn fs_files_collections_and_sidecar_properties_live_in_the_preopened_directory() {
    let Some(env) =
        edge_env("fs_files_collections_and_sidecar_properties_live_in_the_preopened_directory")
    else {
        return;
    };
    let dir = scratch();
    let root = dir.path().join("root");
    let w = start(&env, &dir, "files");

    w.req("MKCOL", "/docs").exec().expect(&[201], "MKCOL");
    assert!(root.join("docs").is_dir());
    w.req("PUT", "/docs/a.txt")
        .body("alpha")
        .exec()
        .expect(&[201], "PUT");
    assert_eq!(std::fs::read(root.join("docs/a.txt")).unwrap(), b"alpha");
    let got = w.req("GET", "/docs/a.txt").exec();
    got.expect(&[200], "GET");
    assert_eq!(got.body, b"alpha");
    // No upload leftovers beside the file.
    let names: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["a.txt"]);

    let patch = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:edge"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>"#;
    w.req("PROPPATCH", "/docs/a.txt")
        .body(patch)
        .exec()
        .expect(&[207], "PROPPATCH");
    let props = || {
        std::fs::read_dir(root.join(".edgedav/props"))
            .unwrap()
            .count()
    };
    assert_eq!(props(), 1, "one sidecar file per resource with properties");
    let find = w
        .req("PROPFIND", "/docs/a.txt")
        .header("Depth", "0")
        .body(propfind_prop(&[("urn:edge", "color")]))
        .exec();
    find.expect(&[207], "PROPFIND");
    assert_eq!(
        find.multistatus()[0]
            .prop_ok("urn:edge", "color")
            .all_text(),
        "blue"
    );

    // COPY carries the property, MOVE moves it, DELETE removes it.
    w.req("COPY", "/docs")
        .header("Destination", format!("{}/copy", w.base))
        .exec()
        .expect(&[201], "COPY");
    assert_eq!(props(), 2);
    w.req("MOVE", "/copy")
        .header("Destination", format!("{}/moved", w.base))
        .exec()
        .expect(&[201], "MOVE");
    let find = w
        .req("PROPFIND", "/moved/a.txt")
        .header("Depth", "0")
        .body(propfind_prop(&[("urn:edge", "color")]))
        .exec();
    assert_eq!(
        find.multistatus()[0]
            .prop_ok("urn:edge", "color")
            .all_text(),
        "blue"
    );
    w.req("DELETE", "/moved").exec().expect(&[204], "DELETE");
    w.req("DELETE", "/docs").exec().expect(&[204], "DELETE");
    assert_eq!(props(), 0, "DELETE leaves orphaned properties");

    // The internal directory is out of bounds.
    for path in ["/.edgedav/locks.json", "/.edgedav", "/x/.edgedav-upload-1"] {
        let r = w.req("GET", path).exec();
        assert!(
            r.status == 403 || r.status == 404,
            "GET {path} answered {}",
            r.status
        );
    }
    w.req("PUT", "/.edgedav/evil")
        .body("x")
        .exec()
        .expect(&[403, 404, 409], "PUT into the internal directory");
}

#[test]
fn fs_sidecar_is_shared_with_the_native_host() {
    let Some(env) = edge_env("fs_sidecar_is_shared_with_the_native_host") else {
        return;
    };
    let dir = scratch();
    let root = dir.path().join("root");
    {
        let w = start(&env, &dir, "share");
        w.req("PUT", "/shared.txt")
            .body("data")
            .exec()
            .expect(&[201], "PUT");
        let patch = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:edge"><D:set><D:prop><Z:tag>from-wasmtime</Z:tag></D:prop></D:set></D:propertyupdate>"#;
        w.req("PROPPATCH", "/shared.txt")
            .body(patch)
            .exec()
            .expect(&[207], "PROPPATCH");
    }
    // The native host on the same directory sees the property.
    let mut child = Command::new(binary())
        .arg("serve")
        .arg("--root")
        .arg(&root)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(|u| u.trim_end_matches('/').to_owned());
    let result = std::panic::catch_unwind(|| {
        let base = base.unwrap_or_else(|| panic!("no URL in {line:?}"));
        let r = Client::new()
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                format!("{base}/shared.txt"),
            )
            .header("Depth", "0")
            .body(propfind_prop(&[("urn:edge", "tag")]))
            .exec();
        r.expect(&[207], "native PROPFIND");
        assert_eq!(
            r.multistatus()[0].prop_ok("urn:edge", "tag").all_text(),
            "from-wasmtime"
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}

fn lock(w: &Edge, path: &str, scope: &str) -> Resp {
    w.req("LOCK", path)
        .header("Timeout", "Second-600")
        .header("Content-Type", "application/xml")
        .body(lockinfo(scope, "mailto:edge@example.org"))
        .exec()
}

#[test]
fn fs_locks_hold_across_instances_and_restarts() {
    let Some(env) = edge_env("fs_locks_hold_across_instances_and_restarts") else {
        return;
    };
    let dir = scratch();
    let token;
    {
        let w = start(&env, &dir, "locks1");
        w.req("PUT", "/f.txt")
            .body("v1")
            .exec()
            .expect(&[201], "PUT");
        // Every request runs in a fresh instance: the lock must still be
        // there for the next one.
        let r = lock(&w, "/f.txt", "exclusive");
        r.expect(&[200], "LOCK");
        token = r.lock_token();
        w.req("PUT", "/f.txt")
            .body("v2")
            .exec()
            .expect(&[423], "PUT without the token");
        lock(&w, "/f.txt", "shared").expect(&[423], "shared LOCK over an exclusive one");
        w.req("PUT", "/f.txt")
            .header("If", format!("(<{token}>)"))
            .body("v2")
            .exec()
            .expect(&[204], "PUT with the token");
        let refreshed = w
            .req("LOCK", "/f.txt")
            .header("If", format!("(<{token}>)"))
            .header("Timeout", "Second-100")
            .exec();
        refreshed.expect(&[200], "LOCK refresh");
    }
    assert!(dir.path().join("root/.edgedav/locks.json").is_file());
    // A new server process on the same directory: the lock survived.
    let w = start(&env, &dir, "locks2");
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
    let r = w
        .req("LOCK", "/d")
        .header("Depth", "infinity")
        .body(lockinfo("exclusive", "x"))
        .exec();
    r.expect(&[200], "deep LOCK");
    w.req("PUT", "/d/new")
        .body("x")
        .exec()
        .expect(&[423], "PUT into a deep-locked collection");
}

/// Many clients LOCK the same resource at the same instant, in separate
/// instances: exactly one may win.
fn lock_race(w: &Edge) {
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

#[test]
fn fs_concurrent_exclusive_locks_are_granted_once() {
    let Some(env) = edge_env("fs_concurrent_exclusive_locks_are_granted_once") else {
        return;
    };
    let dir = scratch();
    let w = start(&env, &dir, "race");
    lock_race(&w);
    // No mutex file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("root/.edgedav"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".mutex") || n.starts_with(".edgedav-upload-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn fs_big_files_round_trip() {
    let Some(env) = edge_env("fs_big_files_round_trip") else {
        return;
    };
    let dir = scratch();
    let w = start(&env, &dir, "big");
    let data: Vec<u8> = (0..6 * 1024 * 1024 + 123)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    w.req("PUT", "/big.bin")
        .body(data.clone())
        .exec()
        .expect(&[201], "PUT 6 MiB");
    let got = w.req("GET", "/big.bin").exec();
    got.expect(&[200], "GET");
    assert!(got.body == data, "6 MiB differ after a round trip");
    let r = w
        .req("GET", "/big.bin")
        .header("Range", "bytes=4194300-4194309")
        .exec();
    r.expect(&[206], "ranged GET");
    assert_eq!(r.body, &data[4_194_300..4_194_310]);
}

// ---------------------------------------------------------------- partial updates

/// Partial updates against a server at `base`: PUT with Content-Range and
/// PATCH with X-Update-Range, their error cases, and a file uploaded in
/// pieces that cross 256 KiB boundaries.
fn partial_updates(client: &Client, base: &str) {
    let req = |method: &str, path: &str| {
        client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{base}{path}"),
        )
    };
    let get = |path: &str| {
        let r = req("GET", path).exec();
        r.expect(&[200], "GET");
        r.body
    };
    let dav = req("OPTIONS", "/").exec().must_header("DAV");
    assert!(dav.contains("sabredav-partialupdate"), "DAV: {dav}");

    req("PUT", "/p.txt")
        .body("hello world")
        .exec()
        .expect(&[201], "PUT");
    let etag = req("HEAD", "/p.txt").exec().etag();
    req("PUT", "/p.txt")
        .header("Content-Range", "bytes 6-11/*")
        .body("there!")
        .exec()
        .expect(&[200, 204], "PUT Content-Range");
    assert_eq!(get("/p.txt"), b"hello there!");
    assert_ne!(
        req("HEAD", "/p.txt").exec().etag(),
        etag,
        "a partial update must change the ETag"
    );

    let patch = |range: &str, body: &str| {
        req("PATCH", "/p.txt")
            .header("Content-Type", PARTIAL)
            .header("X-Update-Range", range)
            .body(body.to_owned())
            .exec()
    };
    patch("append", " bye").expect(&[204], "PATCH append");
    assert_eq!(get("/p.txt"), b"hello there! bye");
    patch("bytes=0-4", "HELLO").expect(&[204], "PATCH bytes=0-4");
    assert_eq!(get("/p.txt"), b"HELLO there! bye");
    patch("bytes=-3", "BYE").expect(&[204], "PATCH bytes=-3");
    assert_eq!(get("/p.txt"), b"HELLO there! BYE");
    patch("bytes=13-", "bye!!").expect(&[204], "PATCH bytes=13- (extends the file)");
    assert_eq!(get("/p.txt"), b"HELLO there! bye!!");

    // Refusals change nothing.
    patch("bytes=100-", "x").expect(&[416], "PATCH past the end");
    req("PUT", "/p.txt")
        .header("Content-Range", "bytes 2-5/*")
        .body("abc")
        .exec()
        .expect(&[400], "PUT Content-Range with a short body");
    req("PATCH", "/p.txt")
        .header("Content-Type", "text/plain")
        .header("X-Update-Range", "append")
        .body("x")
        .exec()
        .expect(&[415], "PATCH without the partial-update type");
    req("PATCH", "/missing.txt")
        .header("Content-Type", PARTIAL)
        .header("X-Update-Range", "append")
        .body("x")
        .exec()
        .expect(&[404], "PATCH a missing file");
    req("PUT", "/new.txt")
        .header("Content-Range", "bytes 5-6/*")
        .body("xy")
        .exec()
        .expect(&[416], "PUT Content-Range past the end of a new file");
    assert_eq!(get("/p.txt"), b"HELLO there! bye!!");

    // A big file uploaded in pieces, as a client behind a body cap does.
    let data: Vec<u8> = (0..1_100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let piece = 300_000;
    req("PUT", "/big.bin")
        .body(data[..piece].to_vec())
        .exec()
        .expect(&[201], "first piece");
    let mut at = piece;
    while at < data.len() {
        let end = (at + piece).min(data.len());
        if at / piece % 2 == 1 {
            req("PUT", "/big.bin")
                .header(
                    "Content-Range",
                    format!("bytes {at}-{}/{}", end - 1, data.len()),
                )
                .body(data[at..end].to_vec())
                .exec()
                .expect(&[200, 204], "PUT piece");
        } else {
            req("PATCH", "/big.bin")
                .header("Content-Type", PARTIAL)
                .header("X-Update-Range", "append")
                .body(data[at..end].to_vec())
                .exec()
                .expect(&[204], "PATCH piece");
        }
        at = end;
    }
    assert!(
        get("/big.bin") == data,
        "the pieced upload differs from the original"
    );
    // Overwrite a span across a 256 KiB boundary in the middle.
    let mut expected = data.clone();
    let patch_bytes: Vec<u8> = vec![0xAB; 70_000];
    expected[240_000..310_000].copy_from_slice(&patch_bytes);
    req("PATCH", "/big.bin")
        .header("Content-Type", PARTIAL)
        .header("X-Update-Range", "bytes=240000-309999")
        .body(patch_bytes)
        .exec()
        .expect(&[204], "PATCH across a boundary");
    assert!(
        get("/big.bin") == expected,
        "the patched span landed wrongly"
    );
}

#[test]
fn native_host_partial_updates() {
    let s = Server::start();
    partial_updates(s.client(), &s.base);
}

#[test]
fn fs_composition_partial_updates() {
    let Some(env) = edge_env("fs_composition_partial_updates") else {
        return;
    };
    let dir = scratch();
    let w = start(&env, &dir, "partial");
    partial_updates(&w.client, &w.base);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("root"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".edgedav-upload-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staged pieces left behind: {leftovers:?}"
    );
}

// ---------------------------------------------------------------- both compositions

fn propfind_one(w: &Edge, path: &str, ns: &str, name: &str) -> Resp {
    w.req("PROPFIND", path)
        .header("Depth", "0")
        .body(propfind_prop(&[(ns, name)]))
        .exec()
}

/// WebDAV round trips any storage binding must get right.
fn dav_round_trips(w: &Edge) {
    w.req("MKCOL", "/docs").exec().expect(&[201], "MKCOL");
    w.req("MKCOL", "/docs").exec().expect(&[405], "MKCOL again");
    w.req("MKCOL", "/no/such")
        .exec()
        .expect(&[409], "MKCOL with a missing parent");
    w.req("PUT", "/docs/a.txt")
        .body("alpha")
        .exec()
        .expect(&[201], "PUT");
    w.req("PUT", "/docs/a.txt/x")
        .body("x")
        .exec()
        .expect(&[409], "PUT below a file");
    w.req("MKCOL", "/docs/sub")
        .exec()
        .expect(&[201], "MKCOL sub");
    w.req("PUT", "/docs/sub/b.txt")
        .body("beta")
        .exec()
        .expect(&[201], "PUT sub/b.txt");
    assert_eq!(w.req("GET", "/docs/a.txt").exec().body, b"alpha");
    let patch = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:edge"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>"#;
    w.req("PROPPATCH", "/docs/sub/b.txt")
        .body(patch)
        .exec()
        .expect(&[207], "PROPPATCH");

    let listing = w.req("PROPFIND", "/docs").header("Depth", "1").exec();
    listing.expect(&[207], "PROPFIND Depth 1");
    let mut paths: Vec<String> = listing
        .multistatus()
        .iter()
        .map(|r| r.path().trim_end_matches('/').to_owned())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/docs", "/docs/a.txt", "/docs/sub"]);

    w.req("COPY", "/docs")
        .header("Destination", format!("{}/copy", w.base))
        .exec()
        .expect(&[201], "COPY");
    assert_eq!(w.req("GET", "/copy/sub/b.txt").exec().body, b"beta");
    let r = propfind_one(w, "/copy/sub/b.txt", "urn:edge", "color");
    assert_eq!(
        r.multistatus()[0].prop_ok("urn:edge", "color").all_text(),
        "blue",
        "COPY carries dead properties"
    );
    // The copy is independent of the original.
    w.req("PUT", "/copy/a.txt")
        .body("changed")
        .exec()
        .expect(&[204], "PUT over the copy");
    assert_eq!(w.req("GET", "/docs/a.txt").exec().body, b"alpha");

    w.req("MOVE", "/copy")
        .header("Destination", format!("{}/docs", w.base))
        .header("Overwrite", "F")
        .exec()
        .expect(&[412], "MOVE onto an existing collection without overwrite");
    w.req("MOVE", "/copy")
        .header("Destination", format!("{}/moved", w.base))
        .exec()
        .expect(&[201], "MOVE");
    w.req("GET", "/copy/a.txt")
        .exec()
        .expect(&[404], "GET the moved source");
    assert_eq!(w.req("GET", "/moved/a.txt").exec().body, b"changed");
    let r = propfind_one(w, "/moved/sub/b.txt", "urn:edge", "color");
    assert_eq!(
        r.multistatus()[0].prop_ok("urn:edge", "color").all_text(),
        "blue",
        "MOVE carries dead properties"
    );
    // MOVE with overwrite replaces the destination, properties included.
    w.req("MOVE", "/moved/a.txt")
        .header("Destination", format!("{}/docs/sub/b.txt", w.base))
        .exec()
        .expect(&[204], "MOVE over an existing file");
    assert_eq!(w.req("GET", "/docs/sub/b.txt").exec().body, b"changed");
    let r = propfind_one(w, "/docs/sub/b.txt", "urn:edge", "color");
    assert_ne!(
        r.multistatus()[0].prop("urn:edge", "color").map(|p| p.0),
        Some(200),
        "the replaced file's property survived"
    );

    w.req("DELETE", "/moved")
        .exec()
        .expect(&[204], "DELETE a collection");
    w.req("GET", "/moved/sub/b.txt")
        .exec()
        .expect(&[404], "GET below a deleted collection");
    // A new resource at a deleted path inherits nothing.
    w.req("PUT", "/moved")
        .body("new")
        .exec()
        .expect(&[201], "PUT where a collection was");
    let r = propfind_one(w, "/moved", "urn:edge", "color");
    assert_ne!(
        r.multistatus()[0].prop("urn:edge", "color").map(|p| p.0),
        Some(200)
    );
}

/// A collection with more members than one listing page (1000) is listed whole.
fn big_listing(w: &Edge) {
    const N: usize = 1005;
    w.req("MKCOL", "/many").exec().expect(&[201], "MKCOL");
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for i in (t..N).step_by(4) {
                    w.req("PUT", &format!("/many/f{i:04}"))
                        .body(format!("{i}"))
                        .exec()
                        .expect(&[201], "PUT");
                }
            });
        }
    });
    let r = w
        .req("PROPFIND", "/many")
        .header("Depth", "1")
        .body(propfind_prop(&[(DAV, "getcontentlength")]))
        .exec();
    r.expect(&[207], "PROPFIND Depth 1");
    let mut names: Vec<String> = r
        .multistatus()
        .iter()
        .map(|m| m.path())
        .filter(|p| p.trim_end_matches('/') != "/many")
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N, "members listed once each");
    assert_eq!(names[0], "/many/f0000");
    assert_eq!(names[N - 1], format!("/many/f{:04}", N - 1));
}

#[test]
fn fs_composition_round_trips_and_big_listings() {
    let Some(env) = edge_env("fs_composition_round_trips_and_big_listings") else {
        return;
    };
    let dir = scratch();
    let w = start(&env, &dir, "roundtrips");
    dav_round_trips(&w);
    big_listing(&w);
}

// ---------------------------------------------------------------- Spin composition

#[test]
fn spin_composition_round_trips_and_big_listings() {
    let Some(env) = edge_env("spin_composition_round_trips_and_big_listings") else {
        return;
    };
    let dir = scratch();
    let w = start_spin(&env, &dir, "spin-roundtrips");
    dav_round_trips(&w);
    big_listing(&w);
}

#[test]
fn spin_composition_partial_updates() {
    let Some(env) = edge_env("spin_composition_partial_updates") else {
        return;
    };
    let dir = scratch();
    let w = start_spin(&env, &dir, "spin-partial");
    partial_updates(&w.client, &w.base);
}

#[test]
fn spin_composition_big_files_are_chunked() {
    let Some(env) = edge_env("spin_composition_big_files_are_chunked") else {
        return;
    };
    let dir = scratch();
    let w = start_spin(&env, &dir, "spin-big");
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
    drop(w);
    let db = db_counts(&env, &dir.path().join("spin.sqlite"));
    assert_eq!(db, (1, 0), "(chunks, staged uploads) left in the database");
}

/// (rows in edgedav_chunks, rows in edgedav_uploads) of a Spin database,
/// read with `edgedav-spin-testhost --query`.
fn db_counts(env: &EdgeEnv, db: &Path) -> (u64, u64) {
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
    let dir = scratch();
    let token;
    {
        let w = start_spin(&env, &dir, "spin-locks1");
        lock_race(&w);
        w.req("PUT", "/f.txt")
            .body("v1")
            .exec()
            .expect(&[201], "PUT");
        let r = lock(&w, "/f.txt", "exclusive");
        r.expect(&[200], "LOCK");
        token = r.lock_token();
        w.req("PUT", "/f.txt")
            .body("v2")
            .exec()
            .expect(&[423], "PUT without the token");
        w.req("PUT", "/f.txt")
            .header("If", format!("(<{token}>)"))
            .body("v2")
            .exec()
            .expect(&[204], "PUT with the token");
        w.req("MKCOL", "/d").exec().expect(&[201], "MKCOL");
        w.req("LOCK", "/d")
            .header("Depth", "infinity")
            .body(lockinfo("shared", "x"))
            .exec()
            .expect(&[200], "deep shared LOCK");
        w.req("LOCK", "/d")
            .header("Depth", "infinity")
            .body(lockinfo("shared", "y"))
            .exec()
            .expect(&[200], "second shared LOCK");
        lock(&w, "/d", "exclusive").expect(&[423], "exclusive LOCK over shared ones");
        w.req("PUT", "/d/new")
            .body("x")
            .exec()
            .expect(&[423], "PUT into a deep-locked collection");
    }
    let w = start_spin(&env, &dir, "spin-locks2");
    w.req("PUT", "/f.txt")
        .body("v3")
        .exec()
        .expect(&[423], "PUT without the token after a restart");
    w.req("UNLOCK", "/f.txt")
        .header("Lock-Token", format!("<{token}>"))
        .exec()
        .expect(&[204], "UNLOCK");
    w.req("PUT", "/f.txt")
        .body("v3")
        .exec()
        .expect(&[204], "PUT after UNLOCK");
    assert_eq!(w.req("GET", "/f.txt").exec().body, b"v3");
}
