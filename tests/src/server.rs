//! Starting a real server process: [`Server`] on a fresh directory and a
//! free port, killed on drop; the native host by default, or a composition
//! of the handler under another runtime ([`Deployment`]).

use super::*;

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
    /// How it was started, for [`Server::restart`].
    launch: Launch,
}

/// What serves the handler in a [`Server`]: the same WebDAV scenarios run
/// on each.
#[derive(Clone, Debug)]
pub enum Deployment {
    /// `edgedav serve --root DIR/root` (the native host).
    Native,
    /// Stock `wasmtime serve` on the composition with the wasi-filesystem
    /// adapter, `DIR/root` preopened as `/data`.
    Wasmtime {
        wasmtime: PathBuf,
        component: PathBuf,
    },
    /// The Spin test host on the composition with the Spin SQLite adapter,
    /// its database in `DIR/spin.sqlite`.
    Spin {
        testhost: PathBuf,
        component: PathBuf,
    },
}

/// A command line and how to tell it is serving.
#[derive(Clone)]
struct Launch {
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    ready: Ready,
}

#[derive(Clone, Copy, PartialEq)]
enum Ready {
    /// `edgedav serve`: its first `listening on` line (stdout).
    Listening,
    /// `edgedav serve --config`: every `listening on` line up to
    /// `edgedav ready`.
    Config,
    /// Another runtime: the first line naming an `http://` URL, on stdout
    /// or stderr.
    AnyUrl,
}

