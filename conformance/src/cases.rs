//! The cases. Each works below its own top-level collection and checks
//! what `wit/dav.wit` documents, error variant by error variant.

use std::fmt::Debug;

use crate::{Change, Error, Kind, Property, Store};

type Outcome = std::result::Result<(), String>;
type Case = fn(&dyn Store) -> Outcome;

/// Every case, by name.
pub static CASES: &[(&str, Case)] = &[
    ("create_and_replace", create_and_replace),
    ("missing_parents", missing_parents),
    ("ancestor_is_a_file", ancestor_is_a_file),
    ("kinds_and_missing_paths", kinds_and_missing_paths),
    ("ranges", ranges),
    (
        "readers_keep_the_version_they_opened",
        readers_keep_the_version_they_opened,
    ),
    (
        "uncommitted_writers_change_nothing",
        uncommitted_writers_change_nothing,
    ),
    ("partial_updates", partial_updates),
    ("listings_page", listings_page),
    ("unicode_and_odd_names", unicode_and_odd_names),
    (
        "overlapping_transfers_are_refused",
        overlapping_transfers_are_refused,
    ),
    ("copy_and_rename_rules", copy_and_rename_rules),
    (
        "trees_and_dead_properties_travel",
        trees_and_dead_properties_travel,
    ),
    ("recursive_delete", recursive_delete),
    ("property_patches", property_patches),
];

fn check<T: PartialEq + Debug>(what: &str, got: T, want: T) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn ok<T: Debug>(what: &str, got: crate::Result<T>) -> std::result::Result<T, String> {
    got.map_err(|e| format!("{what}: failed with {e:?}"))
}

fn put(s: &dyn Store, path: &str, content: &[u8]) -> Outcome {
    ok(
        &format!("write {path}"),
        s.write(path, &[content], None, false),
    )
    .map(drop)
}

fn mkcol(s: &dyn Store, path: &str) -> Outcome {
    ok(
        &format!("create-collection {path}"),
        s.create_collection(path),
    )
}

fn content(s: &dyn Store, path: &str) -> std::result::Result<Vec<u8>, String> {
    ok(&format!("read {path}"), s.read(path, 0, None))
}

fn names(s: &dyn Store, path: &str, limit: u32) -> std::result::Result<Vec<String>, String> {
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let (entries, next) = ok(&format!("list {path}"), s.list(path, cursor, limit))?;
        if entries.len() > limit as usize {
            return Err(format!(
                "list {path}: {} entries over the limit {limit}",
                entries.len()
            ));
        }
        all.extend(entries.into_iter().map(|(name, _)| name));
        match next {
            Some(next) => cursor = Some(next),
            None => {
                all.sort();
                return Ok(all);
            }
        }
    }
    Err(format!("list {path}: no end after 1000 pages"))
}

fn prop(name: &str, value: &str) -> Property {
    Property {
        namespace: "urn:conformance".into(),
        name: name.into(),
        value: value.into(),
    }
}

fn create_and_replace(s: &dyn Store) -> Outcome {
    mkcol(s, "/cr")?;
    check(
        "first commit creates",
        s.write("/cr/f", &[b"one"], None, false),
        Ok(true),
    )?;
    let meta = ok("stat", s.stat("/cr/f"))?;
    check("kind", meta.kind, Kind::File)?;
    check("size", meta.size, 3)?;
    check("content", content(s, "/cr/f")?, b"one".to_vec())?;
    check(
        "second commit replaces",
        s.write("/cr/f", &[b"tw", b"o!"], None, false),
        Ok(false),
    )?;
    check("new content", content(s, "/cr/f")?, b"two!".to_vec())?;
    if ok("stat", s.stat("/cr/f"))?.etag == meta.etag {
        return Err("the etag did not change with the content".into());
    }
    check(
        "create-only onto a file",
        s.write("/cr/f", &[b"three"], None, true),
        Err(Error::AlreadyExists),
    )?;
    // Refused at open (is-a-collection) or as create-only (already-exists).
    match s.write("/cr", &[b"x"], None, true) {
        Err(Error::AlreadyExists | Error::IsACollection) => {}
        other => return Err(format!("create-only onto a collection: got {other:?}")),
    }
    check(
        "content after refusals",
        content(s, "/cr/f")?,
        b"two!".to_vec(),
    )?;
    check(
        "create-only of a new file",
        s.write("/cr/g", &[b""], None, true),
        Ok(true),
    )?;
    check("empty file", ok("stat", s.stat("/cr/g"))?.size, 0)?;
    check(
        "collection exists",
        s.create_collection("/cr"),
        Err(Error::AlreadyExists),
    )?;
    check(
        "collection over a file",
        s.create_collection("/cr/f"),
        Err(Error::AlreadyExists),
    )
}

