//! Request-body XML: the tree stays within the depth limit, and the
//! fragment written for a dead property or lock owner parses back, pasted
//! into any other element, to the same content.
#![no_main]

use edgedav_handler::xml::{MAX_DEPTH, Node, XmlWriter, is_xml_char, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && text.chars().all(is_xml_char)
    {
        // Whatever text a response carries, it stays well-formed.
        let mut w = XmlWriter::new();
        w.text_element_dav("href", text);
        let written = w.finish();
        let back = parse(&written).expect("written XML parses");
        assert_eq!(back.text(), text);
    }
    let Ok(root) = parse(data) else {
        return;
    };
    assert!(depth(&root.children) < MAX_DEPTH);
    let fragment = root.inner_fragment();
    let pasted = format!("<w xmlns=\"urn:elsewhere\">{fragment}</w>");
    let again = parse(pasted.as_bytes())
        .unwrap_or_else(|e| panic!("fragment {fragment:?} does not parse: {e:?}"));
    assert_eq!(
        normalised(&again.children),
        normalised(&root.children),
        "{fragment:?}"
    );
});

/// Levels of elements below the root.
fn depth(children: &[Node]) -> usize {
    children
        .iter()
        .map(|n| match n {
            Node::Element(e) => 1 + depth(&e.children),
            Node::Text(_) => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Adjacent text (text next to CDATA, say) written out reads back as one.
fn normalised(children: &[Node]) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    for child in children {
        match child {
            Node::Text(t) if t.is_empty() => {}
            Node::Text(t) => match out.last_mut() {
                Some(Node::Text(prev)) => prev.push_str(t),
                _ => out.push(Node::Text(t.clone())),
            },
            Node::Element(e) => {
                let mut e = e.clone();
                e.children = normalised(&e.children);
                out.push(Node::Element(e));
            }
        }
    }
    out
}
