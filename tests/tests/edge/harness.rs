//! A composition being served (by `wasmtime serve` or the Spin test host), killed on drop.

use super::*;

/// A composition being served: by `wasmtime serve` (the fs one) or by the
/// Spin test host (the Spin one). Killed on drop.
pub(super) struct Edge {
    pub(super) child: Child,
    pub(super) base: String,
    pub(super) log: PathBuf,
    pub(super) client: Client,
}

impl Edge {
    /// `wasmtime serve -S cli --dir ROOT::/data --addr 127.0.0.1:0 FS_WASM`.
    pub(super) fn wasmtime(env: &EdgeEnv, root: &Path, log: PathBuf) -> Edge {
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
    pub(super) fn spin(env: &EdgeEnv, database: &Path, log: PathBuf) -> Edge {
        let mut cmd = Command::new(&env.spin_testhost);
        cmd.arg(&env.spin_wasm).arg(database).arg("127.0.0.1:0");
        Edge::spawn(cmd, log)
    }

    /// Starts `cmd`; its first `http://` word (on stdout or stderr) is the
    /// address; both streams go to `log`.
    pub(super) fn spawn(mut cmd: Command, log: PathBuf) -> Edge {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        dies_with_the_tests(&mut cmd);
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

    pub(super) fn req(&self, method: &str, path: &str) -> RequestBuilder {
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
pub(super) fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("edgedav-edge-")
        .tempdir()
        .unwrap();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    dir
}

/// `wasmtime serve` on the fs composition, serving `dir/root`.
pub(super) fn start(env: &EdgeEnv, dir: &tempfile::TempDir, name: &str) -> Edge {
    Edge::wasmtime(
        env,
        &dir.path().join("root"),
        dir.path().join(format!("{name}.log")),
    )
}

/// The Spin test host on the Spin composition, with `dir/spin.sqlite`.
pub(super) fn start_spin(env: &EdgeEnv, dir: &tempfile::TempDir, name: &str) -> Edge {
    Edge::spin(
        env,
        &dir.path().join("spin.sqlite"),
        dir.path().join(format!("{name}.log")),
    )
}