fn missing_parents(s: &dyn Store) -> Outcome {
    check(
        "write",
        s.write("/mp/f", &[b"x"], None, false),
        Err(Error::ParentNotFound),
    )?;
    check(
        "mkcol",
        s.create_collection("/mp/a/b"),
        Err(Error::ParentNotFound),
    )?;
    mkcol(s, "/mp")?;
    check(
        "copy",
        s.copy("/mp", "/nowhere/x", true, true),
        Err(Error::ParentNotFound),
    )?;
    check(
        "rename",
        s.rename("/mp", "/nowhere/x", true),
        Err(Error::ParentNotFound),
    )?;
    check(
        "still there",
        ok("stat", s.stat("/mp"))?.kind,
        Kind::Collection,
    )
}

fn ancestor_is_a_file(s: &dyn Store) -> Outcome {
    mkcol(s, "/af")?;
    put(s, "/af/file", b"x")?;
    check(
        "write below a file",
        s.write("/af/file/g", &[b"y"], None, false),
        Err(Error::NotACollection),
    )?;
    check(
        "mkcol below a file",
        s.create_collection("/af/file/c"),
        Err(Error::NotACollection),
    )?;
    check(
        "list a file",
        s.list("/af/file", None, 10).err(),
        Some(Error::NotACollection),
    )?;
    check("file intact", content(s, "/af/file")?, b"x".to_vec())
}

fn kinds_and_missing_paths(s: &dyn Store) -> Outcome {
    mkcol(s, "/km")?;
    check("stat missing", s.stat("/km/none"), Err(Error::NotFound))?;
    check(
        "read missing",
        s.read("/km/none", 0, None),
        Err(Error::NotFound),
    )?;
    check(
        "list missing",
        s.list("/km/none", None, 10).err(),
        Some(Error::NotFound),
    )?;
    check("delete missing", s.delete("/km/none"), Err(Error::NotFound))?;
    check(
        "copy missing",
        s.copy("/km/none", "/km/x", true, true),
        Err(Error::NotFound),
    )?;
    check(
        "rename missing",
        s.rename("/km/none", "/km/x", true),
        Err(Error::NotFound),
    )?;
    check(
        "read a collection",
        s.read("/km", 0, None),
        Err(Error::IsACollection),
    )?;
    check(
        "write a collection",
        s.write("/km", &[b"x"], None, false),
        Err(Error::IsACollection),
    )?;
    let root = ok("stat /", s.stat("/"))?;
    check("root kind", root.kind, Kind::Collection)?;
    check("collection size", ok("stat", s.stat("/km"))?.size, 0)
}

fn ranges(s: &dyn Store) -> Outcome {
    mkcol(s, "/rg")?;
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    put(s, "/rg/f", &body)?;
    check("whole", content(s, "/rg/f")?, body.clone())?;
    check(
        "middle",
        ok("read", s.read("/rg/f", 1000, Some(70_000)))?,
        body[1000..71_000].to_vec(),
    )?;
    check(
        "to the end",
        ok("read", s.read("/rg/f", 199_990, None))?,
        body[199_990..].to_vec(),
    )?;
    check(
        "length past the end",
        ok("read", s.read("/rg/f", 199_990, Some(100)))?,
        body[199_990..].to_vec(),
    )
}

/// `open-read` tells which version it opened, and its reader never hands
/// out another version's bytes: it reads the opened one, or fails.
fn readers_keep_the_version_they_opened(s: &dyn Store) -> Outcome {
    mkcol(s, "/rv")?;
    put(s, "/rv/f", b"the first version")?;
    let first = ok("stat", s.stat("/rv/f"))?;
    let (opened, part) = ok("read", s.read_with("/rv/f", 4, Some(5), &|| {}))?;
    check("ETag of the opened version", &opened.etag, &first.etag)?;
    check("its whole size, from a range", opened.size, first.size)?;
    check("the range", part, b"first".to_vec())?;
    let replaced = s.read_with("/rv/f", 0, None, &|| {
        s.write("/rv/f", &[b"a second, longer version"], None, false)
            .expect("a replacement while a reader is open");
    });
    match replaced {
        Ok((opened, content)) => {
            check(
                "ETag opened before the replacement",
                &opened.etag,
                &first.etag,
            )?;
            check(
                "content read after it",
                content,
                b"the first version".to_vec(),
            )
        }
        // A store that frees the old version's bytes at once fails the read.
        Err(_) => Ok(()),
    }?;
    let second = ok("stat", s.stat("/rv/f"))?;
    if second.etag == first.etag {
        return Err("a replacement kept the ETag".into());
    }
    let (opened, _) = ok("read", s.read_with("/rv/f", 0, None, &|| {}))?;
    check("ETag of the replacement", opened.etag, second.etag)
}

