//! XML in and out: a small namespace-resolved tree for request bodies, a
//! serializer that turns a subtree back into a self-contained fragment (for
//! dead property values and lock owners), and a writer for responses.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::escape::{escape, partial_escape, unescape};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

pub const DAV: &str = "DAV:";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub namespace: String,
    pub name: String,
    /// (namespace, local name, value); namespace declarations are not kept.
    pub attributes: Vec<(String, String, String)>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }

    pub fn is_dav(&self, name: &str) -> bool {
        self.is(DAV, name)
    }

    /// Child elements, skipping text.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn child_dav(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is_dav(name))
    }

    /// Concatenated text content of the direct children.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// The element's content as a self-contained fragment: every element
    /// declares the namespace it is in, so the fragment means the same
    /// wherever it is pasted.
    ///
    /// Iterative, with an explicit stack: a tree built by hand may be deeper
    /// than [`MAX_DEPTH`], and recursion could then exhaust the guest's stack.
    pub fn inner_fragment(&self) -> String {
        let mut out = String::new();
        // The children still to write at each open level, and the element
        // they belong to (`None` for `self`, whose tags are not written).
        let mut open: Vec<(std::slice::Iter<'_, Node>, Option<&Element>)> =
            vec![(self.children.iter(), None)];
        while let Some((children, parent)) = open.last_mut() {
            let parent = *parent;
            match children.next() {
                Some(Node::Text(t)) => out.push_str(&partial_escape(t.as_str())),
                Some(Node::Element(e)) => {
                    write_start(e, parent.map(|p| p.namespace.as_str()), &mut out);
                    if e.children.is_empty() {
                        out.push_str("/>");
                    } else {
                        out.push('>');
                        open.push((e.children.iter(), Some(e)));
                    }
                }
                None => {
                    if let Some(e) = parent {
                        out.push_str("</");
                        out.push_str(&e.name);
                        out.push('>');
                    }
                    open.pop();
                }
            }
        }
        out
    }
}

/// `<name xmlns="…" attributes`, declaring the namespace unless the parent
/// is in the same one; the caller closes the tag.
fn write_start(e: &Element, parent_ns: Option<&str>, out: &mut String) {
    out.push('<');
    out.push_str(&e.name);
    if parent_ns != Some(e.namespace.as_str()) {
        out.push_str(" xmlns=\"");
        out.push_str(&escape(e.namespace.as_str()));
        out.push('"');
    }
    for (i, (ns, name, value)) in e.attributes.iter().enumerate() {
        out.push(' ');
        if ns == XML_NS {
            out.push_str("xml:");
        } else if !ns.is_empty() {
            out.push_str(&format!("xmlns:a{i}=\"{}\" a{i}:", escape(ns.as_str())));
        }
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(&escape(value.as_str()));
        out.push('"');
    }
}

/// The deepest element nesting [`parse`] accepts (the root is level 1).
/// WebDAV bodies need a handful of levels and property values a few more;
/// an unbounded tree would let a small body exhaust the stack of whatever
/// walks it (its destructor included).
pub const MAX_DEPTH: usize = 64;

/// Parses a document into its root element, resolving namespaces.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(input).map_err(|_| XmlError("body is not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    let err = |e: &dyn std::fmt::Display| XmlError(e.to_string());
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(|e| err(&e))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err(XmlError("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!(
                        "elements nested deeper than {MAX_DEPTH} levels (at byte {})",
                        reader.buffer_position()
                    )));
                }
                let namespace = namespace_of(resolved)?;
                let name = local_name(start.local_name().as_ref())?;
                let mut attributes = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| err(&e))?;
                    let key = attr.key;
                    let value = content(attr.unescape_value().map_err(|e| err(&e))?)?;
                    if let Some(prefix) = key.as_namespace_binding() {
                        if matches!(prefix, quick_xml::name::PrefixDeclaration::Named(_))
                            && value.is_empty()
                        {
                            return Err(XmlError(
                                "a namespace prefix cannot be bound to an empty URI".into(),
                            ));
                        }
                        continue;
                    }
                    let (res, local) = reader.resolve_attribute(key);
                    let ns = namespace_of(res)?;
                    let local = local_name(local.as_ref())?;
                    attributes.push((ns, local, value));
                }
                let element = Element {
                    namespace,
                    name,
                    attributes,
                    children: Vec::new(),
                };
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                attach(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                let text = content(t.unescape().map_err(|e| err(&e))?)?;
                push_text(&mut stack, &root, text)?;
            }
            Event::CData(c) => {
                let text = content(std::str::from_utf8(&c).map_err(|e| err(&e))?.into())?;
                push_text(&mut stack, &root, text)?;
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(XmlError("DTDs are not accepted".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError("unexpected end of document".into()));
    }
    root.ok_or_else(|| XmlError("no root element".into()))
}

