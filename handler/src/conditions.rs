//! Request preconditions: the WebDAV `If` header (RFC 4918 §10.4), lock
//! token submission (§7) and the HTTP conditionals (RFC 9110 §13).
//!
//! Parsing and evaluation are pure; the little state they need about a
//! resource (its ETag and the tokens of the locks covering it) comes in as
//! [`ResourceState`], so every rule here is tested without storage.

use crate::backend::{ActiveLock, Env, Metadata};
use crate::error::{DavError, DavResult};
use crate::path::{DavPath, path_from_href};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Token(String),
    /// The entity tag as written, quotes and `W/` included.
    ETag(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub not: bool,
    pub check: Check,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The resource a tagged list applies to (a raw href); `None` for the
    /// request URI.
    pub tag: Option<String>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IfHeader {
    pub lists: Vec<List>,
}

/// What the `If` header needs to know about a resource.
#[derive(Debug, Clone, Default)]
pub struct ResourceState {
    /// Quoted strong ETag, when the resource exists.
    pub etag: Option<String>,
    pub lock_tokens: Vec<String>,
}

impl IfHeader {
    pub fn parse(value: &str) -> DavResult<Self> {
        let bad = |why: &str| DavError::bad_request(format!("malformed If header: {why}"));
        let mut lists = Vec::new();
        let mut tag: Option<String> = None;
        let mut rest = value.trim_start();
        let mut tagged = None;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('<') {
                let end = after
                    .find('>')
                    .ok_or_else(|| bad("unterminated resource tag"))?;
                if tagged == Some(false) {
                    return Err(bad("mixes tagged and untagged lists"));
                }
                tagged = Some(true);
                tag = Some(after[..end].to_owned());
                rest = after[end + 1..].trim_start();
                if !rest.starts_with('(') {
                    return Err(bad("resource tag without a list"));
                }
                continue;
            }
            let after = rest
                .strip_prefix('(')
                .ok_or_else(|| bad("expected '(' or '<'"))?;
            if tagged.is_none() {
                tagged = Some(false);
            }
            let end = after.find(')').ok_or_else(|| bad("unterminated list"))?;
            let conditions = parse_conditions(&after[..end]).ok_or_else(|| bad("bad condition"))?;
            if conditions.is_empty() {
                return Err(bad("empty list"));
            }
            lists.push(List {
                tag: tag.clone(),
                conditions,
            });
            rest = after[end + 1..].trim_start();
        }
        if lists.is_empty() {
            return Err(bad("no lists"));
        }
        Ok(Self { lists })
    }

    /// Every state token in the header: these are the lock tokens the client
    /// submits (RFC 4918 §10.4.1).
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.lists
            .iter()
            .flat_map(|l| &l.conditions)
            .filter_map(|c| match &c.check {
                Check::Token(t) => Some(t.as_str()),
                Check::ETag(_) => None,
            })
    }

    /// True when any list matches the resource it applies to. `state` is asked
    /// about the request resource (`None` tag) or a tagged resource.
    /// A failure to learn a resource's state ends the evaluation with it.
    pub fn evaluate<E>(
        &self,
        mut state: impl FnMut(Option<&str>) -> Result<ResourceState, E>,
    ) -> Result<bool, E> {
        for list in &self.lists {
            let s = state(list.tag.as_deref())?;
            let matches = list.conditions.iter().all(|c| {
                let holds = match &c.check {
                    Check::Token(t) => s.lock_tokens.iter().any(|l| l == t),
                    Check::ETag(e) => s
                        .etag
                        .as_deref()
                        .is_some_and(|current| strong_match(e, current)),
                };
                holds != c.not
            });
            if matches {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn parse_conditions(mut s: &str) -> Option<Vec<Condition>> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Some(out);
        }
        let mut not = false;
        // `get`, not indexing: the third byte may fall inside a character.
        if s.get(..3).is_some_and(|w| w.eq_ignore_ascii_case("not")) {
            not = true;
            s = s[3..].trim_start();
        }
        let check = if let Some(after) = s.strip_prefix('<') {
            let end = after.find('>')?;
            s = &after[end + 1..];
            Check::Token(after[..end].to_owned())
        } else if let Some(after) = s.strip_prefix('[') {
            let end = after.find(']')?;
            s = &after[end + 1..];
            Check::ETag(after[..end].trim().to_owned())
        } else {
            return None;
        };
        out.push(Condition { not, check });
    }
}

/// Strong comparison (RFC 9110 §8.8.3.2): weak tags never match.
fn strong_match(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

/// Weak comparison, used by If-None-Match.
fn weak_match(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

/// Whether an `If-Match` / `If-None-Match` list matches a current ETag.
fn etag_list_matches(list: &str, current: Option<&str>, strong: bool) -> bool {
    let Some(current) = current else { return false };
    list.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || if strong {
                strong_match(tag, current)
            } else {
                weak_match(tag, current)
            }
    })
}

