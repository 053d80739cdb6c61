//! Which members of a listing page have dead properties, without a request
//! per member, and the listing cursor that carries that knowledge from page
//! to page.
//!
//! The properties of member `b` of a collection `P/a/` are the object
//! `P/a/.edgedav/props/b`. The delimited listing of the collection shows the
//! common prefix `P/a/.edgedav/` exactly when something lives below it, at
//! the place where `.edgedav/` sorts among the members. So:
//!
//! * When the first page has passed that place without showing the prefix,
//!   no member has properties: every `has-properties` is false, on this page
//!   and (carried in the cursor) on every later one, at no extra request.
//! * Otherwise (shown, or the first page ended before that place) the
//!   property objects are listed, in name order, one ListObjectsV2 per 1,000
//!   of them (not per page): the names listed but not yet reached by the
//!   member listing travel in the cursor, with where the property listing
//!   stopped. A page needs another property listing only when its names
//!   run past that point.
//!
//! The member listing runs in key order (`name` for a file, `name/` for a
//! collection), the property listing in name order, and the two differ: a
//! collection `x` (key `x/`) comes after a file `x.txt` although its name
//! sorts first. Hence a listed name is only dropped from the cursor once
//! both of its possible keys lie behind the page.
//!
//! # The cursor
//!
//! `-TOKEN` (no member has properties) or `+N/AFTER/NAME_1/…/NAME_N/TOKEN`,
//! where TOKEN is S3's continuation token (which may contain `/`), the NAMEs
//! are the property names listed and not yet passed, in order, and AFTER the
//! last name the property listing has returned (empty when it is complete).
//! Member names never contain `/`. The cursor comes back from the guest: a
//! malformed one is an error, never a panic.

use crate::storage::{Entry, Error};

/// What the cursor knows about the dead properties of the members to come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberProps {
    /// No member has dead properties.
    None,
    Listed(Listed),
}

/// Property names listed ahead of the member listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listed {
    /// Names with properties not yet passed by the member listing, sorted.
    pub pending: Vec<String>,
    /// The last name the property listing returned; `None` once it is
    /// complete.
    pub after: Option<String>,
}

/// Pending names carried in a cursor, at most (in bytes): beyond that, the
/// rest is listed again when reached (`after` moves back).
const MAX_PENDING_BYTES: usize = 64 * 1024;

impl Listed {
    /// Whether the property listing must go on before the members up to
    /// `last` (the greatest name of a page) can be told.
    pub fn needs_more(&self, last: &str) -> bool {
        self.after.as_deref().is_some_and(|after| after < last)
    }

    /// Adds a page of the property listing: the names it holds (in order,
    /// all after `after`), and where it stopped (`None`: it was the last).
    pub fn extend(&mut self, names: Vec<String>, stopped_at: Option<String>) {
        self.pending.extend(names);
        self.after = stopped_at;
    }

    /// Sets `has_properties` of each entry from the listed names.
    pub fn mark(&self, entries: &mut [Entry]) {
        for entry in entries {
            entry.has_properties = self.pending.binary_search(&entry.name).is_ok();
        }
    }

    /// Forgets the names no later page can hold: those whose keys, as a
    /// file and as a collection, sort at or before `last_key` (the page's
    /// last key, relative to the collection), then trims the cursor to its
    /// size limit.
    pub fn pass(&mut self, last_key: &str) {
        self.pending.retain(|name| {
            let as_collection = format!("{name}/");
            as_collection.as_str() > last_key
        });
        let mut bytes = 0;
        let keep = self
            .pending
            .iter()
            .take_while(|name| {
                bytes += name.len() + 1;
                bytes <= MAX_PENDING_BYTES
            })
            .count()
            .max(1);
        if keep < self.pending.len() {
            self.pending.truncate(keep);
            // Listed again after the last name kept.
            self.after = self.pending.last().cloned();
        }
    }
}

/// The cursor for the next page: what is known of properties, then S3's token.
pub fn encode(props: &MemberProps, token: &str) -> String {
    match props {
        MemberProps::None => format!("-{token}"),
        MemberProps::Listed(listed) => {
            let mut cursor = format!(
                "+{}/{}/",
                listed.pending.len(),
                listed.after.as_deref().unwrap_or("")
            );
            for name in &listed.pending {
                cursor.push_str(name);
                cursor.push('/');
            }
            cursor.push_str(token);
            cursor
        }
    }
}