/// The namespace name an element or attribute is in. The reader hands over
/// the `xmlns` attribute value as written, so its references are resolved
/// here: `urn:a&amp;b` names `urn:a&b`.
fn namespace_of(resolved: ResolveResult<'_>) -> Result<String, XmlError> {
    let err = |e: &dyn std::fmt::Display| XmlError(e.to_string());
    match resolved {
        // The namespace of nearly every element a client sends, as written.
        ResolveResult::Bound(ns) if ns.as_ref() == DAV.as_bytes() => Ok(DAV.to_owned()),
        ResolveResult::Bound(ns) => {
            let raw = std::str::from_utf8(ns.as_ref()).map_err(|e| err(&e))?;
            content(unescape(raw).map_err(|e| err(&e))?)
        }
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(XmlError(format!(
            "undeclared namespace prefix '{}'",
            String::from_utf8_lossy(&prefix)
        ))),
    }
}

/// The reader takes any bytes up to a delimiter as a name; kept unchecked, a
/// name with `:` or `<` in it would be written back (as a dead property's
/// name, say) as different or broken markup.
fn local_name(raw: &[u8]) -> Result<String, XmlError> {
    // ASCII names (nearly all) are checked byte by byte.
    let ascii_start = |b: &u8| b.is_ascii_alphabetic() || *b == b'_';
    if raw.first().is_some_and(ascii_start)
        && raw
            .iter()
            .all(|b| ascii_start(b) || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
    {
        return Ok(String::from_utf8_lossy(raw).into_owned());
    }
    let name = std::str::from_utf8(raw).map_err(|e| XmlError(e.to_string()))?;
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(is_name_start)
        && chars.all(|c| {
            is_name_start(c)
                || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
        });
    if valid {
        Ok(name.to_owned())
    } else {
        let shown: String = name.chars().take(40).collect();
        let more = if shown.len() < name.len() { "…" } else { "" };
        Err(XmlError(format!("{shown:?}{more} is not an XML name")))
    }
}

/// `NameStartChar` of XML 1.0 (fifth edition) §2.3, without `:`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 `Char` (§2.2): everything but NUL and the other C0 controls
/// except tab and line breaks, and U+FFFE/U+FFFF.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text, attribute values and namespace names, refused when they hold a
/// character that is not [`is_xml_char`], written literally or as a
/// reference: it would be stored and later make a client's parser reject a
/// whole PROPFIND response.
fn content(text: Cow<'_, str>) -> Result<String, XmlError> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(XmlError(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        ))),
        None => Ok(text.into_owned()),
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None => *root = Some(element),
    }
}

fn push_text(stack: &mut [Element], root: &Option<Element>, text: String) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(Node::Text(text));
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None if root.is_none() => Err(XmlError("text before the root element".into())),
        None => Err(XmlError("text after the root element".into())),
    }
}

/// Writes response XML with the DAV: namespace bound to `D`.
pub struct XmlWriter {
    out: Vec<u8>,
    declared: bool,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    pub fn new() -> Self {
        // Room for a small document (a lock, a resource's properties) from
        // the start: grown from the declaration's 39 bytes, one of 500
        // bytes was copied four times on the way.
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        Self {
            out,
            declared: false,
        }
    }

    /// A writer for part of a document whose root already declared `D`.
    pub fn fragment() -> Self {
        Self {
            out: Vec::new(),
            declared: true,
        }
    }

    /// Makes room for `additional` more bytes of output.
    pub fn reserve(&mut self, additional: usize) {
        self.out.reserve(additional);
    }

    #[inline(always)]
    fn tag_dav(&mut self, name: &str) {
        self.out.extend_from_slice(b"<D:");
        self.out.extend_from_slice(name.as_bytes());
        if !self.declared {
            self.out.extend_from_slice(b" xmlns:D=\"DAV:\"");
            self.declared = true;
        }
    }

    #[inline(always)]
    pub fn open_dav(&mut self, name: &str) {
        self.tag_dav(name);
        self.out.push(b'>');
    }

