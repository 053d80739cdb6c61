//! Harness for the end-to-end tests in `tests/tests/`.
//!
//! [`Server::start`] runs the real `edgedav` binary on a fresh temporary root
//! and a free port on 127.0.0.1; the process is killed when the [`Server`] is
//! dropped. Requests go through reqwest (blocking) or, for what reqwest would
//! normalise away (`..` segments), through [`Server::raw`] on a plain socket.
//! [`Xml`] is a tiny namespace-aware DOM, enough to check multistatus bodies.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use reqwest::blocking::{Body, Client, RequestBuilder};
pub use reqwest::header::HeaderMap;

/// How long a server may take to print its listening line (a debug build of
/// wasmtime compiling the component can take a while on a 2-core machine).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);

/// The `edgedav` binary under test: `$EDGEDAV_BIN`, else
/// `<target dir>/debug/edgedav` of this workspace (`release/edgedav` when
/// the tests themselves are built with `--release`).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGEDAV_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "EDGEDAV_BIN={} does not exist", p.display());
        return p;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace.join(t)
            }
        })
        .unwrap_or_else(|| workspace.join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let bin = target.join(profile).join("edgedav");
    if !bin.is_file() {
        panic!(
            "edgedav binary not found at {}: run `cargo build -p edgedav` first \
             (`cargo build --release -p edgedav` for `cargo test --release`; \
             or set EDGEDAV_BIN to the binary to test)",
            bin.display()
        );
    }
    bin
}

/// A running `edgedav serve` on a temporary root.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    pub port: u16,
    /// Every URL the server printed (`edgedav listening on URL`), bindings
    /// in order; with `--config`, `base` is the first.
    pub urls: Vec<String>,
    /// The admin listener's URL (`--config` with `[admin]`).
    pub admin: Option<String>,
    /// Holds `root/` (the served directory), `sentinel.txt` (a file outside
    /// the root that must never be served) and `server.log` (stderr).
    dir: tempfile::TempDir,
    client: Client,
    /// `serve` arguments, for [`Server::restart`].
    args: Vec<std::ffi::OsString>,
    /// Started with `--config` (waits for `edgedav ready`).
    config_mode: bool,
}

/// Content of the sentinel file placed just outside the served root.
pub const SENTINEL: &str = "EDGEDAV-SENTINEL-outside-the-root-7f3a9c";

impl Server {
    /// Starts a server with the default options.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra `serve` arguments (e.g.
    /// `["--depth-infinity-limit", "1000"]`).
    pub fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("edgedav-e2e-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(dir.path().join("sentinel.txt"), SENTINEL).unwrap();
        let mut args: Vec<std::ffi::OsString> = vec![
            "--root".into(),
            root.into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(extra.iter().map(Into::into));
        Server::launch(dir, args, false)
    }

    /// Starts `edgedav serve --config FILE` with `config` (TOML) written to
    /// `FILE` in a fresh temporary directory; `{dir}` in the text stands for
    /// that directory (homes, certificates). Waits for `edgedav ready`.
    pub fn start_config(config: &str) -> Server {
        Server::start_config_with(config, |_| {})
    }

    /// [`Server::start_config`], after `prepare` has filled the directory
    /// (certificates, a users file, a component…).
    pub fn start_config_with(config: &str, prepare: impl FnOnce(&Path)) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("edgedav-e2e-")
            .tempdir()
            .expect("tempdir");
        std::fs::write(dir.path().join("sentinel.txt"), SENTINEL).unwrap();
        prepare(dir.path());
        let file = dir.path().join("edgedav.toml");
        std::fs::write(
            &file,
            config.replace("{dir}", &dir.path().display().to_string()),
        )
        .unwrap();
        Server::launch(dir, vec!["--config".into(), file.into()], true)
    }

    /// Writes a new configuration (as [`Server::start_config`] does) without
    /// restarting; send SIGHUP to apply it.
    pub fn write_config(&self, config: &str) {
        let text = config.replace("{dir}", &self.dir.path().display().to_string());
        std::fs::write(self.dir.path().join("edgedav.toml"), text).unwrap();
    }