/// Reads a cursor made by [`encode`].
pub fn decode(cursor: &str) -> Result<(MemberProps, String), Error> {
    let malformed = || Error::Conflict("malformed listing cursor".to_owned());
    if let Some(token) = cursor.strip_prefix('-') {
        return Ok((MemberProps::None, token.to_owned()));
    }
    let rest = cursor.strip_prefix('+').ok_or_else(malformed)?;
    let (count, rest) = rest.split_once('/').ok_or_else(malformed)?;
    let count: usize = count.parse().map_err(|_| malformed())?;
    let (after, mut rest) = rest.split_once('/').ok_or_else(malformed)?;
    // Each name takes at least two bytes: an absurd count fails here, before
    // anything is allocated for it.
    if count > rest.len() / 2 {
        return Err(malformed());
    }
    let mut pending = Vec::with_capacity(count);
    for _ in 0..count {
        let (name, tail) = rest.split_once('/').ok_or_else(malformed)?;
        if name.is_empty()
            || pending
                .last()
                .is_some_and(|last: &String| last.as_str() >= name)
        {
            return Err(malformed());
        }
        pending.push(name.to_owned());
        rest = tail;
    }
    let listed = Listed {
        pending,
        after: (!after.is_empty()).then(|| after.to_owned()),
    };
    Ok((MemberProps::Listed(listed), rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Metadata, NodeKind, Timestamp};

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.to_owned(),
            metadata: Metadata {
                kind: NodeKind::File,
                size: 0,
                modified: Timestamp {
                    seconds: 0,
                    nanoseconds: 0,
                },
                created: None,
                etag: String::new(),
                content_type: None,
            },
            has_properties: true,
        }
    }

    #[test]
    fn cursors_round_trip() {
        let listed = Listed {
            pending: vec!["a b".into(), "é".into()],
            after: Some("z".into()),
        };
        for props in [
            MemberProps::None,
            MemberProps::Listed(listed),
            MemberProps::Listed(Listed::default()),
        ] {
            for token in ["", "tok/en+=", "1/2/3"] {
                let cursor = encode(&props, token);
                assert_eq!(decode(&cursor), Ok((props.clone(), token.to_owned())));
            }
        }
    }

    #[test]
    fn malformed_cursors_are_errors() {
        for bad in [
            "",
            "token",
            "+",
            "+x/",
            "+1/",
            "+1//",
            "+2//a/",
            "+2//b/a/t",
            "+1//a",
            "+99999999999999999999/a/b/",
            "+18446744073709551615//a/",
        ] {
            assert!(
                matches!(decode(bad), Err(Error::Conflict(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn marks_and_passes_in_key_order() {
        let mut listed = Listed::default();
        listed.extend(
            vec!["x".into(), "x.txt".into(), "y".into()],
            Some("y".into()),
        );
        assert_eq!(listed.after.as_deref(), Some("y"));
        assert!(listed.needs_more("z"));
        assert!(!listed.needs_more("y"));
        let mut page = vec![entry("w"), entry("x.txt")];
        listed.mark(&mut page);
        assert_eq!(
            page.iter().map(|e| e.has_properties).collect::<Vec<_>>(),
            [false, true]
        );
        // The page ended at the file `x.txt`: a collection `x` (key `x/`)
        // or `x.txt` (key `x.txt/`) may still come, so both names stay.
        listed.pass("x.txt");
        assert_eq!(listed.pending, ["x", "x.txt", "y"]);
        listed.pass("x.txt/");
        assert_eq!(listed.pending, ["x", "y"]);
        listed.pass("x/");
        assert_eq!(listed.pending, ["y"]);
        listed.extend(Vec::new(), None);
        assert_eq!(listed.after, None);
        assert!(!listed.needs_more("zzz"));
    }

    #[test]
    fn the_cursor_stays_bounded() {
        let mut listed = Listed::default();
        let names: Vec<String> = (0..1000)
            .map(|i| format!("{i:04}{}", "n".repeat(200)))
            .collect();
        listed.extend(names.clone(), None);
        listed.pass("");
        assert!(listed.pending.len() < 1000);
        let kept = listed.pending.len();
        // The names dropped are listed again, from the last one kept.
        assert_eq!(listed.after.as_deref(), Some(names[kept - 1].as_str()));
        assert!(encode(&MemberProps::Listed(listed), "t").len() <= MAX_PENDING_BYTES + 100);
    }
}