impl Deployment {
    fn launch(&self, dir: &Path, extra: &[&str]) -> Launch {
        let root = dir.join("root");
        let (program, args, ready): (PathBuf, Vec<std::ffi::OsString>, _) = match self {
            Deployment::Native => {
                let mut args: Vec<std::ffi::OsString> = vec![
                    "serve".into(),
                    "--root".into(),
                    root.into(),
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                ];
                args.extend(extra.iter().map(Into::into));
                (binary(), args, Ready::Listening)
            }
            Deployment::Wasmtime {
                wasmtime,
                component,
            } => {
                let preopen = format!("{}::/data", root.display());
                let args = [
                    "serve",
                    "-S",
                    "cli",
                    "--dir",
                    &preopen,
                    "--addr",
                    "127.0.0.1:0",
                ]
                .iter()
                .map(Into::into)
                .chain([component.into()])
                .collect();
                (wasmtime.clone(), args, Ready::AnyUrl)
            }
            Deployment::Spin {
                testhost,
                component,
            } => {
                let database = dir.join("spin.sqlite");
                let args = vec![component.into(), database.into(), "127.0.0.1:0".into()];
                (testhost.clone(), args, Ready::AnyUrl)
            }
        };
        Launch {
            program,
            args,
            ready,
        }
    }
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
        Server::deploy_with(&Deployment::Native, extra)
    }

    /// Starts a deployment on a fresh directory.
    pub fn deploy(deployment: &Deployment) -> Server {
        Server::deploy_with(deployment, &[])
    }

    /// [`Server::deploy`] with its directory made in `parent` (a
    /// filesystem of the test's own, say).
    pub fn deploy_in(deployment: &Deployment, parent: &Path) -> Server {
        Server::deploy_on(scratch_in(parent), deployment, &[])
    }

    fn deploy_with(deployment: &Deployment, extra: &[&str]) -> Server {
        Server::deploy_on(scratch(), deployment, extra)
    }

    fn deploy_on(dir: tempfile::TempDir, deployment: &Deployment, extra: &[&str]) -> Server {
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let launch = deployment.launch(dir.path(), extra);
        Server::launch(dir, launch)
    }

    /// Kills the server, keeping its directory (to look at what it left).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops this server and starts `deployment` on the same directory
    /// (the same files, or the same database).
    pub fn redeploy(&mut self, deployment: &Deployment) {
        self.launch = deployment.launch(self.dir.path(), &[]);
        self.restart();
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
        let dir = scratch();
        prepare(dir.path());
        let file = dir.path().join("edgedav.toml");
        std::fs::write(
            &file,
            config.replace("{dir}", &dir.path().display().to_string()),
        )
        .unwrap();
        let launch = Launch {
            program: binary(),
            args: vec!["serve".into(), "--config".into(), file.into()],
            ready: Ready::Config,
        };
        Server::launch(dir, launch)
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
        self.stop();
        let (child, urls) = spawn_server(self.dir.path(), &self.launch);
        self.child = child;
        self.set_urls(urls);
    }

    fn launch(dir: tempfile::TempDir, launch: Launch) -> Server {
        let (child, urls) = spawn_server(dir.path(), &launch);
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
            launch,
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

    /// The sizes of the regular files below `dir` that the server holds
    /// open, seen through its descriptors (`/proc/PID/fd`, which reach a
    /// file with no name too). How a test sees uploads being written: a
    /// whole upload is staged as an anonymous file where the filesystem has
    /// them, a partial one as a named file in the staging directory.
    pub fn open_files_below(&self, dir: &Path) -> Vec<u64> {
        let dir = dir.canonicalize().unwrap();
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) else {
            return Vec::new();
        };
        fds.flatten()
            .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|to| to.starts_with(&dir)))
            .filter_map(|fd| std::fs::metadata(fd.path()).ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .collect()
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
        self.http(method, path).basic_auth(user, Some(password))
    }

    /// The directory the server serves.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The temporary directory that contains the root (and the sentinel).
    pub fn outside(&self) -> &Path {
        self.dir.path()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The value of `name` (with its labels, if any) in the admin
    /// listener's `/metrics`; none when it is not there.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let admin = self.admin.as_ref().expect("an admin listener");
        let text = self
            .client
            .get(format!("{admin}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// A reqwest request with any method, for what [`Dav::req`] does not
    /// offer (streamed bodies, timeouts, the response as it arrives);
    /// sent with [`Exec::exec`] or reqwest's `send`.
    pub fn http(&self, method: &str, path: &str) -> RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client.request(m, self.url(path))
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

impl Dav for Server {
    fn send(&self, request: Request) -> Resp {
        let mut rb = self.http(&request.method, &request.path);
        for (name, value) in request.headers {
            rb = rb.header(name, value);
        }
        rb.body(request.body).exec()
    }

    fn url(&self, path: &str) -> String {
        assert!(path.starts_with('/'), "paths start with /: {path:?}");
        format!("{}{}", self.base, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- server log (tail) ----\n{}", tail(&self.log(), 4000));
        }
    }
}

/// A fresh temporary directory holding `sentinel.txt`.
fn scratch() -> tempfile::TempDir {
    scratch_in(&std::env::temp_dir())
}

fn scratch_in(parent: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("edgedav-e2e-")
        .tempdir_in(parent)
        .expect("tempdir");
    std::fs::write(dir.path().join("sentinel.txt"), SENTINEL).unwrap();
    dir
}

/// Starts a server (its output appended to `dir/server.log`) and returns
/// the lines that said where it listens (see [`Ready`]).
fn spawn_server(dir: &Path, launch: &Launch) -> (Child, Vec<String>) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let any_url = launch.ready == Ready::AnyUrl;
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    // The native host logs on stderr and says where it listens on stdout;
    // other runtimes may say it on either.
    if any_url {
        cmd.stderr(Stdio::piped());
    } else {
        cmd.stderr(Stdio::from(log.try_clone().unwrap()));
    }
    dies_with_the_tests(&mut cmd);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));

    // Read the output on threads: lines go to the channel (until nobody
    // listens) and, for other runtimes, to the log; the rest is drained so
    // the server never blocks on a full pipe.
    let (tx, rx) = mpsc::channel::<String>();
    let log = std::sync::Arc::new(std::sync::Mutex::new(log));
    let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
    let stderr = child
        .stderr
        .take()
        .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>);
    for stream in std::iter::once(stdout).chain(stderr) {
        let (tx, log) = (tx.clone(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if any_url {
                    let _ = writeln!(log.lock().unwrap(), "{line}");
                }
                let _ = tx.send(line);
            }
        });
    }
    let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if any_url && line.contains("http://") => {
                lines.push(line);
                break;
            }
            Ok(line) if !any_url && line.contains("listening on") => {
                lines.push(line);
                if launch.ready == Ready::Listening {
                    break;
                }
            }
            Ok(line) if launch.ready == Ready::Config && line.trim() == "edgedav ready" => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                panic!(
                    "{} did not say where it listens within {:?}\noutput:\n{}",
                    launch.program.display(),
                    STARTUP_TIMEOUT,
                    tail(&log, 4000)
                );
            }
        }
    }
    (child, lines)
}

/// Makes a server process die with the test process, even when the test
/// dies without running `Drop` (the test binary killed, say).
pub fn dies_with_the_tests(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: the hook only calls prctl, which is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
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

pub(crate) fn tail(s: &str, n: usize) -> &str {
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