    /// Kills the server and starts it again with the same arguments and
    /// directory (addresses may change).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, urls) = spawn_server(self.dir.path(), &self.args, self.config_mode);
        self.child = child;
        self.set_urls(urls);
    }

    fn launch(dir: tempfile::TempDir, args: Vec<std::ffi::OsString>, config_mode: bool) -> Server {
        let (child, urls) = spawn_server(dir.path(), &args, config_mode);
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let mut server = Server {
            child,
            base: String::new(),
            port: 0,
            urls: Vec::new(),
            admin: None,
            dir,
            client,
            args,
            config_mode,
        };
        server.set_urls(urls);
        server
    }

    fn set_urls(&mut self, lines: Vec<String>) {
        let url_of = |line: &String| {
            line.split_whitespace()
                .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                .unwrap_or_else(|| panic!("no URL in listening line {line:?}"))
                .trim_end_matches('/')
                .to_string()
        };
        self.admin = lines
            .iter()
            .find(|l| l.contains("admin listening on"))
            .map(url_of);
        self.urls = lines
            .iter()
            .filter(|l| !l.contains("admin listening on"))
            .map(url_of)
            .collect();
        let first = self.urls.first().expect("a listening line").clone();
        self.port = first
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        self.base = first;
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of the server's /proc/PID/status (`VmRSS`, `VmHWM`), in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Resets the server's peak RSS (`VmHWM`) to its current RSS.
    pub fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").unwrap();
    }

    /// Sends a signal (e.g. `libc::SIGTERM`, `libc::SIGHUP`) to the server.
    pub fn signal(&self, signal: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.child.id());
    }

    /// Waits up to `timeout` for the server to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The temporary directory (the config file, homes, `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A request with HTTP Basic credentials.
    pub fn req_as(&self, user: &str, password: &str, method: &str, path: &str) -> RequestBuilder {
        self.req(method, path).basic_auth(user, Some(password))
    }

    /// The directory the server serves.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The temporary directory that contains the root (and the sentinel).
    pub fn outside(&self) -> &Path {
        self.dir.path()
    }

    /// Absolute URL of `path` (which starts with `/` and may be percent-encoded).
    pub fn url(&self, path: &str) -> String {
        assert!(path.starts_with('/'), "paths start with /: {path:?}");
        format!("{}{}", self.base, path)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A request with any method, to be completed with headers and a body and
    /// sent with [`Exec::exec`].
    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client.request(m, self.url(path))
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path).exec()
    }

    pub fn head(&self, path: &str) -> Resp {
        self.req("HEAD", path).exec()
    }

    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) -> Resp {
        self.req("PUT", path).body(body.into()).exec()
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path).exec()
    }

    pub fn mkcol(&self, path: &str) -> Resp {
        self.req("MKCOL", path).exec()
    }

    /// PUT that must create (201) — for test setup.
    pub fn create(&self, path: &str, body: impl Into<Vec<u8>>) {
        let r = self.put(path, body);
        r.expect(&[201], "setup PUT");
    }

    /// MKCOL that must succeed (201) — for test setup.
    pub fn create_dir(&self, path: &str) {
        self.mkcol(path).expect(&[201], "setup MKCOL");
    }

    /// PROPFIND with a Depth and an optional body.
    pub fn propfind(&self, path: &str, depth: &str, body: Option<&str>) -> Resp {
        let mut rb = self.req("PROPFIND", path).header("Depth", depth);
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/xml; charset=utf-8")
                .body(b.to_string());
        }
        rb.exec()
    }

    /// PROPFIND Depth 0 of the given properties (`(namespace, name)`), which
    /// must answer 207 with exactly one response.
    pub fn props(&self, path: &str, names: &[(&str, &str)]) -> MsResponse {
        let r = self.propfind(path, "0", Some(&propfind_prop(names)));
        r.expect(&[207], "PROPFIND prop");
        let mut ms = r.multistatus();
        assert_eq!(
            ms.len(),
            1,
            "one response expected for Depth 0:\n{}",
            r.text()
        );
        ms.remove(0)
    }

    /// PROPPATCH with a raw `propertyupdate` body.
    pub fn proppatch(&self, path: &str, body: &str) -> Resp {
        self.req("PROPPATCH", path)
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(body.to_string())
            .exec()
    }

    /// LOCK with a `lockinfo` body (scope `exclusive` or `shared`), an
    /// optional Depth header and a Timeout of 600 s.
    pub fn lock(&self, path: &str, scope: &str, depth: Option<&str>) -> Resp {
        let mut rb = self
            .req("LOCK", path)
            .header("Timeout", "Second-600")
            .header("Content-Type", "application/xml; charset=utf-8")
            .body(lockinfo(scope, "mailto:tester@example.org"));
        if let Some(d) = depth {
            rb = rb.header("Depth", d);
        }
        rb.exec()
    }

    /// LOCK that must succeed; returns the lock token (without `<>`).
    pub fn lock_ok(&self, path: &str, scope: &str, depth: Option<&str>) -> String {
        let r = self.lock(path, scope, depth);
        r.expect(&[200, 201], "LOCK");
        r.lock_token()
    }

    /// COPY or MOVE to a path of this server (sent as an absolute URI).
    pub fn copy_move(&self, method: &str, from: &str, to: &str, extra: &[(&str, &str)]) -> Resp {
        let mut rb = self.req(method, from).header("Destination", self.url(to));
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        rb.exec()
    }

    /// Sends raw bytes on a new connection and reads the response until the
    /// server closes it (send `Connection: close`). Used for request targets
    /// that reqwest would normalise, such as `/../x` or `/%2e%2e/x`.
    pub fn raw(&self, request: &str) -> RawResp {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        read_raw_response(&mut BufReader::new(s), request.starts_with("HEAD "))
            .unwrap_or_else(|e| panic!("bad raw response to {:?}: {e}", first_line(request)))
    }

    /// `raw` for a simple request line: `METHOD TARGET` with Host and
    /// Connection: close.
    pub fn raw_simple(&self, method: &str, target: &str) -> RawResp {
        self.raw(&format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.port
        ))
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- edgedav stderr (tail) ----\n{}",
                tail(&self.log(), 4000)
            );
        }
    }
}

