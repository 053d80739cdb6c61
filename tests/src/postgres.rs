//! A PostgreSQL server of the test's own, for cluster mode: `initdb` into a
//! fresh directory, a free port on 127.0.0.1, trust authentication, every
//! transaction serializable (as in CockroachDB, so the hosts' retries of
//! transactions the database undoes are exercised; `scripts/cluster-litmus.sh`
//! runs PostgreSQL's default, read committed), stopped and removed on drop. A test may stop and start it again (to see
//! the hosts do without it and recover).
//!
//! The binaries are `$EDGEDAV_PG_BIN` or the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package, which
//! `scripts/test.sh` installs). PostgreSQL refuses to run as root: as root,
//! the server runs as the `postgres` user that package creates.

use super::*;

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    /// Where PostgreSQL's binaries are; none when it is not installed.
    pub fn binaries() -> Option<PathBuf> {
        if let Some(bin) = std::env::var_os("EDGEDAV_PG_BIN") {
            return Some(PathBuf::from(bin));
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .collect();
        found.sort_by_key(|bin| {
            bin.parent()
                .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
        });
        found.pop()
    }

    /// A fresh server, started.
    pub fn start(bin: PathBuf) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("edgedav-pg-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let port = free_port();
        let pg = Postgres {
            bin,
            data,
            dir,
            port,
        };
        if as_root() {
            // The server's user must own its directory.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the database directory failed");
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "edgedav",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        pg.start_again();
        pg
    }

    /// `postgres://` URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "postgres://edgedav@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Runs one SQL statement with `psql`; its output, unaligned, without
    /// headers (a count: just the number).
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "edgedav",
                "-d",
                "postgres",
                "-XAt",
                "-c",
                sql,
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]);
    }

    /// Starts the (stopped) server again, on the same port and data.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c default_transaction_isolation=serializable",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.pg_ctl(&["-o", &options, "-l", &log, "start"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data.display().to_string();
        let mut all = vec!["-D", &data, "-w", "-t", "60"];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    /// Runs one of the server's programs, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One of the server's programs, to run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn as_root() -> bool {
    // SAFETY: a plain system call without arguments.
    unsafe { libc::geteuid() == 0 }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