    #[inline(always)]
    pub fn close_dav(&mut self, name: &str) {
        self.out.extend_from_slice(b"</D:");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    #[inline(always)]
    pub fn empty_dav(&mut self, name: &str) {
        self.tag_dav(name);
        self.out.extend_from_slice(b"/>");
    }

    #[inline(always)]
    pub fn text_element_dav(&mut self, name: &str, text: &str) {
        self.open_dav(name);
        self.text(text);
        self.close_dav(name);
    }

    pub fn text(&mut self, text: &str) {
        // Quotes need no escaping in text: `<D:getetag>"x"</D:getetag>` reads
        // better, and some clients compare ETags without unescaping.
        // `<`, `>` and `&` only, as quick-xml's `partial_escape`, but with
        // no intermediate string: PROPFIND writes a few texts per member.
        let bytes = text.as_bytes();
        let mut start = 0;
        while let Some(i) = next_markup(bytes, start) {
            let entity: &[u8] = match bytes[i] {
                b'<' => b"&lt;",
                b'>' => b"&gt;",
                _ => b"&amp;",
            };
            self.out.extend_from_slice(&bytes[start..i]);
            self.out.extend_from_slice(entity);
            start = i + 1;
        }
        self.out.extend_from_slice(&bytes[start..]);
    }

    /// Inserts an already well-formed, self-contained fragment.
    #[inline(always)]
    pub fn raw(&mut self, fragment: &str) {
        self.out.extend_from_slice(fragment.as_bytes());
    }

    /// A property element by name, with `content` as its (raw) content, or
    /// empty when `content` is `None`.
    pub fn property(&mut self, namespace: &str, name: &str, content: Option<&str>) {
        match content {
            Some(c) => {
                self.open_property(namespace, name);
                self.raw(c);
                self.close_property(namespace, name);
            }
            None if namespace == DAV => self.empty_dav(name),
            None => {
                self.property_tag(namespace, name);
                self.out.extend_from_slice(b"/>");
            }
        }
    }

    /// Opens a property element, for content written next.
    #[inline(always)]
    fn open_property(&mut self, namespace: &str, name: &str) {
        if namespace == DAV {
            self.open_dav(name);
        } else {
            self.property_tag(namespace, name);
            self.out.push(b'>');
        }
    }

    /// Closes what [`Self::open_property`] opened.
    #[inline(always)]
    fn close_property(&mut self, namespace: &str, name: &str) {
        if namespace == DAV {
            self.close_dav(name);
        } else {
            self.out.extend_from_slice(b"</");
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'>');
        }
    }