/// Starts `edgedav serve ARGS` (stderr appended to `dir/server.log`) and
/// returns its listening lines: the first one, or with `config_mode` all of
/// them up to `edgedav ready`.
fn spawn_server(
    dir: &Path,
    args: &[std::ffi::OsString],
    config_mode: bool,
) -> (Child, Vec<String>) {
    let bin = binary();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    // Kill the server if the test thread that owns it dies without
    // running Drop (e.g. the test binary is killed).
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
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

    // Read stdout on a thread: lines go to the channel (until nobody
    // listens), the rest is drained so the server never blocks on a full pipe.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("listening on") => {
                lines.push(line);
                if !config_mode {
                    break;
                }
            }
            Ok(line) if config_mode && line.trim() == "edgedav ready" => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                panic!(
                    "edgedav did not print its listening line(s) within {:?}\nstderr:\n{}",
                    STARTUP_TIMEOUT,
                    tail(&log, 4000)
                );
            }
        }
    }
    (child, lines)
}

/// Runs `edgedav hash-password` on `password`.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(binary())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("edgedav hash-password");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "hash-password failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Sends a request and reads the whole response.
pub trait Exec {
    fn exec(self) -> Resp;
}

impl Exec for RequestBuilder {
    fn exec(self) -> Resp {
        let (client, req) = self.build_split();
        let req = req.expect("request builds");
        let what = format!("{} {}", req.method(), req.url());
        match client.execute(req) {
            Ok(r) => Resp::read(what, r),
            Err(e) => panic!("{what}: request failed: {e:?}"),
        }
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Resp {
    /// `METHOD URL`, for messages.
    pub what: String,
    pub status: u16,
    pub version: reqwest::Version,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn read(what: String, r: reqwest::blocking::Response) -> Resp {
        let status = r.status().as_u16();
        let version = r.version();
        let headers = r.headers().clone();
        let body = r
            .bytes()
            .unwrap_or_else(|e| panic!("{what}: reading body failed: {e:?}"))
            .to_vec();
        Resp {
            what,
            status,
            version,
            headers,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The header's value, if present (several values are joined with ", ").
    pub fn header(&self, name: &str) -> Option<String> {
        let vals: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if vals.is_empty() {
            None
        } else {
            Some(vals.join(", "))
        }
    }

    /// The header's value; panics with context when absent.
    pub fn must_header(&self, name: &str) -> String {
        self.header(name).unwrap_or_else(|| {
            panic!(
                "{}: no {name} header; status {}, headers {:?}",
                self.what, self.status, self.headers
            )
        })
    }

    /// Panics unless the status is one of `allowed`.
    pub fn expect(&self, allowed: &[u16], context: &str) -> &Resp {
        if !allowed.contains(&self.status) {
            panic!(
                "{context}: {} answered {}, expected one of {:?}\nheaders: {:?}\nbody:\n{}",
                self.what,
                self.status,
                allowed,
                self.headers,
                tail(&self.text(), 3000)
            );
        }
        self
    }

    pub fn xml(&self) -> Xml {
        Xml::parse(&self.text())
            .unwrap_or_else(|e| panic!("{}: body is not XML ({e}):\n{}", self.what, self.text()))
    }

    /// The responses of a 207 multistatus body.
    pub fn multistatus(&self) -> Vec<MsResponse> {
        let x = self.xml();
        assert!(
            x.is(DAV, "multistatus"),
            "{}: root element is not DAV:multistatus:\n{}",
            self.what,
            self.text()
        );
        x.children_named(DAV, "response")
            .map(MsResponse::from_xml)
            .collect()
    }

    /// The token of the `Lock-Token` header, without the angle brackets.
    pub fn lock_token(&self) -> String {
        let h = self.must_header("Lock-Token");
        let t = h.trim();
        assert!(
            t.starts_with('<') && t.ends_with('>'),
            "Lock-Token is not a Coded-URL: {h:?}"
        );
        t[1..t.len() - 1].to_string()
    }

    /// The `ETag` header (with its quotes).
    pub fn etag(&self) -> String {
        self.must_header("ETag")
    }
}

/// A response read from a raw socket.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one HTTP/1.1 response (Content-Length, chunked or until close).
pub fn read_raw_response<R: BufRead>(r: &mut R, head_only: bool) -> Result<RawResp, String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed in the head: {head:?}"));
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
    }
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        // no body
    } else if header("Transfer-Encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| format!("bad chunk size {size:?}: {e}"))?;
            if size == 0 {
                // trailers
                loop {
                    let mut l = String::new();
                    let n = r.read_line(&mut l).map_err(|e| e.to_string())?;
                    if n == 0 || l == "\r\n" || l == "\n" {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            r.read_line(&mut crlf).map_err(|e| e.to_string())?;
        }
    } else if let Some(len) = header("Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|e| format!("bad Content-Length: {e}"))?;
        body.resize(len, 0);
        r.read_exact(&mut body).map_err(|e| e.to_string())?;
    } else {
        r.read_to_end(&mut body).map_err(|e| e.to_string())?;
    }
    Ok(RawResp { status, head, body })
}

// ---------------------------------------------------------------------------
// Request bodies

pub const DAV: &str = "DAV:";

/// `<propfind><prop>…</prop></propfind>` asking for the given properties.
pub fn propfind_prop(names: &[(&str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>"#,
    );
    for (i, (ns, name)) in names.iter().enumerate() {
        if *ns == DAV {
            s.push_str(&format!("<D:{name}/>"));
        } else {
            s.push_str(&format!(r#"<p{i}:{name} xmlns:p{i}="{ns}"/>"#));
        }
    }
    s.push_str("</D:prop></D:propfind>");
    s
}

pub const ALLPROP: &str =
    r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
pub const PROPNAME: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>"#;

/// A `lockinfo` body for a write lock.
pub fn lockinfo(scope: &str, owner_href: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>{owner_href}</D:href></D:owner></D:lockinfo>"#
    )
}

// ---------------------------------------------------------------------------
// A tiny namespace-aware XML tree

/// An element with its resolved namespace, local name, attributes (by
/// qualified name as written), child elements and directly contained text.
#[derive(Debug, Clone, Default)]
pub struct Xml {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Xml>,
    pub text: String,
}

impl Xml {
    pub fn parse(s: &str) -> Result<Xml, String> {
        use quick_xml::events::Event;
        use quick_xml::name::ResolveResult;
        let mut r = quick_xml::reader::NsReader::from_str(s);
        let mut stack: Vec<Xml> = vec![Xml::default()];
        let start =
            |res: ResolveResult, e: &quick_xml::events::BytesStart| -> Result<Xml, String> {
                let ns = match res {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => {
                        return Err(format!(
                            "unknown namespace prefix {:?}",
                            String::from_utf8_lossy(&p)
                        ));
                    }
                };
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| e.to_string())?;
                    let v = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
                    attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), v));
                }
                Ok(Xml {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    attrs,
                    ..Default::default()
                })
            };
        loop {
            let (res, ev) = r.read_resolved_event().map_err(|e| e.to_string())?;
            match ev {
                Event::Start(e) => {
                    let x = start(res, &e)?;
                    stack.push(x);
                }
                Event::Empty(e) => {
                    let x = start(res, &e)?;
                    stack.last_mut().unwrap().children.push(x);
                }
                Event::End(_) => {
                    let x = stack.pop().unwrap();
                    stack
                        .last_mut()
                        .ok_or("unbalanced end tag")?
                        .children
                        .push(x);
                }
                Event::Text(t) => {
                    let t = t.unescape().map_err(|e| e.to_string())?;
                    stack.last_mut().unwrap().text.push_str(&t);
                }
                Event::CData(t) => {
                    stack
                        .last_mut()
                        .unwrap()
                        .text
                        .push_str(&String::from_utf8_lossy(&t));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if stack.len() != 1 {
            return Err("unclosed elements".into());
        }
        let mut doc = stack.pop().unwrap();
        let n = doc.children.len();
        if n != 1 {
            return Err(format!("{n} root elements"));
        }
        Ok(doc.children.remove(0))
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Xml> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Xml> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// First descendant (depth first, excluding self) with that name.
    pub fn find(&self, ns: &str, name: &str) -> Option<&Xml> {
        for c in &self.children {
            if c.is(ns, name) {
                return Some(c);
            }
            if let Some(x) = c.find(ns, name) {
                return Some(x);
            }
        }
        None
    }

    /// All descendants with that name.
    pub fn find_all<'a>(&'a self, ns: &str, name: &str) -> Vec<&'a Xml> {
        let mut out = Vec::new();
        fn walk<'a>(x: &'a Xml, ns: &str, name: &str, out: &mut Vec<&'a Xml>) {
            for c in &x.children {
                if c.is(ns, name) {
                    out.push(c);
                }
                walk(c, ns, name, out);
            }
        }
        walk(self, ns, name, &mut out);
        out
    }

    /// All text below this element, concatenated and trimmed.
    pub fn all_text(&self) -> String {
        fn walk(x: &Xml, out: &mut String) {
            out.push_str(&x.text);
            for c in &x.children {
                walk(c, out);
            }
        }
        let mut s = String::new();
        walk(self, &mut s);
        s.trim().to_string()
    }

    pub fn attr(&self, qname: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == qname)
            .map(|(_, v)| v.as_str())
    }
}

