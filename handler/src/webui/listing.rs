//! The collection listing as HTML, streamed one storage page per chunk so a
//! collection of any size is listed in bounded memory.
//!
//! Every name goes through [`escape`] (element text and attribute values)
//! and every link through [`DavPath::href`] (each segment percent-encoded);
//! the rows carry their raw sort keys (`data-size`, `data-modified`) so the
//! script can sort them without parsing what is displayed.

use super::{ASSET_PARAM, escape};
use crate::backend::{Entry, Env, Page};
use crate::date::rfc3339;
use crate::error::{DavError, DavResult};
use crate::http::ChunkSource;
use crate::path::DavPath;

/// Listing pages fetched per chunk of HTML.
const PAGE: u32 = 1000;

pub struct Listing<'a> {
    env: &'a Env<'a>,
    path: DavPath,
    /// The next page, fetched ahead: the first one before the status is
    /// sent, so a collection that cannot be listed gets an error status.
    page: Option<Page>,
    state: State,
}

enum State {
    Head,
    Rows,
    Done,
}

impl<'a> Listing<'a> {
    pub fn new(env: &'a Env<'a>, path: DavPath) -> DavResult<Self> {
        let page = env.storage.list_members(path.as_str(), None, PAGE)?;
        Ok(Self {
            env,
            path,
            page: Some(page),
            state: State::Head,
        })
    }
}

impl ChunkSource for Listing<'_> {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, DavError> {
        match self.state {
            State::Head => {
                self.state = State::Rows;
                Ok(Some(head(&self.path).into_bytes()))
            }
            State::Rows => {
                let Some(page) = self.page.take() else {
                    return Ok(None);
                };
                let mut html = String::new();
                for entry in &page.entries {
                    html.push_str(&row(&self.path, entry));
                }
                match page.next {
                    Some(cursor) => {
                        self.page = Some(self.env.storage.list_members(
                            self.path.as_str(),
                            Some(&cursor),
                            PAGE,
                        )?);
                    }
                    None => {
                        self.state = State::Done;
                        html.push_str(TAIL);
                    }
                }
                Ok(Some(html.into_bytes()))
            }
            State::Done => Ok(None),
        }
    }
}

/// Everything before the first row: the assets, the path as breadcrumbs,
/// the (hidden until the script runs) tools and the table head.
fn head(path: &DavPath) -> String {
    let title = escape(&format!("Index of {}", path.as_str()));
    let collection = escape(&path.href(true));
    let mut crumbs = String::from("<a href=\"/\">/</a>");
    let mut prefix = DavPath::root();
    for segment in path.segments() {
        prefix = prefix.join(segment);
        crumbs.push_str(&format!(
            "<a href=\"{}\">{}</a>/",
            escape(&prefix.href(true)),
            escape(segment)
        ));
    }
    let up = match path.parent() {
        Some(parent) => format!(
            "<a class=\"up\" href=\"{}\">Parent folder</a>",
            escape(&parent.href(true))
        ),
        None => String::new(),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="?{ASSET_PARAM}=app.css">
<script src="?{ASSET_PARAM}=app.js" defer></script>
</head>
<body>
<header><h1 class="crumbs"><span class="label">Index of</span> {crumbs}</h1>{up}</header>
<section id="tools" class="tools" hidden>
<button type="button" id="upload">Upload files</button><input type="file" id="upload-input" multiple hidden>
<button type="button" id="new-folder">New folder</button>
<span class="hint">or drop files anywhere on this page</span>
</section>
<div id="progress" class="progress" hidden><progress id="progress-bar" max="1" value="0"></progress> <span id="progress-text"></span></div>
<div id="message" class="message" role="status" aria-live="polite"></div>
<table id="listing" data-collection="{collection}">
<thead><tr><th scope="col" data-sort="name">Name</th><th scope="col" data-sort="size" class="size">Size</th><th scope="col" data-sort="modified">Modified</th></tr></thead>
<tbody>
"#
    )
}

fn row(collection: &DavPath, entry: &Entry) -> String {
    let dir = entry.metadata.is_collection();
    let href = escape(&collection.join(&entry.name).href(dir));
    let name = escape(&entry.name);
    let modified = rfc3339(entry.metadata.modified);
    let shown = modified.replacen('T', " ", 1).replacen('Z', " UTC", 1);
    let (kind, slash, size_key, size) = if dir {
        ("dir", "/", 0, String::from("<td class=\"size\">—</td>"))
    } else {
        let size = entry.metadata.size;
        let cell = format!(
            "<td class=\"size\" title=\"{size} bytes\">{}</td>",
            human_size(size)
        );
        ("file", "", size, cell)
    };
    format!(
        "<tr class=\"{kind}\" data-name=\"{name}\" data-size=\"{size_key}\" data-modified=\"{}\">\
         <td class=\"name\"><a href=\"{href}\">{name}{slash}</a></td>\
         {size}\
         <td><time datetime=\"{modified}\">{shown}</time></td></tr>\n",
        entry.metadata.modified.seconds,
    )
}

const TAIL: &str = "</tbody>\n</table>\n</body></html>\n";

/// A size for people: bytes up to 1023, then one decimal in binary units.
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
