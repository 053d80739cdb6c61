//! Pages of a collection's members, in name order, resumable by cursor.

use edgedav_rules::path::child_path;

use crate::snapshot::{Cursor, Snapshots};
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
/// meanwhile, or are symlinks leading out of the store, are skipped. A
/// collection of more than one page has its sorted names kept between
/// pages where the binding offers it ([`Fs::snapshots`]): a later page then
/// reads no directory.
pub fn list_members<F: Fs>(
    fs: &F,
    path: &str,
    cursor: Option<String>,
    limit: u32,
) -> Result<Page<F::Meta>> {
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let cursor = cursor.as_deref().map(Cursor::parse);
    if let Some(cursor) = &cursor
        && let Some(snapshots) = fs.snapshots()
        && let Some(names) = snapshots.resume(path, cursor)
        && let Some((id, index)) = cursor.kept
    {
        let listing = fs.open_listing(path)?;
        let names = (index..names.len()).filter_map(|i| names.get(i));
        let (entries, next) = page(fs, path, &listing, names, limit);
        return Ok(Page {
            entries,
            next: continue_kept(snapshots, id, index, next),
        });
    }

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
        .filter(|name| cursor.as_ref().is_none_or(|c| name.as_str() > c.after))
        .collect();
    names.sort_unstable();
    if !staged.is_empty() {
        fs.sweep_staged(&at, &staged);
    }
    let kept = match fs.snapshots() {
        Some(snapshots) if names.len() > limit => {
            snapshots.keep(path, &names).map(|id| (snapshots, id))
        }
        _ => None,
    };
    let (entries, next) = page(fs, path, &listing, names.iter().map(String::as_str), limit);
    let next = match kept {
        Some((snapshots, id)) => continue_kept(snapshots, id, 0, next),
        None => next.map(|rest| rest.last),
    };
    Ok(Page { entries, next })
}

/// The members among `names` (sorted, after the cursor) up to `limit`,
/// and, when names are left, where they start (after the last name used,
/// whether or not it was still there).
fn page<'a, F: Fs>(
    fs: &F,
    path: &str,
    listing: &F::Listing,
    names: impl Iterator<Item = &'a str>,
    limit: usize,
) -> (Vec<Entry<F::Meta>>, Option<Rest>) {
    let mut entries: Vec<Entry<F::Meta>> = Vec::with_capacity(limit);
    // A store without any dead property (the usual case) answers for every
    // member at once, instead of a lookup per member; asked only when there
    // is a member to answer for.
    let mut any_properties = None;
    let mut names = names.peekable();
    let (mut used, mut last) = (0, "");
    while entries.len() < limit {
        let Some(name) = names.next() else { break };
        (used, last) = (used + 1, name);
        if let Some(metadata) = fs.member(listing, name) {
            let has_properties = *any_properties.get_or_insert_with(|| sidecar::any(fs))
                && sidecar::has(fs, &child_path(path, name));
            entries.push(Entry {
                name: name.to_owned(),
                metadata,
                has_properties,
            });
        }
    }
    let rest = names.peek().map(|_| Rest {
        used,
        last: last.to_owned(),
    });
    (entries, rest)
}

/// Where the names left after a page start: after `used` names, the last
/// of them `last`.
struct Rest {
    used: usize,
    last: String,
}

/// The cursor after a page of kept names that started at `index`; the names
/// are dropped after their last page.
fn continue_kept(
    snapshots: &Snapshots,
    id: u64,
    index: usize,
    rest: Option<Rest>,
) -> Option<String> {
    match rest {
        Some(rest) => Some(Cursor::format(id, index + rest.used, &rest.last)),
        None => {
            snapshots.done(id);
            None
        }
    }
}