/// One `DAV:response` of a multistatus.
#[derive(Debug, Clone)]
pub struct MsResponse {
    /// The href as sent.
    pub href: String,
    /// Status of a response without propstat (e.g. a failed member of a DELETE).
    pub status: Option<u16>,
    pub propstats: Vec<PropStat>,
    pub xml: Xml,
}

#[derive(Debug, Clone)]
pub struct PropStat {
    pub status: u16,
    /// The children of `DAV:prop`.
    pub props: Vec<Xml>,
}

/// The code of a `HTTP/1.1 207 Multi-Status` status line.
pub fn status_code(line: &str) -> u16 {
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
}

impl MsResponse {
    pub fn from_xml(x: &Xml) -> MsResponse {
        let href = x
            .child(DAV, "href")
            .map(|h| h.all_text())
            .unwrap_or_else(|| panic!("response without href: {x:?}"));
        let status = x.child(DAV, "status").map(|s| status_code(&s.all_text()));
        let propstats = x
            .children_named(DAV, "propstat")
            .map(|ps| PropStat {
                status: status_code(
                    &ps.child(DAV, "status")
                        .expect("propstat without status")
                        .all_text(),
                ),
                props: ps
                    .child(DAV, "prop")
                    .map(|p| p.children.clone())
                    .unwrap_or_default(),
            })
            .collect();
        MsResponse {
            href,
            status,
            propstats,
            xml: x.clone(),
        }
    }

