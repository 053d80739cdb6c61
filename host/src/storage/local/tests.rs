//! Unit tests of the local store beyond the conformance suite.

use super::metadata::etag;
use std::time::SystemTime;

use super::*;
use crate::runtime::bindings::edgedav::dav::storage::PropertyName;
use crate::storage::{NodeKind, name_too_long};

/// ETags are what clients cache: the hand-written hex must match the
/// `{:x}` form earlier versions answered.
#[test]
fn etags_keep_their_form() {
    for (ino, size, mtime) in [
        (0, 0, 0),
        (0x9ee0b2, 4096, 1_796_000_000_123_456_789),
        (u64::MAX, u64::MAX, i128::from(i64::MAX) * 1_000_000_000),
        (1, 2, -1_500_000_000),
    ] {
        assert_eq!(
            etag(ino, size, mtime),
            format!("{ino:x}-{size:x}-{mtime:x}")
        );
    }
}

/// A scratch store under the system temp directory, removed on drop.
struct Scratch {
    dir: PathBuf,
    backend: LocalBackend,
}

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("edgedav-test-{}", uuid::Uuid::new_v4()));
        let backend = LocalBackend::open(&dir.join("root")).unwrap();
        Self { dir, backend }
    }

    /// A store that stages every upload under a name, as on a filesystem
    /// without anonymous files.
    fn named() -> Self {
        let mut s = Self::new();
        Arc::get_mut(&mut s.backend.0).unwrap().anonymous = false;
        s
    }

    /// Both ways of staging a whole upload.
    fn both() -> [Self; 2] {
        [Self::new(), Self::named()]
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Every name in the store but the store's own directories, and every
    /// file staged in its staging directory.
    fn names(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let p = entry.unwrap().path();
                let name = p.strip_prefix(root).unwrap().display().to_string();
                let own = matches!(
                    name.as_str(),
                    ".edgedav" | ".edgedav/props" | ".edgedav/uploads"
                );
                if p.is_dir() && name != ".edgedav/props" {
                    walk(&p, root, out);
                }
                if !own {
                    out.push(name);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root(), &self.root(), &mut out);
        out.sort();
        out
    }

    async fn put(&self, path: &str, content: &[u8]) -> Metadata {
        let mut writer = self.backend.open_write(path, no_options()).await.unwrap();
        writer.write(content.to_vec().into()).await.unwrap();
        writer.commit().await.unwrap().metadata
    }

    async fn get(&self, path: &str) -> Vec<u8> {
        let (mut reader, _) = self.backend.open_read(path, 0, None).await.unwrap();
        let mut content = Vec::new();
        loop {
            let chunk = reader.read(3).await.unwrap();
            if chunk.is_empty() {
                return content;
            }
            content.extend(chunk);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn no_options() -> WriteOptions {
    WriteOptions {
        expected_size: None,
        content_type: None,
        offset: None,
        create_only: false,
    }
}

fn prop(name: &str, value: &str) -> Property {
    Property {
        namespace: "urn:test".into(),
        name: name.into(),
        value: value.into(),
    }
}

fn names(page: &Page) -> Vec<&str> {
    page.entries.iter().map(|e| e.name.as_str()).collect()
}

#[tokio::test]
async fn dot_dot_and_reserved_names_are_refused() {
    let s = Scratch::new();
    for path in [
        "/../etc/passwd",
        "/a/../../x",
        "/.edgedav/props",
        "/.edgedav-upload-x",
        "relative",
        "/a\0b",
    ] {
        assert!(
            matches!(s.backend.stat(path).await, Err(Error::Forbidden(_))),
            "{path}"
        );
    }
}

#[tokio::test]
async fn symlinks_out_of_the_root_are_refused() {
    let s = Scratch::new();
    let outside = s.dir.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, s.root().join("escape")).unwrap();
    std::os::unix::fs::symlink(s.root().join(".edgedav"), s.root().join("internal")).unwrap();
    for path in [
        "/escape",
        "/escape/secret",
        "/escape/new",
        "/internal/props",
    ] {
        assert!(
            matches!(s.backend.stat(path).await, Err(Error::Forbidden(_))),
            "{path}"
        );
    }
    assert!(matches!(
        s.backend.open_write("/escape/new", no_options()).await,
        Err(Error::Forbidden(_))
    ));
    for path in ["/escape/secret", "/internal/props"] {
        assert!(
            matches!(
                s.backend.open_read(path, 0, None).await,
                Err(Error::Forbidden(_))
            ),
            "{path}"
        );
    }
    // Neither link is listed, nor listed through.
    let page = s.backend.list_members("/", None, 10).await.unwrap();
    assert!(page.entries.is_empty());
    for path in ["/escape", "/internal/props"] {
        assert!(
            matches!(
                s.backend.list_members(path, None, 10).await,
                Err(Error::Forbidden(_))
            ),
            "{path}"
        );
    }
}

/// Lookups take one `openat2` that refuses symlinks, and the general path
/// when they meet one: links that stay inside the store still work.
#[tokio::test]
async fn symlinks_inside_the_root_are_followed() {
    let s = Scratch::new();
    s.put("/f.txt", b"content").await;
    fs::create_dir(s.root().join("d")).unwrap();
    std::os::unix::fs::symlink(s.root().join("f.txt"), s.root().join("link.txt")).unwrap();
    std::os::unix::fs::symlink(s.root().join("d"), s.root().join("dir")).unwrap();
    assert_eq!(s.backend.stat("/link.txt").await.unwrap().size, 7);
    assert_eq!(s.get("/link.txt").await, b"content");
    s.put("/dir/g.txt", b"through").await;
    assert_eq!(s.get("/d/g.txt").await, b"through");
    assert_eq!(s.get("/dir/g.txt").await, b"through");
    assert!(matches!(
        s.backend.stat("/dir/none").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        s.backend.stat("/f.txt/x").await,
        Err(Error::NotACollection)
    ));
    // Listed through the link (the general path), and without one (the
    // single `openat2`) with the same answers.
    for dir in ["/dir", "/d"] {
        let page = s.backend.list_members(dir, None, 10).await.unwrap();
        let names: Vec<_> = page.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["g.txt"], "{dir}");
    }
    for (path, file) in [("/link.txt", true), ("/f.txt", true), ("/none", false)] {
        let listed = s.backend.list_members(path, None, 10).await;
        assert!(
            match file {
                true => matches!(listed, Err(Error::NotACollection)),
                false => matches!(listed, Err(Error::NotFound)),
            },
            "{path}"
        );
    }
}

#[tokio::test]
async fn writes_publish_only_on_commit() {
    let s = Scratch::new();
    let first = s.put("/f.txt", b"old content").await;
    assert_eq!(first.size, 11);

    let mut writer = s.backend.open_write("/f.txt", no_options()).await.unwrap();
    writer.write(b"new".to_vec().into()).await.unwrap();
    drop(writer);
    assert_eq!(s.get("/f.txt").await, b"old content");
    let leftovers: Vec<_> = fs::read_dir(s.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only f.txt and .edgedav remain: {leftovers:?}"
    );

    let second = s.put("/f.txt", b"new").await;
    assert_eq!(s.get("/f.txt").await, b"new");
    assert_ne!(first.etag, second.etag);
}

#[tokio::test]
async fn partial_updates_apply_in_place_on_commit() {
    let s = Scratch::new();
    s.put("/f", b"hello world").await;
    let at = |offset| WriteOptions {
        offset: Some(offset),
        ..no_options()
    };
    let mut writer = s.backend.open_write("/f", at(6)).await.unwrap();
    writer.write(b"there!".to_vec().into()).await.unwrap();
    drop(writer);
    assert_eq!(
        s.get("/f").await,
        b"hello world",
        "an aborted piece changes nothing"
    );
    let mut writer = s.backend.open_write("/f", at(6)).await.unwrap();
    writer.write(b"there!".to_vec().into()).await.unwrap();
    assert_eq!(writer.commit().await.unwrap().metadata.size, 12);
    assert_eq!(s.get("/f").await, b"hello there!");
    assert!(matches!(
        s.backend.open_write("/f", at(13)).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        s.backend.open_write("/nope", at(0)).await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn write_errors() {
    let s = Scratch::new();
    s.put("/file", b"x").await;
    s.backend.create_collection("/dir").await.unwrap();
    let open = |path: &'static str| s.backend.open_write(path, no_options());
    assert!(matches!(
        open("/missing/f").await,
        Err(Error::ParentNotFound)
    ));
    assert!(matches!(open("/file/f").await, Err(Error::NotACollection)));
    assert!(matches!(open("/dir").await, Err(Error::IsACollection)));
    assert!(matches!(
        s.backend.create_collection("/dir").await,
        Err(Error::AlreadyExists)
    ));
    assert!(matches!(
        s.backend.create_collection("/a/b").await,
        Err(Error::ParentNotFound)
    ));
}

#[tokio::test]
async fn ranges_and_listing_pages() {
    let s = Scratch::new();
    s.put("/b", b"0123456789").await;
    let (mut reader, _) = s.backend.open_read("/b", 2, Some(5)).await.unwrap();
    assert_eq!(reader.read(100).await.unwrap(), b"23456");
    assert!(reader.read(100).await.unwrap().is_empty());

    s.put("/a", b"").await;
    s.backend.create_collection("/c").await.unwrap();
    let first = s.backend.list_members("/", None, 2).await.unwrap();
    assert_eq!(names(&first), ["a", "b"]);
    let second = s.backend.list_members("/", first.next, 2).await.unwrap();
    assert_eq!(names(&second), ["c"]);
    assert_eq!(second.next, None);
    assert!(matches!(
        second.entries[0].metadata.kind,
        NodeKind::Collection
    ));
    assert!(matches!(
        s.backend.list_members("/a", None, 2).await,
        Err(Error::NotACollection)
    ));
}

/// More names than one read of the directory holds (see
/// `LISTING_BUFFER`), and one that is not UTF-8: every other name is
/// listed once, in order, across pages.
#[tokio::test]
async fn long_listings_are_read_whole() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new();
    let dir = s.root().join("many");
    fs::create_dir_all(&dir).unwrap();
    let mut expected: Vec<String> = (0..2500)
        .map(|i| format!("{i:04}-{}", "x".repeat(40)))
        .collect();
    for name in &expected {
        fs::write(dir.join(name), b"").unwrap();
    }
    fs::write(dir.join(std::ffi::OsStr::from_bytes(b"not-utf8-\xff")), b"").unwrap();
    expected.sort();
    assert_eq!(listed_from(&s.backend, "/many", None).await, expected);
}

/// The names listed from `cursor` on, page after page of 1,000.
async fn listed_from(backend: &LocalBackend, path: &str, cursor: Option<String>) -> Vec<String> {
    let mut listed = Vec::new();
    let mut cursor = cursor;
    loop {
        let page = backend.list_members(path, cursor, 1000).await.unwrap();
        listed.extend(page.entries.iter().map(|e| e.name.clone()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return listed,
        }
    }
}

/// The later pages of a big listing come from the names its first page
/// read (see fstree's `snapshot`): a member removed since is skipped, one
/// created since is not listed. A cursor whose names are no longer kept
/// goes on from its last name, reading the directory again.
#[tokio::test]
async fn later_pages_list_the_first_pages_names() {
    let s = Scratch::new();
    let dir = s.root().join("big");
    fs::create_dir_all(&dir).unwrap();
    let names: Vec<String> = (0..2500).map(|i| format!("f{i:04}")).collect();
    for name in &names {
        fs::write(dir.join(name), b"").unwrap();
    }
    let first = s.backend.list_members("/big", None, 1000).await.unwrap();
    let after_first = first.next.clone();
    fs::remove_file(dir.join("f2000")).unwrap();
    fs::write(dir.join("g-new"), b"").unwrap();
    let rest = listed_from(&s.backend, "/big", after_first.clone()).await;
    let expected: Vec<&String> = names[1000..].iter().filter(|n| *n != "f2000").collect();
    assert_eq!(rest.iter().collect::<Vec<_>>(), expected);
    // That listing ended and its names were dropped: the same cursor now
    // reads the directory as it is.
    let again = listed_from(&s.backend, "/big", after_first).await;
    assert_eq!(again.len(), 1500);
    assert_eq!(again.last().map(String::as_str), Some("g-new"));
}

#[tokio::test]
async fn listing_says_which_members_have_dead_properties() {
    let s = Scratch::new();
    s.backend.create_collection("/d").await.unwrap();
    s.backend.create_collection("/d/c").await.unwrap();
    s.put("/d/a", b"").await;
    s.put("/d/b", b"").await;
    for path in ["/d/b", "/d/c"] {
        s.backend
            .patch_properties(path, vec![PropertyChange::Set(prop("p", "v"))])
            .await
            .unwrap();
    }
    let flags = |page: Page| -> Vec<(String, bool)> {
        page.entries
            .into_iter()
            .map(|e| (e.name, e.has_properties))
            .collect()
    };
    let page = s.backend.list_members("/d", None, 10).await.unwrap();
    assert_eq!(
        flags(page),
        [("a".into(), false), ("b".into(), true), ("c".into(), true)]
    );
    let page = s.backend.list_members("/", None, 10).await.unwrap();
    assert_eq!(flags(page), [("d".into(), false)]);

    // Removing the last property removes the sidecar, and the promise.
    let name = PropertyName {
        namespace: "urn:test".into(),
        name: "p".into(),
    };
    s.backend
        .patch_properties("/d/b", vec![PropertyChange::Remove(name)])
        .await
        .unwrap();
    let page = s.backend.list_members("/d", None, 10).await.unwrap();
    assert!(!page.entries[1].has_properties);
}

#[tokio::test]
async fn copy_and_rename_carry_dead_properties() {
    let s = Scratch::new();
    s.backend.create_collection("/src").await.unwrap();
    s.put("/src/f", b"data").await;
    s.backend
        .patch_properties("/src", vec![PropertyChange::Set(prop("dir", "d"))])
        .await
        .unwrap();
    s.backend
        .patch_properties("/src/f", vec![PropertyChange::Set(prop("file", "f"))])
        .await
        .unwrap();

    assert!(
        s.backend
            .copy("/src", "/copy", true, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.get("/copy/f").await, b"data");
    assert_eq!(
        s.backend.get_properties("/copy").await.unwrap(),
        [prop("dir", "d")]
    );
    assert_eq!(
        s.backend.get_properties("/copy/f").await.unwrap(),
        [prop("file", "f")]
    );
    assert!(matches!(
        s.backend.copy("/src", "/copy", true, false).await,
        Err(Error::AlreadyExists)
    ));

    assert!(
        s.backend
            .rename("/src", "/moved", false)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(s.backend.stat("/src").await, Err(Error::NotFound)));
    assert_eq!(
        s.backend.get_properties("/moved/f").await.unwrap(),
        [prop("file", "f")]
    );

    // A new resource at the old path does not inherit anything.
    s.backend.create_collection("/src").await.unwrap();
    assert!(s.backend.get_properties("/src").await.unwrap().is_empty());

    // Overwriting replaces the destination, properties included.
    s.put("/other", b"other").await;
    s.backend
        .patch_properties("/other", vec![PropertyChange::Set(prop("x", "y"))])
        .await
        .unwrap();
    assert!(
        s.backend
            .rename("/moved/f", "/other", true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.get("/other").await, b"data");
    assert_eq!(
        s.backend.get_properties("/other").await.unwrap(),
        [prop("file", "f")]
    );
}

#[tokio::test]
async fn shallow_copy_and_recursive_delete() {
    let s = Scratch::new();
    s.backend.create_collection("/d").await.unwrap();
    s.backend.create_collection("/d/e").await.unwrap();
    s.put("/d/e/f", b"f").await;
    s.backend
        .patch_properties("/d/e/f", vec![PropertyChange::Set(prop("p", "v"))])
        .await
        .unwrap();

    s.backend
        .copy("/d", "/shallow", false, false)
        .await
        .unwrap();
    assert!(
        s.backend
            .list_members("/shallow", None, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );

    assert!(s.backend.delete("/d").await.unwrap().is_empty());
    assert!(matches!(s.backend.stat("/d").await, Err(Error::NotFound)));
    assert!(matches!(s.backend.delete("/d").await, Err(Error::NotFound)));
    assert!(matches!(
        s.backend.delete("/").await,
        Err(Error::Forbidden(_))
    ));
    // The member's properties went with it.
    assert_eq!(
        fs::read_dir(s.root().join(".edgedav/props"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn patches_apply_in_order() {
    let s = Scratch::new();
    s.put("/f", b"").await;
    let remove = |name: &str| {
        PropertyChange::Remove(PropertyName {
            namespace: "urn:test".into(),
            name: name.into(),
        })
    };
    let changes = vec![
        PropertyChange::Set(prop("a", "1")),
        PropertyChange::Set(prop("b", "2")),
        PropertyChange::Set(prop("a", "3")),
        remove("b"),
    ];
    s.backend.patch_properties("/f", changes).await.unwrap();
    assert_eq!(
        s.backend.get_properties("/f").await.unwrap(),
        [prop("a", "3")]
    );
    assert!(matches!(
        s.backend.get_properties("/nope").await,
        Err(Error::NotFound)
    ));
    let space = s.backend.space_usage("/").await.unwrap();
    assert!(space.available.is_some());
}

fn create_only() -> WriteOptions {
    WriteOptions {
        create_only: true,
        ..no_options()
    }
}

#[tokio::test]
async fn commits_report_created_or_replaced() {
    let s = Scratch::new();
    let mut w = s.backend.open_write("/f", no_options()).await.unwrap();
    w.write(b"one".to_vec().into()).await.unwrap();
    assert!(w.commit().await.unwrap().created);
    let mut w = s.backend.open_write("/f", no_options()).await.unwrap();
    w.write(b"two".to_vec().into()).await.unwrap();
    assert!(!w.commit().await.unwrap().created);
    assert_eq!(s.get("/f").await, b"two");
}

#[tokio::test]
async fn create_only_never_replaces() {
    for s in Scratch::both() {
        s.put("/f", b"kept").await;
        s.backend.create_collection("/d").await.unwrap();
        for path in ["/f", "/d"] {
            assert!(matches!(
                s.backend.open_write(path, create_only()).await,
                Err(Error::AlreadyExists)
            ));
        }
        // The path was free when the writer opened, taken when it commits.
        let mut w = s.backend.open_write("/new", create_only()).await.unwrap();
        w.write(b"late".to_vec().into()).await.unwrap();
        s.put("/new", b"first").await;
        assert!(matches!(w.commit().await, Err(Error::AlreadyExists)));
        assert_eq!(s.get("/new").await, b"first");
        assert_eq!(s.names(), ["d", "f", "new"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_have_exactly_one_winner() {
    for s in Scratch::both() {
        for (path, options) in [("/only", create_only()), ("/any", no_options())] {
            let mut writers = Vec::new();
            for i in 0..16u8 {
                let mut w = s.backend.open_write(path, options.clone()).await.unwrap();
                w.write(vec![i; 1000].into()).await.unwrap();
                writers.push(w);
            }
            let commits = writers.into_iter().map(|w| tokio::spawn(w.commit()));
            let mut created = 0;
            for commit in commits {
                match commit.await.unwrap() {
                    Ok(c) => created += usize::from(c.created),
                    Err(Error::AlreadyExists) if options.create_only => {}
                    Err(e) => panic!("{path}: {e:?}"),
                }
            }
            assert_eq!(created, 1, "{path}");
            assert_eq!(s.get(path).await.len(), 1000);
        }
        assert_eq!(s.names(), ["any", "only"]);
    }
}

/// Where the filesystem has them (ext4, xfs, btrfs, tmpfs: the tests' temp
/// directory), a whole upload is an anonymous file until its commit, with
/// no name anywhere; elsewhere it is staged in the staging directory. Both
/// leave nothing once published or dropped, and create or replace
/// atomically.
#[tokio::test]
async fn whole_uploads_leave_nothing_staged() {
    let [anonymous, named] = Scratch::both();
    assert!(
        anonymous.backend.0.anonymous,
        "O_TMPFILE works in {}",
        anonymous.dir.display()
    );
    for s in [anonymous, named] {
        s.put("/old", b"old content").await;
        let mut replacing = s.backend.open_write("/old", no_options()).await.unwrap();
        let mut creating = s.backend.open_write("/new", no_options()).await.unwrap();
        let mut dropped = s.backend.open_write("/gone", no_options()).await.unwrap();
        for w in [&mut replacing, &mut creating, &mut dropped] {
            w.write(b"new content".to_vec().into()).await.unwrap();
        }
        let staged: Vec<_> = s.names().into_iter().filter(|n| n != "old").collect();
        if s.backend.0.anonymous {
            assert!(staged.is_empty(), "nothing staged has a name: {staged:?}");
        } else {
            assert_eq!(staged.len(), 3, "{staged:?}");
            assert!(staged.iter().all(|n| n.starts_with(".edgedav/uploads/")));
        }
        drop(dropped);
        assert!(!replacing.commit().await.unwrap().created);
        assert!(creating.commit().await.unwrap().created);
        assert_eq!(s.get("/old").await, b"new content");
        assert_eq!(s.get("/new").await, b"new content");
        assert_eq!(s.names(), ["new", "old"]);
    }
}

#[tokio::test]
async fn overlapping_copies_and_moves_change_nothing() {
    let s = Scratch::new();
    s.backend.create_collection("/a").await.unwrap();
    s.backend.create_collection("/a/b").await.unwrap();
    s.put("/a/b/f", b"data").await;
    for (from, to) in [("/a", "/a/b"), ("/a/b", "/a"), ("/a", "/a"), ("/a/b", "/")] {
        for overwrite in [true, false] {
            assert!(
                matches!(
                    s.backend.copy(from, to, true, overwrite).await,
                    Err(Error::Forbidden(_))
                ),
                "copy {from} {to}"
            );
            assert!(
                matches!(
                    s.backend.rename(from, to, overwrite).await,
                    Err(Error::Forbidden(_))
                ),
                "rename {from} {to}"
            );
        }
    }
    assert_eq!(s.get("/a/b/f").await, b"data");
}

#[tokio::test]
async fn start_up_sweeps_only_abandoned_uploads() {
    let s = Scratch::new();
    let uploads = s.root().join(".edgedav/uploads");
    let stale = uploads.join("crashed");
    fs::write(&stale, b"left by kill -9").unwrap();
    let old = SystemTime::now() - staging::MIN_AGE * 2;
    File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // A live writer, its file just as old (a partial update: whole uploads
    // are anonymous here, with no file to sweep).
    s.put("/f", b"dead").await;
    let partial = WriteOptions {
        offset: Some(0),
        ..no_options()
    };
    let mut live = s.backend.open_write("/f", partial).await.unwrap();
    live.write(b"live".to_vec().into()).await.unwrap();
    let live_file = fs::read_dir(&uploads)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| *p != stale)
        .unwrap();
    File::options()
        .write(true)
        .open(&live_file)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let _reopened = LocalBackend::open(&s.root()).unwrap();
    assert!(!stale.exists(), "an abandoned upload is swept");
    assert!(live_file.exists(), "a live writer's upload is kept");
    assert!(!live.commit().await.unwrap().created);
    assert_eq!(s.get("/f").await, b"live");
}

#[tokio::test]
async fn partial_updates_replace_the_file_whole() {
    let s = Scratch::new();
    s.put("/f", b"hello world").await;
    let mut before = File::open(s.root().join("f")).unwrap();
    let mut writer = s
        .backend
        .open_write(
            "/f",
            WriteOptions {
                offset: Some(6),
                ..no_options()
            },
        )
        .await
        .unwrap();
    writer.write(b"there".to_vec().into()).await.unwrap();
    let committed = writer.commit().await.unwrap();
    assert!(!committed.created);
    assert_eq!(s.get("/f").await, b"hello there");
    // The old file was never written to: the piece went to a copy that
    // replaced it, so a crash could not have left a mix.
    let mut old = String::new();
    io::Read::read_to_string(&mut before, &mut old).unwrap();
    assert_eq!(old, "hello world");
    assert_eq!(
        fs::read_dir(s.root().join(".edgedav/uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn names_too_long_are_not_found_or_conflicts() {
    let s = Scratch::new();
    let long = format!("/{}", "n".repeat(300));
    assert!(matches!(s.backend.stat(&long).await, Err(Error::NotFound)));
    assert!(matches!(
        s.backend.open_read(&long, 0, None).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        s.backend.get_properties(&long).await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        s.backend.open_write(&long, no_options()).await.err(),
        Some(name_too_long())
    );
    assert_eq!(
        s.backend.create_collection(&long).await.err(),
        Some(name_too_long())
    );
}

#[test]
fn server_conditions_are_unavailable() {
    use rustix::io::Errno;
    for errno in [Errno::MFILE, Errno::NFILE, Errno::ROFS] {
        let e = io::Error::from_raw_os_error(errno.raw_os_error());
        assert!(matches!(Error::from(e), Error::Unavailable(_)), "{errno:?}");
    }
    let denied = io::Error::from_raw_os_error(Errno::ACCESS.raw_os_error());
    assert!(matches!(Error::from(denied), Error::Forbidden(_)));
}

#[tokio::test]
async fn properties_survive_the_internal_directory_going_away() {
    let s = Scratch::new();
    s.put("/f", b"").await;
    fs::remove_dir_all(s.root().join(".edgedav")).unwrap();
    s.backend
        .patch_properties("/f", vec![PropertyChange::Set(prop("a", "1"))])
        .await
        .unwrap();
    assert_eq!(
        s.backend.get_properties("/f").await.unwrap(),
        [prop("a", "1")]
    );
    s.put("/g", b"uploads work again too").await;
}