fn uncommitted_writers_change_nothing(s: &dyn Store) -> Outcome {
    mkcol(s, "/uw")?;
    put(s, "/uw/f", b"old")?;
    ok(
        "abandoned write over a file",
        s.abandon_write("/uw/f", b"new content", None),
    )?;
    check("old content kept", content(s, "/uw/f")?, b"old".to_vec())?;
    ok(
        "abandoned write of a new file",
        s.abandon_write("/uw/g", b"new", None),
    )?;
    check("nothing created", s.stat("/uw/g"), Err(Error::NotFound))?;
    check("listing", names(s, "/uw", 10)?, vec!["f".to_owned()])
}

fn partial_updates(s: &dyn Store) -> Outcome {
    mkcol(s, "/pu")?;
    put(s, "/pu/f", b"hello world")?;
    check(
        "overwrite inside",
        s.write("/pu/f", &[b"there"], Some(6), false),
        Ok(false),
    )?;
    check("content", content(s, "/pu/f")?, b"hello there".to_vec())?;
    check(
        "append at the size",
        s.write("/pu/f", &[b"!"], Some(11), false),
        Ok(false),
    )?;
    check(
        "extend past the end",
        s.write("/pu/f", &[b"e!!"], Some(10), false),
        Ok(false),
    )?;
    check("content", content(s, "/pu/f")?, b"hello there!!".to_vec())?;
    check(
        "offset beyond the size",
        s.write("/pu/f", &[b"x"], Some(100), false).err(),
        Some(Error::Conflict),
    )?;
    check(
        "offset on a missing file",
        s.write("/pu/none", &[b"x"], Some(0), false).err(),
        Some(Error::NotFound),
    )?;
    ok(
        "abandoned partial update",
        s.abandon_write("/pu/f", b"ZZZ", Some(0)),
    )?;
    check("unchanged", content(s, "/pu/f")?, b"hello there!!".to_vec())
}

fn listings_page(s: &dyn Store) -> Outcome {
    mkcol(s, "/lp")?;
    let mut want = Vec::new();
    for i in 0..7 {
        let name = format!("f{i}");
        put(s, &format!("/lp/{name}"), b"x")?;
        want.push(name);
    }
    mkcol(s, "/lp/sub")?;
    want.push("sub".to_owned());
    want.sort();
    check("pages of 3", names(s, "/lp", 3)?, want.clone())?;
    check("pages of 1", names(s, "/lp", 1)?, want.clone())?;
    check("one page", names(s, "/lp", 1000)?, want.clone())?;
    // A member removed after the first page is not listed on a later one
    // (a store may list from the first page's names: see fstree's snapshot).
    let (first, next) = ok("first page of 3", s.list("/lp", None, 3))?;
    ok("delete a later member", s.delete("/lp/f5"))?;
    let mut rest = first.into_iter().map(|(name, _)| name).collect::<Vec<_>>();
    let mut cursor = next;
    while let Some(at) = cursor.take() {
        let (entries, next) = ok("later page of 3", s.list("/lp", Some(at), 3))?;
        rest.extend(entries.into_iter().map(|(name, _)| name));
        cursor = next;
    }
    rest.sort();
    check(
        "removed between pages",
        rest,
        want.into_iter().filter(|n| n != "f5").collect::<Vec<_>>(),
    )?;
    let (entries, _) = ok("list", s.list("/lp", None, 1000))?;
    let sub = entries
        .iter()
        .find(|(n, _)| n == "sub")
        .ok_or("sub not listed")?;
    check("member kind", sub.1.kind, Kind::Collection)?;
    let f0 = entries
        .iter()
        .find(|(n, _)| n == "f0")
        .ok_or("f0 not listed")?;
    check(
        "member metadata equals stat",
        Some(&f0.1),
        ok("stat", s.stat("/lp/f0")).ok().as_ref(),
    )?;
    check(
        "empty collection",
        names(s, "/lp/sub", 10)?,
        Vec::<String>::new(),
    )
}

