//! Tests of the policy guard: permissions, quota accounting, sizes.

use std::collections::BTreeMap;

use super::*;
use crate::gate::perms::Permission;
use crate::storage::local::LocalBackend;

struct Scratch {
    dir: std::path::PathBuf,
    inner: Arc<dyn Backend>,
}

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("edgedav-guard-{}", uuid::Uuid::new_v4()));
        let inner = Arc::new(LocalBackend::open(&dir).unwrap());
        Self { dir, inner }
    }

    async fn guard(&self, policy: Policy) -> Guarded {
        let usage = if policy.quota.is_limited() {
            Some(Arc::new(Usage::scan(&*self.inner).await.unwrap()))
        } else {
            None
        };
        Guarded::new(self.inner.clone(), Arc::new(policy), usage)
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".edgedav-upload-"))
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn options(expected: Option<u64>) -> WriteOptions {
    WriteOptions {
        expected_size: expected,
        content_type: None,
        offset: None,
        create_only: false,
    }
}

async fn put(b: &dyn Backend, path: &str, len: usize) -> Result<Metadata> {
    let mut w = b.open_write(path, options(None)).await?;
    w.write(vec![b'x'; len].into()).await?;
    Ok(w.commit().await?.metadata)
}

fn policy(quota: Quota, max_upload: Option<u64>) -> Policy {
    Policy {
        perms: Arc::new(Permissions::all()),
        quota,
        max_upload,
    }
}

#[tokio::test]
async fn quota_is_enforced_before_and_while_streaming() {
    let s = Scratch::new();
    let g = s
        .guard(policy(
            Quota {
                max_bytes: Some(100),
                max_files: Some(3),
            },
            Some(80),
        ))
        .await;
    put(&g, "/a", 60).await.unwrap();
    assert!(matches!(
        g.open_write("/b", options(Some(90))).await,
        Err(Error::TooLarge)
    ));
    assert!(matches!(
        g.open_write("/b", options(Some(50))).await,
        Err(Error::NoSpace)
    ));
    // Streaming past the quota fails; nothing is published.
    let mut w = g.open_write("/b", options(None)).await.unwrap();
    w.write(vec![1; 30].into()).await.unwrap();
    assert!(matches!(
        w.write(vec![1; 20].into()).await,
        Err(Error::NoSpace)
    ));
    drop(w);
    assert!(matches!(s.inner.stat("/b").await, Err(Error::NotFound)));
    assert!(s.leftovers().is_empty());
    // The reservation was given back.
    put(&g, "/b", 40).await.unwrap();
    let space = g.space_usage("/").await.unwrap();
    assert_eq!((space.used, space.available), (Some(100), Some(0)));
    // Replacing counts only the growth; deleting frees.
    assert!(put(&g, "/a", 61).await.is_err());
    put(&g, "/a", 10).await.unwrap();
    assert_eq!(g.space_usage("/").await.unwrap().used, Some(50));
    g.delete("/b").await.unwrap();
    assert_eq!(g.space_usage("/").await.unwrap().used, Some(10));
    // Files.
    put(&g, "/c", 1).await.unwrap();
    put(&g, "/d", 1).await.unwrap();
    assert!(matches!(put(&g, "/e", 1).await, Err(Error::NoSpace)));
    assert!(matches!(
        g.copy("/c", "/f", true, false).await,
        Err(Error::NoSpace)
    ));
}

#[tokio::test]
async fn partial_updates_count_only_their_growth() {
    let s = Scratch::new();
    let g = s
        .guard(policy(
            Quota {
                max_bytes: Some(100),
                max_files: None,
            },
            Some(90),
        ))
        .await;
    put(&g, "/f", 50).await.unwrap();
    let at = |offset| WriteOptions {
        offset: Some(offset),
        ..options(None)
    };
    // Rewriting inside the file needs no quota.
    let mut w = g.open_write("/f", at(10)).await.unwrap();
    w.write(vec![b'y'; 40].into()).await.unwrap();
    assert_eq!(w.commit().await.unwrap().metadata.size, 50);
    assert_eq!(g.space_usage("/").await.unwrap().used, Some(50));
    // Appending grows it, up to the upload limit.
    let mut w = g.open_write("/f", at(50)).await.unwrap();
    w.write(vec![b'z'; 30].into()).await.unwrap();
    assert!(matches!(
        w.write(vec![b'z'; 11].into()).await,
        Err(Error::TooLarge)
    ));
    drop(w);
    let mut w = g.open_write("/f", at(50)).await.unwrap();
    w.write(vec![b'z'; 30].into()).await.unwrap();
    assert_eq!(w.commit().await.unwrap().metadata.size, 80);
    assert_eq!(g.space_usage("/").await.unwrap().used, Some(80));
}

#[tokio::test]
async fn permissions_map_to_forbidden() {
    let s = Scratch::new();
    s.inner.create_collection("/ro").await.unwrap();
    put(&*s.inner, "/ro/f", 3).await.unwrap();
    let mut table = BTreeMap::new();
    table.insert("/".to_owned(), vec![Permission::All]);
    table.insert(
        "/ro".to_owned(),
        vec![Permission::List, Permission::Download],
    );
    let g = s
        .guard(Policy {
            perms: Arc::new(Permissions::new(&table, false)),
            quota: Quota::default(),
            max_upload: None,
        })
        .await;
    assert!(g.open_read("/ro/f", 0, None).await.is_ok());
    assert!(g.list_members("/ro", None, 10).await.is_ok());
    for result in [
        g.open_write("/ro/f", options(None)).await.err(),
        g.open_write("/ro/g", options(None)).await.err(),
        g.create_collection("/ro/d").await.err(),
        g.delete("/ro/f").await.err(),
        g.delete("/ro").await.err(),
        g.rename("/ro/f", "/f", false).await.err(),
    ] {
        assert!(matches!(result, Some(Error::Forbidden(_))), "{result:?}");
    }
    g.copy("/ro/f", "/copy", true, false).await.unwrap();
    assert!(matches!(DenyAll.stat("/").await, Err(Error::Forbidden(_))));
}
