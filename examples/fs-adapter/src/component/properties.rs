//! Dead properties in sidecar files, in the native host's form and naming.

use super::*;

/// A resource's sidecar, in the native host's format and naming
/// (`edgedav_rules::props::sidecar`), so both serve the same directory.
pub(super) fn props_file(path: &str) -> String {
    format!("{PROPS_DIR}/{}", sidecar::file_name(path))
}

impl Store {
    /// Whether a resource may have dead properties: its sidecar exists (one
    /// stat, no read). When that cannot be told, it may (true).
    pub(super) fn has_properties(&self, path: &str) -> bool {
        !matches!(
            self.stat(&props_file(path), NOFOLLOW),
            Err(ErrorCode::NoEntry)
        )
    }

    pub(super) fn props_load(&self, path: &str) -> Result<Vec<StoredProperty>, ErrorCode> {
        let bytes = match self.read_all(&props_file(path)) {
            Err(ErrorCode::NoEntry) => return Ok(Vec::new()),
            read => read?,
        };
        sidecar::decode(&bytes).map_err(|_| ErrorCode::Io)
    }

    /// Replaces a resource's properties atomically (staged file + rename).
    pub(super) fn props_store(
        &self,
        path: &str,
        properties: Vec<StoredProperty>,
    ) -> Result<(), ErrorCode> {
        if properties.is_empty() {
            return self.props_remove(path);
        }
        let bytes = sidecar::encode(path, properties);
        // The property directory holds one file per resource: sweep it on
        // one store in 64, so a crash's leftovers go without a listing per
        // request.
        if wasi::random::random::get_random_u64().is_multiple_of(64) {
            self.sweep(PROPS_DIR);
        }
        self.write_atomic(PROPS_DIR, &props_file(path), &bytes)
    }

    pub(super) fn props_remove(&self, path: &str) -> Result<(), ErrorCode> {
        self.remove_file_if_present(&props_file(path))
    }

    pub(super) fn props_copy(&self, from: &str, to: &str) -> Result<(), ErrorCode> {
        self.props_store(to, self.props_load(from)?)
    }

    pub(super) fn props_rename(&self, from: &str, to: &str) -> Result<(), ErrorCode> {
        self.props_copy(from, to)?;
        self.props_remove(from)
    }
}