fn unicode_and_odd_names(s: &dyn Store) -> Outcome {
    mkcol(s, "/un")?;
    let odd = [
        "ünïcödé ✓.txt",
        "a b",
        "100%",
        "#hash?",
        "семь",
        "x'y\"z",
        "&<>",
    ];
    for name in odd {
        put(s, &format!("/un/{name}"), name.as_bytes())?;
    }
    mkcol(s, "/un/日本")?;
    put(s, "/un/日本/ファイル", b"j")?;
    let mut want: Vec<String> = odd.iter().map(|n| n.to_string()).collect();
    want.push("日本".into());
    want.sort();
    check("names listed as written", names(s, "/un", 3)?, want)?;
    for name in odd {
        check(
            name,
            content(s, &format!("/un/{name}"))?,
            name.as_bytes().to_vec(),
        )?;
    }
    ok(
        "rename a unicode tree",
        s.rename("/un/日本", "/un/日本2", false),
    )?;
    check(
        "moved member",
        content(s, "/un/日本2/ファイル")?,
        b"j".to_vec(),
    )
}

fn overlapping_transfers_are_refused(s: &dyn Store) -> Outcome {
    mkcol(s, "/ov")?;
    mkcol(s, "/ov/a")?;
    mkcol(s, "/ov/a/b")?;
    put(s, "/ov/a/b/f", b"keep")?;
    let forbidden = |what: &str, got: crate::Result<crate::MemberErrors>| {
        check(what, got.err(), Some(Error::Forbidden))
    };
    forbidden("copy onto itself", s.copy("/ov/a", "/ov/a", true, true))?;
    forbidden("copy into itself", s.copy("/ov/a", "/ov/a/b/c", true, true))?;
    forbidden(
        "copy onto an ancestor",
        s.copy("/ov/a/b", "/ov/a", true, true),
    )?;
    forbidden("move onto itself", s.rename("/ov/a", "/ov/a", true))?;
    forbidden("move into itself", s.rename("/ov/a", "/ov/a/b/c", true))?;
    forbidden("move onto an ancestor", s.rename("/ov/a/b", "/ov/a", true))?;
    forbidden("move onto the root", s.rename("/ov/a/b", "/", true))?;
    check(
        "nothing changed",
        content(s, "/ov/a/b/f")?,
        b"keep".to_vec(),
    )?;
    check(
        "no stray member",
        names(s, "/ov/a/b", 10)?,
        vec!["f".to_owned()],
    )
}

fn copy_and_rename_rules(s: &dyn Store) -> Outcome {
    mkcol(s, "/cm")?;
    put(s, "/cm/a", b"A")?;
    put(s, "/cm/b", b"B")?;
    check(
        "copy without overwrite",
        s.copy("/cm/a", "/cm/b", true, false),
        Err(Error::AlreadyExists),
    )?;
    check(
        "move without overwrite",
        s.rename("/cm/a", "/cm/b", false),
        Err(Error::AlreadyExists),
    )?;
    check("b kept", content(s, "/cm/b")?, b"B".to_vec())?;
    check(
        "copy with overwrite",
        s.copy("/cm/a", "/cm/b", true, true),
        Ok(vec![]),
    )?;
    check("b replaced", content(s, "/cm/b")?, b"A".to_vec())?;
    check("a kept by the copy", content(s, "/cm/a")?, b"A".to_vec())?;
    check("move", s.rename("/cm/a", "/cm/c", false), Ok(vec![]))?;
    check("a gone", s.stat("/cm/a"), Err(Error::NotFound))?;
    check("c", content(s, "/cm/c")?, b"A".to_vec())?;
    // A collection replaces a file, and a shallow copy takes no members.
    mkcol(s, "/cm/d")?;
    put(s, "/cm/d/m", b"M")?;
    check(
        "shallow copy",
        s.copy("/cm/d", "/cm/e", false, false),
        Ok(vec![]),
    )?;
    check(
        "shallow copy is empty",
        names(s, "/cm/e", 10)?,
        Vec::<String>::new(),
    )?;
    check(
        "collection over a file",
        s.rename("/cm/d", "/cm/c", true),
        Ok(vec![]),
    )?;
    check("moved member", content(s, "/cm/c/m")?, b"M".to_vec())?;
    check(
        "listing",
        names(s, "/cm", 10)?,
        vec!["b".to_owned(), "c".into(), "e".into()],
    )
}