    /// `<name xmlns="namespace"`, unterminated (a property outside DAV:).
    fn property_tag(&mut self, namespace: &str, name: &str) {
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b" xmlns=\"");
        self.out.extend_from_slice(escape(namespace).as_bytes());
        self.out.push(b'"');
    }

    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Turns the start tag that ends the output (`<D:x>`) into an empty
    /// element (`<D:x/>`).
    pub fn end_empty(&mut self) {
        debug_assert_eq!(self.out.last(), Some(&b'>'));
        self.out.pop();
        self.out.extend_from_slice(b"/>");
    }

    /// Writes bytes as is, without escaping: dates and other text that
    /// cannot contain markup.
    #[inline(always)]
    pub fn raw_bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes a number in decimal, without the fmt machinery (a PROPFIND
    /// writes a few per member).
    pub fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&digits[start..]);
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Takes what was written so far, leaving the writer empty (for streaming).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// The position of the first `<`, `>` or `&` at or after `from`. Looks at
/// eight bytes at a time (most texts have none of them): a byte of `word`
/// equals `b` iff that byte of `word ^ b×8` is zero, which the classic
/// has-zero-byte test finds without a branch per byte.
fn next_markup(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut i = from;
    while i + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("eight bytes"));
        let hits = has_zero(word ^ (ONES * u64::from(b'<')))
            | has_zero(word ^ (ONES * u64::from(b'>')))
            | has_zero(word ^ (ONES * u64::from(b'&')));
        if hits != 0 {
            break;
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|b| matches!(b, b'<' | b'>' | b'&'))
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_markup_but_not_quotes() {
        let long = "0123456789abcdef<0123456789abcdef>0123&";
        let texts = [
            "",
            "plain",
            "a<b>&c",
            "<<&&>>",
            "\"etag\"",
            "ünï<cödé>",
            long,
        ];
        // Every position of every special byte, around the 8-byte steps.
        let mut shifted = Vec::new();
        for special in ['<', '>', '&'] {
            for at in 0..20 {
                let mut t = "x".repeat(20);
                t.replace_range(at..=at, &special.to_string());
                shifted.push(t);
            }
        }
        for text in texts
            .iter()
            .copied()
            .chain(shifted.iter().map(String::as_str))
        {
            let mut w = XmlWriter::fragment();
            w.text(text);
            assert_eq!(w.finish(), partial_escape(text).as_bytes(), "{text}");
        }
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut w = XmlWriter::fragment();
        for n in [0, 7, 10, 4096, u64::MAX] {
            w.number(n);
            w.raw(" ");
        }
        assert_eq!(w.finish(), b"0 7 10 4096 18446744073709551615 ");
    }

    #[test]
    fn resolves_namespaces() {
        let root = parse(br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><x:a xmlns:x="urn:x"/><b xmlns=""/></D:prop></D:propfind>"#).unwrap();
        assert!(root.is_dav("propfind"));
        let prop = root.child_dav("prop").unwrap();
        let names: Vec<_> = prop
            .elements()
            .map(|e| (e.namespace.as_str(), e.name.as_str()))
            .collect();
        assert_eq!(names, [("urn:x", "a"), ("", "b")]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"not xml",
            b"<x:a/>",
            b"<a xmlns:bar=\"\"><bar:foo/></a>",
            b"<a/><b/>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            // Names and characters XML does not allow; the first was found
            // by fuzzing (a local name with ':' and '<' in it).
            b"<D:a\0b:c</D:d/>",
            b"<a xmlns:D=\"DAV:\"><D:x:y/></a>",
            b"<a><1b/></a>",
            b"<a k\x01=\"1\"/>",
            b"<a>\0</a>",
            b"<a>&#1;</a>",
            b"<a k=\"&#xFFFF;\"/>",
            b"<a><![CDATA[\x08]]></a>",
            b"<a xmlns=\"urn:\x02\"/>",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn fragments_are_self_contained() {
        let root =
            parse(br#"<p xmlns:t="urn:t"><t:a xml:lang="en" t:k="v">x &amp; y<b/></t:a>tail</p>"#)
                .unwrap();
        let fragment = root.inner_fragment();
        assert_eq!(
            fragment,
            r#"<a xmlns="urn:t" xml:lang="en" xmlns:a1="urn:t" a1:k="v">x &amp; y<b xmlns=""/></a>tail"#
        );
        // Re-parsing the fragment inside another element keeps its meaning.
        let again = parse(format!("<w xmlns=\"urn:other\">{fragment}</w>").as_bytes()).unwrap();
        let a = again.elements().next().unwrap();
        assert!(a.is("urn:t", "a"));
        assert!(a.elements().next().unwrap().is("", "b"));
    }

    #[test]
    fn namespace_names_are_unescaped() {
        // Found by fuzzing: the name was kept escaped, so writing it out
        // escaped it twice and the fragment changed namespace.
        let root =
            parse(br#"<p><v xmlns="urn:a&amp;b&#x3C;"><w xmlns:x="urn:&lt;" x:k="1"/></v></p>"#)
                .unwrap();
        let v = root.elements().next().unwrap();
        assert_eq!(v.namespace, "urn:a&b<");
        assert_eq!(v.elements().next().unwrap().attributes[0].0, "urn:<");
        let fragment = root.inner_fragment();
        let again = parse(format!("<w>{fragment}</w>").as_bytes()).unwrap();
        assert_eq!(again.children, root.children);
        assert!(parse(br#"<v xmlns="urn:&nope;"/>"#).is_err());
    }

    #[test]
    fn refuses_deep_nesting_early() {
        for levels in [MAX_DEPTH + 1, 2_000, 100_000] {
            let doc = format!("{}{}", "<a>".repeat(levels), "</a>".repeat(levels));
            let XmlError(message) = parse(doc.as_bytes()).unwrap_err();
            // The error comes at the first element too deep, not at the end
            // of the input after building the whole tree.
            let at = format!("at byte {}", 3 * (MAX_DEPTH + 1));
            assert!(message.contains("nested deeper than 64"), "{message}");
            assert!(message.ends_with(&format!("{at})")), "{message}");
        }
        let doc = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(doc.as_bytes()).is_ok());
        let doc = format!("<r>{}</r>", "<a/>".repeat(100_000));
        assert_eq!(parse(doc.as_bytes()).unwrap().children.len(), 100_000);
    }

    #[test]
    fn writes_any_depth_without_recursion() {
        // Built by hand: parse would refuse it.
        let levels = 100_000;
        let mut tree = Element {
            namespace: "urn:x".into(),
            name: "leaf".into(),
            attributes: Vec::new(),
            children: vec![Node::Text("t".into())],
        };
        for _ in 0..levels {
            tree = Element {
                namespace: "urn:x".into(),
                name: "n".into(),
                attributes: Vec::new(),
                children: vec![Node::Element(tree)],
            };
        }
        let fragment = tree.inner_fragment();
        assert!(fragment.starts_with("<n xmlns=\"urn:x\"><n><n>"));
        assert!(fragment.contains("<leaf>t</leaf></n></n>"));
        assert_eq!(fragment.matches("</n>").count(), levels - 1);
        // Take the tree apart level by level: the derived destructor recurses.
        let mut rest = tree;
        while let Some(Node::Element(child)) = rest.children.pop() {
            rest = child;
        }
    }

    #[test]
    fn writer_declares_dav_once() {
        let mut w = XmlWriter::new();
        w.open_dav("multistatus");
        w.property("urn:x", "p", Some("<v xmlns=\"\"/>"));
        w.property(DAV, "getetag", None);
        w.close_dav("multistatus");
        let s = String::from_utf8(w.finish()).unwrap();
        assert!(s.ends_with(r#"<D:multistatus xmlns:D="DAV:"><p xmlns="urn:x"><v xmlns=""/></p><D:getetag/></D:multistatus>"#));
    }
}