/// What the HTTP conditionals decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Proceed,
    NotModified,
    PreconditionFailed,
}

/// The conditionals of RFC 9110 §13.2.2, in order, for a resource that may
/// not exist. `safe` is GET/HEAD (a failed If-None-Match then means 304).
pub fn http_conditions(
    header: &dyn Fn(&str) -> Option<String>,
    meta: Option<&Metadata>,
    safe: bool,
) -> Outcome {
    // Quoted only when a condition compares it: most requests have none.
    let etag = || meta.map(Metadata::quoted_etag);
    let modified = meta.map(|m| m.modified.seconds);
    if let Some(list) = header("If-Match") {
        if !etag_list_matches(&list, etag().as_deref(), true) {
            return Outcome::PreconditionFailed;
        }
    } else if let Some(since) = header("If-Unmodified-Since").and_then(|v| parse_http_date(&v))
        && modified.is_some_and(|m| m > since)
    {
        return Outcome::PreconditionFailed;
    }
    if let Some(list) = header("If-None-Match") {
        if etag_list_matches(&list, etag().as_deref(), false) {
            return if safe {
                Outcome::NotModified
            } else {
                Outcome::PreconditionFailed
            };
        }
    } else if let Some(since) = header("If-Modified-Since").and_then(|v| parse_http_date(&v))
        && safe
        && modified.is_some_and(|m| m <= since)
    {
        return Outcome::NotModified;
    }
    Outcome::Proceed
}

pub fn parse_http_date(value: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(value.trim()).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// How much of the lock state a change touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The resource itself (e.g. PUT over an existing file, PROPPATCH).
    Resource,
    /// The resource and its parent's membership (creating or removing it).
    Member,
    /// The resource, its parent's membership and everything below it
    /// (DELETE or MOVE of a collection, overwriting a destination).
    Tree,
}

/// The `If` header of a request, parsed once, and the checks built on it.
pub struct Preconditions<'e> {
    env: &'e Env<'e>,
    header: Option<IfHeader>,
    authority: Option<String>,
}

impl<'e> Preconditions<'e> {
    pub fn new(
        env: &'e Env<'e>,
        if_header: Option<&str>,
        authority: Option<&str>,
    ) -> DavResult<Self> {
        let header = if_header.map(IfHeader::parse).transpose()?;
        Ok(Self {
            env,
            header,
            authority: authority.map(str::to_owned),
        })
    }

    fn submitted(&self, lock: &ActiveLock) -> bool {
        self.header
            .as_ref()
            .is_some_and(|h| h.tokens().any(|t| t == lock.token))
    }

    /// 423 unless, for every lock root on what the change touches, the token
    /// of one of the locks there was submitted: an exclusive lock's own
    /// token, or any one of the shared locks held at that root (RFC 4918 §7,
    /// as Apache mod_dav reads it).
    pub fn check_locks(&self, path: &DavPath, scope: Scope) -> DavResult<()> {
        let mut locks = self.env.locks.covering(path.as_str())?;
        if scope != Scope::Resource
            && let Some(parent) = path.parent()
        {
            locks.extend(self.env.locks.covering(parent.as_str())?);
        }
        if scope == Scope::Tree {
            locks.extend(self.env.locks.within(path.as_str())?);
        }
        let mut missing: Vec<String> = Vec::new();
        for lock in &locks {
            let root_satisfied = locks
                .iter()
                .any(|l| l.root == lock.root && self.submitted(l));
            let href = DavPath::from_target(&lock.root)
                .map(|p| p.href(false))
                .unwrap_or_else(|_| lock.root.clone());
            if !root_satisfied && !missing.contains(&href) {
                missing.push(href);
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DavError::locked(missing))
        }
    }

    /// 412 when an `If` header is present and evaluates to false for `path`.
    pub fn check_if(&self, path: &DavPath) -> DavResult<()> {
        let Some(header) = &self.header else {
            return Ok(());
        };
        let holds = header.evaluate(|tag| {
            let resource = match tag {
                None => Some(path.clone()),
                Some(href) => path_from_href(href, self.authority.as_deref()),
            };
            resource.map_or_else(|| Ok(ResourceState::default()), |p| self.state(&p))
        })?;
        if holds {
            Ok(())
        } else {
            Err(DavError::status(412, "If header evaluated to false"))
        }
    }

    /// `If` evaluation, then the lock check (RFC 4918 §10.4: a false header
    /// fails with 412 before locks are considered).
    pub fn check(&self, path: &DavPath, scope: Scope) -> DavResult<()> {
        self.check_if(path)?;
        self.check_locks(path, scope)
    }

