//! What a power cut would leave: a journal-less ext4 in an image file,
//! read with `debugfs` (the crash tests of the native host and of the
//! wasi-filesystem adapter under `wasmtime serve`).

use std::path::{Path, PathBuf};

use super::*;

/// A journal-less ext4 (as on this project's CI machines) in an image
/// file, mounted through a loop device for as long as the value lives.
/// What its files hold *on the disk* is read from the image with
/// `debugfs`: what the kernel has written to the device, not its caches,
/// i.e. what a power cut would leave.
pub struct Ext4Image {
    dir: tempfile::TempDir,
}

impl Ext4Image {
    pub fn mount(test: &str) -> Option<Self> {
        // SAFETY: a plain query of the process's effective user.
        if unsafe { libc::geteuid() } != 0 {
            skip(&format!("SKIPPED {test}: mounting an image needs root\n"));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("edgedav-ext4-")
            .tempdir()
            .unwrap();
        let image = Self { dir };
        std::fs::File::create(image.image())
            .and_then(|f| f.set_len(64 << 20))
            .unwrap();
        std::fs::create_dir(image.mount_point()).unwrap();
        let run = |program: &str, args: &[&Path]| {
            std::process::Command::new(program)
                .args(args)
                .output()
                .is_ok_and(|out| out.status.success())
        };
        let made = run(
            "mkfs.ext4",
            &[
                Path::new("-q"),
                Path::new("-O"),
                Path::new("^has_journal"),
                &image.image(),
            ],
        );
        if !made
            || !run(
                "mount",
                &[
                    Path::new("-o"),
                    Path::new("loop"),
                    &image.image(),
                    &image.mount_point(),
                ],
            )
        {
            skip(&format!(
                "SKIPPED {test}: no journal-less ext4 on a loop device (mkfs.ext4, mount -o loop)\n"
            ));
            return None;
        }
        Some(image)
    }

    fn image(&self) -> PathBuf {
        self.dir.path().join("image")
    }

    pub fn mount_point(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// `debugfs -R REQUEST` on the image: its standard output.
    pub fn debugfs(&self, request: &str) -> Vec<u8> {
        let out = std::process::Command::new("debugfs")
            .arg("-R")
            .arg(request)
            .arg(self.image())
            .output()
            .expect("debugfs (e2fsprogs) runs");
        out.stdout
    }

    /// Whether the disk holds a name at `path` (absolute in the filesystem).
    pub fn has(&self, path: &str) -> bool {
        String::from_utf8_lossy(&self.debugfs(&format!("stat {path}"))).contains("Links: ")
    }

    /// The names the disk holds in directory `path`.
    pub fn names(&self, path: &str) -> Vec<String> {
        let listed = String::from_utf8_lossy(&self.debugfs(&format!("ls -p {path}"))).into_owned();
        // `/inode/mode/uid/gid/name/size/`, one entry per line.
        listed
            .lines()
            .filter_map(|line| line.split('/').nth(5).map(str::to_owned))
            .filter(|name| !name.is_empty() && name != "." && name != "..")
            .collect()
    }

    /// The link count and content the disk holds for `path` (absolute in
    /// the filesystem).
    pub fn on_disk(&self, path: &str) -> (u32, Vec<u8>) {
        let stat = String::from_utf8_lossy(&self.debugfs(&format!("stat {path}"))).into_owned();
        let links = stat
            .split_once("Links: ")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{path} is not on the disk: {stat}"));
        (links, self.debugfs(&format!("cat {path}")))
    }
}

impl Drop for Ext4Image {
    /// Unmounts; lazily when something still holds the filesystem (a
    /// server of a failed test on its way out), so no mount is left behind.
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut command = std::process::Command::new("umount");
            if lazy {
                command.arg("--lazy");
            }
            command
                .arg(self.mount_point())
                .status()
                .is_ok_and(|status| status.success())
        };
        if !umount(false) {
            umount(true);
        }
    }
}

/// The changes of names and properties a WebDAV client makes, checked on
/// the disk as each is answered: a copy whole (also one that replaced a
/// file: never an empty file where a good one was), a move under its new
/// name only, a deletion gone, a new collection, dead properties in their
/// sidecar. `store` is where the server's store is on `disk` (`/store`);
/// `request` makes a request to `server` (with its credentials).
pub fn answered_changes_are_on_the_disk(
    disk: &Ext4Image,
    server: &Server,
    store: &str,
    request: impl Fn(&str, &str) -> RequestBuilder,
) {
    let send = |method: &str, path: &str, destination: Option<&str>, body: &str, status: u16| {
        let mut r = request(method, path);
        if let Some(to) = destination {
            r = r.header("Destination", server.url(to));
        }
        r.body(body.as_bytes().to_vec())
            .exec()
            .expect(&[status], &format!("{method} {path}"));
    };
    let on_disk = |path: &str| format!("{store}{path}");
    let content = "the original ".repeat(1000);
    let whole = |path: &str, what: &str| {
        assert!(
            disk.on_disk(&on_disk(path)).1 == content.as_bytes(),
            "{what}"
        );
    };
    let gone = |path: &str, what: &str| assert!(!disk.has(&on_disk(path)), "{what}");
    let sidecars = |count: usize, what: &str| {
        let names = disk.names(&on_disk("/.edgedav/props"));
        assert_eq!(names.len(), count, "{what}: {names:?}");
        names
    };
    send("PUT", "/f", None, &content, 201);
    send("PUT", "/old", None, "a file a copy replaces", 201);

    send(
        "PROPPATCH",
        "/f",
        None,
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:color>teal</Z:color></D:prop></D:set></D:propertyupdate>"#,
        207,
    );
    let names = sidecars(1, "PROPPATCH: the sidecar of /f on the disk");
    let sidecar = disk
        .on_disk(&on_disk(&format!("/.edgedav/props/{}", names[0])))
        .1;
    assert!(
        String::from_utf8_lossy(&sidecar).contains("teal"),
        "PROPPATCH: the dead property on the disk"
    );

    send("MKCOL", "/c", None, "", 201);
    assert!(
        disk.debugfs(&format!("stat {}", on_disk("/c")))
            .windows(15)
            .any(|w| w == b"Type: directory"),
        "MKCOL: the collection on the disk"
    );

    send("COPY", "/f", Some("/c/copy"), "", 201);
    whole("/c/copy", "COPY: the new copy on the disk");
    send("COPY", "/f", Some("/old"), "", 204);
    whole("/old", "COPY: the replaced file on the disk");
    sidecars(3, "COPY: the copies' sidecars on the disk");

    send("COPY", "/c", Some("/d"), "", 201);
    whole("/d/copy", "COPY of a collection: its member on the disk");

    send("MOVE", "/c/copy", Some("/moved"), "", 201);
    whole("/moved", "MOVE: the new name on the disk");
    gone("/c/copy", "MOVE: the old name gone from the disk");

    send("DELETE", "/old", None, "", 204);
    gone("/old", "DELETE: the file gone from the disk");
    send("DELETE", "/d", None, "", 204);
    gone("/d", "DELETE: the collection gone from the disk");
    // /f, /moved (its sidecar followed it) and nothing of the deleted ones.
    sidecars(2, "DELETE: the sidecars gone from the disk");
}
