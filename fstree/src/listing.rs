//! Pages of a collection's members, in name order, resumable by cursor.

use edgedav_rules::path::child_path;

use crate::{Fs, Result, UPLOAD_PREFIX, is_reserved, sidecar};

/// The most entries one page holds, whatever the caller asks.
pub const MAX_PAGE: u32 = 1000;

pub struct Entry<M> {
    pub name: String,
    pub metadata: M,
    /// Whether the member may have dead properties (false only when it
    /// surely has none).
    pub has_properties: bool,
}

pub struct Page<M> {
    pub entries: Vec<Entry<M>>,
    /// The cursor of the next page; none on the last one.
    pub next: Option<String>,
}

/// The members after `cursor`, at most `limit` (clamped to 1..=[`MAX_PAGE`]).
/// Reserved names are never listed; files staged beside their target that
/// a listing meets are offered to [`Fs::sweep_staged`]. Members that vanish
/// meanwhile, or are symlinks leading out of the store, are skipped.
pub fn list_members<F: Fs>(
    fs: &F,
    path: &str,
    cursor: Option<String>,
    limit: u32,
) -> Result<Page<F::Meta>> {
    let (at, listing, names) = fs.list_path(path)?;
    let mut staged = Vec::new();
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|name| {
            if name.starts_with(UPLOAD_PREFIX) {
                staged.push(name.clone());
            }
            !is_reserved(name)
        })
        .filter(|name| cursor.as_ref().is_none_or(|after| name > after))
        .collect();
    names.sort_unstable();
    if !staged.is_empty() {
        fs.sweep_staged(&at, &staged);
    }

    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let mut entries = Vec::with_capacity(limit.min(names.len()));
    // A store without any dead property (the usual case) answers for every
    // member at once, instead of a lookup per member; asked only when there
    // is a member to answer for.
    let mut any_properties = None;
    let mut names = names.into_iter().peekable();
    while entries.len() < limit {
        let Some(name) = names.next() else { break };
        if let Some(metadata) = fs.member(&listing, &name) {
            let has_properties = *any_properties.get_or_insert_with(|| sidecar::any(fs))
                && sidecar::has(fs, &child_path(path, &name));
            entries.push(Entry {
                name,
                metadata,
                has_properties,
            });
        }
    }
    let next = match names.peek() {
        Some(_) => entries.last().map(|entry| entry.name.clone()),
        None => None,
    };
    Ok(Page { entries, next })
}