    fn state(&self, path: &DavPath) -> DavResult<ResourceState> {
        Ok(ResourceState {
            etag: self
                .env
                .storage
                .stat(path.as_str())
                .ok()
                .map(|m| m.quoted_etag()),
            lock_tokens: self
                .env
                .locks
                .covering(path.as_str())?
                .into_iter()
                .map(|l| l.token)
                .collect(),
        })
    }

    /// The submitted tokens, for LOCK refresh and UNLOCK-style lookups.
    pub fn tokens(&self) -> Vec<String> {
        self.header
            .as_ref()
            .map(|h| h.tokens().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(etag: &str, tokens: &[&str]) -> ResourceState {
        ResourceState {
            etag: Some(etag.into()),
            lock_tokens: tokens.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn parses_untagged_and_tagged() {
        let h = IfHeader::parse("(<urn:uuid:1> [\"e1\"]) (Not <DAV:no-lock>)").unwrap();
        assert_eq!(h.lists.len(), 2);
        assert_eq!(
            h.lists[1].conditions[0],
            Condition {
                not: true,
                check: Check::Token("DAV:no-lock".into())
            }
        );
        let h = IfHeader::parse("<http://h/a> (<urn:uuid:1>) <http://h/b> ([W/\"x\"])").unwrap();
        assert_eq!(h.lists[0].tag.as_deref(), Some("http://h/a"));
        assert_eq!(
            h.lists[1].conditions[0].check,
            Check::ETag("W/\"x\"".into())
        );
        assert_eq!(h.tokens().collect::<Vec<_>>(), ["urn:uuid:1"]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "<a>",
            "(",
            "(<a>",
            "( )",
            "(x)",
            "<a> (<b>) (<c>) x",
            "(<a>) <b> (<c>)",
            // Found by fuzzing: "No" and half of a two-byte character.
            "(No\u{44c})",
            "(éé)",
        ] {
            assert!(IfHeader::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn evaluates_lists() {
        let s = state("\"e\"", &["urn:t"]);
        let eval = |h: &str| {
            IfHeader::parse(h)
                .unwrap()
                .evaluate(|_| Ok::<_, DavError>(s.clone()))
                .unwrap()
        };
        assert!(eval("(<urn:t>)"));
        assert!(!eval("(<urn:other>)"));
        assert!(eval("(<urn:other>) (<urn:t>)"));
        assert!(eval("(<urn:t> [\"e\"])"));
        assert!(!eval("(<urn:t> [\"f\"])"));
        assert!(!eval("(<DAV:no-lock>)"));
        assert!(eval("(Not <DAV:no-lock>)"));
        assert!(!eval("([W/\"e\"])"), "weak tags never match strongly");
        assert!(!eval(
            "(<urn:t> [W/\"bad\"]) (Not <DAV:no-lock> [W/\"bad\"])"
        ));
    }

    #[test]
    fn http_conditionals_in_rfc_order() {
        let meta = Metadata {
            kind: crate::backend::Kind::File,
            size: 1,
            modified: crate::backend::Timestamp {
                seconds: 1_000_000_000,
                nanoseconds: 0,
            },
            created: None,
            etag: "x".into(),
            content_type: None,
        };
        let run = |pairs: &[(&str, &str)], safe| {
            let lookup = |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.to_string())
            };
            http_conditions(&lookup, Some(&meta), safe)
        };
        assert_eq!(run(&[("If-Match", "\"x\"")], false), Outcome::Proceed);
        assert_eq!(
            run(&[("If-Match", "\"y\", \"z\"")], false),
            Outcome::PreconditionFailed
        );
        assert_eq!(run(&[("If-Match", "*")], false), Outcome::Proceed);
        assert_eq!(
            run(&[("If-None-Match", "W/\"x\"")], true),
            Outcome::NotModified
        );
        assert_eq!(
            run(&[("If-None-Match", "*")], false),
            Outcome::PreconditionFailed
        );
        assert_eq!(
            run(
                &[("If-Modified-Since", "Sun, 09 Sep 2001 01:46:40 GMT")],
                true
            ),
            Outcome::NotModified
        );
        assert_eq!(
            run(
                &[("If-Modified-Since", "Sun, 09 Sep 2001 01:46:39 GMT")],
                true
            ),
            Outcome::Proceed
        );
        assert_eq!(
            run(
                &[("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")],
                false
            ),
            Outcome::PreconditionFailed
        );
        // If-Match takes precedence over If-Unmodified-Since.
        assert_eq!(
            run(
                &[
                    ("If-Match", "\"x\""),
                    ("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")
                ],
                false
            ),
            Outcome::Proceed
        );
        let lookup = |n: &str| (n == "If-Match").then(|| "*".to_string());
        assert_eq!(
            http_conditions(&lookup, None, false),
            Outcome::PreconditionFailed
        );
    }
}
