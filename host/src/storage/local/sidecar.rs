//! The dead-property sidecar store: one JSON file per resource under
//! `<root>/.edgedav/props/`, in the form and naming of
//! `edgedav_rules::props::sidecar`.

use super::*;

/// The dead-property sidecar store (see the module docs).
pub(super) struct PropStore {
    dir: PathBuf,
    /// `dir`, open: existence checks look up one name in it.
    dir_fd: OwnedFd,
    /// Where property documents are staged (the store's staging directory).
    staging: PathBuf,
    /// Serialises read-modify-write patches.
    patching: Mutex<()>,
}

impl PropStore {
    pub(super) fn open(dir: PathBuf, staging: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        let dir_fd = rustix::fs::open(
            &dir,
            // Readable, not O_PATH: `any` lists it.
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            dir,
            dir_fd,
            staging,
            patching: Mutex::new(()),
        })
    }

    pub(super) fn file(&self, path: &str) -> PathBuf {
        self.dir.join(props::file_name(path))
    }

    /// Whether any resource has dead properties (any sidecar exists): one
    /// read of the sidecar directory's first entries.
    pub(super) fn any(&self) -> io::Result<bool> {
        for entry in rustix::fs::Dir::read_from(&self.dir_fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `path` has dead properties (its sidecar exists).
    pub(super) fn has(&self, path: &str) -> io::Result<bool> {
        match rustix::fs::accessat(
            &self.dir_fd,
            props::file_name(path),
            Access::EXISTS,
            AtFlags::empty(),
        ) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn load(&self, path: &str) -> io::Result<Vec<Property>> {
        let bytes = match fs::read(self.file(path)) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            read => read?,
        };
        Ok(props::decode(&bytes)?)
    }

    /// Replaces a resource's properties atomically (temp file + rename).
    pub(super) fn store(&self, path: &str, properties: Vec<Property>) -> io::Result<()> {
        if properties.is_empty() {
            return self.remove(path);
        }
        let bytes = props::encode(path, properties);
        // The directory is made again if it was removed (with the root, say)
        // while the server ran.
        fs::create_dir_all(&self.dir)?;
        let mut staged = staging::stage(&self.staging, &self.dir)?;
        let written = staged
            .file
            .write_all(&bytes)
            .and_then(|()| fs::rename(&staged.path, self.file(path)));
        if written.is_err() {
            let _ = fs::remove_file(&staged.path);
        }
        written
    }

    pub(super) fn remove(&self, path: &str) -> io::Result<()> {
        match fs::remove_file(self.file(path)) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub(super) fn copy(&self, from: &str, to: &str) -> io::Result<()> {
        self.store(to, self.load(from)?)
    }

    pub(super) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.copy(from, to)?;
        self.remove(from)
    }

    /// Applies all changes in order, then publishes them at once.
    pub(super) fn patch(&self, path: &str, changes: Vec<PropertyChange>) -> io::Result<()> {
        let _guard = self
            .patching
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut properties = self.load(path)?;
        props::apply(&mut properties, changes);
        self.store(path, properties)
    }
}