    /// The href as a decoded path (scheme and authority removed).
    pub fn path(&self) -> String {
        href_path(&self.href)
    }

    /// The property and the status of the propstat that holds it.
    pub fn prop(&self, ns: &str, name: &str) -> Option<(u16, &Xml)> {
        self.propstats.iter().find_map(|ps| {
            ps.props
                .iter()
                .find(|p| p.is(ns, name))
                .map(|p| (ps.status, p))
        })
    }

    /// The property, which must be in a 200 propstat.
    pub fn prop_ok(&self, ns: &str, name: &str) -> &Xml {
        match self.prop(ns, name) {
            Some((200, p)) => p,
            Some((s, _)) => panic!(
                "{ns}{name} of {} has status {s}:\n{:#?}",
                self.href, self.propstats
            ),
            None => panic!(
                "{ns}{name} missing for {}:\n{:#?}",
                self.href, self.propstats
            ),
        }
    }

    pub fn is_collection(&self) -> bool {
        self.prop_ok(DAV, "resourcetype")
            .child(DAV, "collection")
            .is_some()
    }
}

/// Finds the response for `path` (compared decoded, ignoring a trailing slash).
pub fn find_response<'a>(ms: &'a [MsResponse], path: &str) -> Option<&'a MsResponse> {
    let want = percent_decode(path);
    let want = want.trim_end_matches('/');
    ms.iter().find(|r| r.path().trim_end_matches('/') == want)
}