fn trees_and_dead_properties_travel(s: &dyn Store) -> Outcome {
    mkcol(s, "/tp")?;
    mkcol(s, "/tp/t")?;
    mkcol(s, "/tp/t/sub")?;
    put(s, "/tp/t/sub/f", b"deep")?;
    let on_tree = prop("colour", "blue");
    let on_file = prop("size", "<x:big xmlns:x=\"urn:x\"/>");
    ok(
        "patch tree",
        s.patch_properties("/tp/t", vec![Change::Set(on_tree.clone())]),
    )?;
    ok(
        "patch file",
        s.patch_properties("/tp/t/sub/f", vec![Change::Set(on_file.clone())]),
    )?;
    check("copy", s.copy("/tp/t", "/tp/u", true, false), Ok(vec![]))?;
    check("copied file", content(s, "/tp/u/sub/f")?, b"deep".to_vec())?;
    check(
        "copied tree properties",
        s.get_properties("/tp/u"),
        Ok(vec![on_tree.clone()]),
    )?;
    check(
        "copied file properties",
        s.get_properties("/tp/u/sub/f"),
        Ok(vec![on_file.clone()]),
    )?;
    check(
        "source keeps its",
        s.get_properties("/tp/t/sub/f"),
        Ok(vec![on_file.clone()]),
    )?;
    check("move", s.rename("/tp/u", "/tp/v", false), Ok(vec![]))?;
    check(
        "moved tree properties",
        s.get_properties("/tp/v"),
        Ok(vec![on_tree]),
    )?;
    check(
        "moved file properties",
        s.get_properties("/tp/v/sub/f"),
        Ok(vec![on_file]),
    )?;
    check("old place gone", s.stat("/tp/u"), Err(Error::NotFound))?;
    // A resource made again where a moved one was has none of its properties.
    mkcol(s, "/tp/u")?;
    check(
        "new resource, no properties",
        s.get_properties("/tp/u"),
        Ok(vec![]),
    )?;
    ok("delete", s.delete("/tp/v"))?;
    mkcol(s, "/tp/v")?;
    check(
        "after delete, no properties",
        s.get_properties("/tp/v"),
        Ok(vec![]),
    )
}

fn recursive_delete(s: &dyn Store) -> Outcome {
    mkcol(s, "/rd")?;
    mkcol(s, "/rd/t")?;
    mkcol(s, "/rd/t/a")?;
    put(s, "/rd/t/a/f", b"x")?;
    put(s, "/rd/t/g", b"y")?;
    check("delete a tree", s.delete("/rd/t"), Ok(vec![]))?;
    check("tree gone", s.stat("/rd/t"), Err(Error::NotFound))?;
    check("member gone", s.stat("/rd/t/a/f"), Err(Error::NotFound))?;
    check("parent empty", names(s, "/rd", 10)?, Vec::<String>::new())?;
    put(s, "/rd/f", b"z")?;
    check("delete a file", s.delete("/rd/f"), Ok(vec![]))?;
    check("file gone", s.stat("/rd/f"), Err(Error::NotFound))
}

fn property_patches(s: &dyn Store) -> Outcome {
    mkcol(s, "/pp")?;
    put(s, "/pp/f", b"x")?;
    check("none at first", s.get_properties("/pp/f"), Ok(vec![]))?;
    ok(
        "patch",
        s.patch_properties(
            "/pp/f",
            vec![
                Change::Set(prop("a", "1")),
                Change::Set(prop("b", "ünï <i xmlns=\"urn:i\">&amp;</i>")),
                Change::Set(prop("a", "2")),
            ],
        ),
    )?;
    let mut got = ok("get", s.get_properties("/pp/f"))?;
    got.sort_by(|x, y| x.name.cmp(&y.name));
    check(
        "in-order result",
        got,
        vec![
            prop("a", "2"),
            prop("b", "ünï <i xmlns=\"urn:i\">&amp;</i>"),
        ],
    )?;
    ok(
        "remove",
        s.patch_properties(
            "/pp/f",
            vec![Change::Remove {
                namespace: "urn:conformance".into(),
                name: "a".into(),
            }],
        ),
    )?;
    check(
        "after remove",
        s.get_properties("/pp/f"),
        Ok(vec![prop("b", "ünï <i xmlns=\"urn:i\">&amp;</i>")]),
    )?;
    check("content untouched", content(s, "/pp/f")?, b"x".to_vec())?;
    check(
        "patch a missing resource",
        s.patch_properties("/pp/none", vec![Change::Set(prop("a", "1"))]),
        Err(Error::NotFound),
    )
}