/// `http://host:port/a%20b` → `/a b`; `/a%20b` → `/a b`.
pub fn href_path(href: &str) -> String {
    let p = match href.find("://") {
        Some(i) => {
            let rest = &href[i + 3..];
            match rest.find('/') {
                Some(j) => &rest[j..],
                None => "/",
            }
        }
        None => href,
    };
    percent_decode(p)
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Deterministic pseudo-random bytes (xorshift), for large bodies.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// An HTTP date `secs` seconds from now (negative: in the past).
pub fn http_date_from_now(secs: i64) -> String {
    let now = std::time::SystemTime::now();
    let t = if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs((-secs) as u64)
    };
    httpdate::fmt_http_date(t)
}

pub fn parse_http_date(s: &str) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(s).ok()
}

/// Reports a test that cannot run here (its server or tools are missing).
/// The notice goes straight to stderr, which the harness does not capture,
/// so it shows even for a passing test. Under `EDGEDAV_REQUIRE_ALL=1` (set
/// by `scripts/test.sh`, which provides everything) a skip is a failure.
pub fn skip(notice: &str) {
    if std::env::var_os("EDGEDAV_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("EDGEDAV_REQUIRE_ALL=1 but this test would be skipped: {notice}");
    }
    // One write, so notices of tests running in parallel do not interleave.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_resolves_namespaces() {
        let x = Xml::parse(
            r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/a%20b</d:href>
<d:propstat><d:prop><x:p xmlns:x="urn:x" a="1">v &amp; w</x:p><getetag xmlns="DAV:">"e"</getetag></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat>
<d:propstat><d:prop><y:q xmlns:y="urn:y"/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
</d:response></d:multistatus>"#,
        )
        .unwrap();
        assert!(x.is(DAV, "multistatus"));
        let r = MsResponse::from_xml(x.child(DAV, "response").unwrap());
        assert_eq!(r.path(), "/a b");
        assert_eq!(r.prop("urn:x", "p").unwrap().0, 200);
        assert_eq!(r.prop("urn:x", "p").unwrap().1.all_text(), "v & w");
        assert_eq!(r.prop("urn:x", "p").unwrap().1.attr("a"), Some("1"));
        assert_eq!(r.prop_ok(DAV, "getetag").all_text(), "\"e\"");
        assert_eq!(r.prop("urn:y", "q").unwrap().0, 404);
    }

    #[test]
    fn xml_rejects_garbage() {
        assert!(Xml::parse("<a><b></a>").is_err());
        assert!(Xml::parse("<a>").is_err());
        assert!(Xml::parse("<p:a/>").is_err());
    }

    #[test]
    fn hrefs_and_decoding() {
        assert_eq!(href_path("http://127.0.0.1:1/x/%E2%9C%93/"), "/x/✓/");
        assert_eq!(href_path("http://h"), "/");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("100%25"), "100%");
    }

    #[test]
    fn raw_responses() {
        let mut r = std::io::Cursor::new(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        );
        let a = read_raw_response(&mut r, false).unwrap();
        assert_eq!((a.status, a.text().as_str()), (200, "abcde"));
        let b = read_raw_response(&mut r, false).unwrap();
        assert_eq!(b.status, 204);
    }
}
