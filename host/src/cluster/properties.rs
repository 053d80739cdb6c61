//! Dead properties of S3 homes in a cluster's database.
//!
//! A [`PropertiesInDatabase`] layer sits between a request's guard and an S3
//! home, one per request. Properties live in `edgedav_properties`, a row per
//! resource keyed by store and path and indexed by parent collection:
//!
//! * **A listing page costs one query** for the properties of all its
//!   members, kept for the rest of the request, so a Depth-1 `allprop`
//!   PROPFIND reads no property object from S3 for them.
//! * **Written here, read from S3 until then:** a resource whose properties
//!   are still in a sidecar object from before cluster mode keeps them (the
//!   S3 backend still lists and reads those); its first PROPPATCH moves the
//!   merged set into the database and removes the object.
//! * **Trees:** COPY, MOVE and DELETE change S3 first, then the rows of the
//!   subtree (members that failed keep theirs).
//! * **Crashes** between the two steps leave rows only for resources that
//!   no longer exist (a deleted or moved source): they are not shown, since
//!   a missing resource answers 404 before its properties are asked for,
//!   and creating a resource at a path (PUT, MKCOL, a COPY or MOVE
//!   destination) clears any rows left there once it is created; a listing
//!   of their collection that fits one page removes them. A crash in the
//!   middle of a COPY or MOVE can leave the destination without the
//!   source's properties (the request was never acknowledged).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::tokio_postgres;
use edgedav_rules::path::{name_of, parent_of};

use super::{Cluster, below};
use crate::runtime::bindings::edgedav::dav::storage::PropertyName;
use crate::storage::{
    Backend, Committed, Error, FileWriter, MemberError, Metadata, Opened, Page, Property,
    PropertyChange, Result, Space, WriteOptions, Writer, props,
};

/// One request's view of a home whose properties are in the database.
pub struct PropertiesInDatabase {
    inner: Arc<dyn Backend>,
    cluster: Arc<Cluster>,
    /// The home's store (`s3:BUCKET`), with the home's prefix.
    store: String,
    /// Properties of listed members, read with their page.
    listed: Mutex<HashMap<String, Vec<Property>>>,
}

impl PropertiesInDatabase {
    pub fn new(inner: Arc<dyn Backend>, cluster: Arc<Cluster>, store: String) -> Self {
        Self {
            inner,
            cluster,
            store,
            listed: Mutex::default(),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.cluster.storage_client().await
    }

    fn failed(&self, e: tokio_postgres::Error) -> Error {
        self.cluster.storage_error("dead properties", e)
    }

    fn forget(&self) {
        self.listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The stored properties of `path` in the database, if it has a row.
    async fn row(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        path: &str,
        lock: bool,
    ) -> Result<Option<Vec<Property>>, Failure> {
        let sql = if lock {
            "SELECT props FROM edgedav_properties WHERE store = $1 AND path = $2 FOR UPDATE"
        } else {
            "SELECT props FROM edgedav_properties WHERE store = $1 AND path = $2"
        };
        let row = client.query_opt(sql, &[&self.store, &path]).await?;
        Ok(row.map(|row| decode(path, row.get(0))).transpose()?)
    }

    /// The stored properties of `path` in the database, if it has a row,
    /// read again while the database undoes the read.
    async fn read_row(
        &self,
        client: &deadpool_postgres::Object,
        path: &str,
    ) -> Result<Option<Vec<Property>>> {
        self.settled(retried!(self.row(client, path, false)))
    }

    /// An attempt's outcome as this layer's result.
    fn settled<T>(&self, outcome: Result<T, Failure>) -> Result<T> {
        match outcome {
            Ok(done) => Ok(done),
            Err(Failure::Database(e)) => Err(self.failed(e)),
            Err(Failure::Store(e)) => Err(e),
        }
    }

    /// Removes the rows of `path` and, with `subtree`, of everything below
    /// it, except `keep` (members a tree operation could not remove).
    async fn clear(&self, path: &str, subtree: bool, keep: &[String]) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM edgedav_properties WHERE store = $1 \
                 AND (path = $2 OR ($3 AND left(path, length($4)) = $4)) \
                 AND NOT (path = ANY($5))",
                &[&self.store, &path, &subtree, &below(path), &keep],
            )
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Copies (or moves) the rows of `from` and, with `subtree`, of
    /// everything below it to the same places below `to`.
    async fn carry(&self, from: &str, to: &str, subtree: bool, moving: bool) -> Result<()> {
        let mut client = self.client().await?;
        self.settled(retried!(self.carry_once(
            &mut client,
            from,
            to,
            subtree,
            moving
        )))
    }

    async fn carry_once(
        &self,
        client: &mut deadpool_postgres::Object,
        from: &str,
        to: &str,
        subtree: bool,
        moving: bool,
    ) -> Result<(), Failure> {
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT path, props FROM edgedav_properties WHERE store = $1 \
                 AND (path = $2 OR ($3 AND left(path, length($4)) = $4))",
                &[&self.store, &from, &subtree, &below(from)],
            )
            .await?;
        for row in rows {
            let path: String = row.get(0);
            let props: String = row.get(1);
            let moved = edgedav_rules::path::rebase(&path, from, to);
            tx.execute(
                "INSERT INTO edgedav_properties (store, path, parent, props) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (store, path) DO UPDATE SET props = EXCLUDED.props",
                &[&self.store, &moved, &parent(&moved), &props],
            )
            .await?;
            if moving {
                tx.execute(
                    "DELETE FROM edgedav_properties WHERE store = $1 AND path = $2",
                    &[&self.store, &path],
                )
                .await?;
            }
        }
        Ok(tx.commit().await?)
    }

    /// One attempt at a PROPPATCH's transaction: `in_s3` is the base when
    /// the resource has no row yet.
    async fn patch_once(
        &self,
        client: &mut deadpool_postgres::Object,
        path: &str,
        changes: &[PropertyChange],
        in_s3: &[Property],
    ) -> Result<(), Failure> {
        let tx = client.transaction().await?;
        let mut properties = match self.row(&tx, path, true).await? {
            Some(props) => props,
            None => in_s3.to_vec(),
        };
        props::apply(&mut properties, changes.to_vec());
        let json = String::from_utf8(props::encode(path, properties)).expect("JSON is UTF-8");
        tx.execute(
            "INSERT INTO edgedav_properties (store, path, parent, props) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (store, path) DO UPDATE SET props = EXCLUDED.props",
            &[&self.store, &path, &parent(path), &json],
        )
        .await?;
        Ok(tx.commit().await?)
    }
}

/// Why an attempt at a transaction failed: the database (which may ask
/// for it to run again) or the store.
enum Failure {
    Database(tokio_postgres::Error),
    Store(Error),
}

impl super::Undone for Failure {
    fn undone(&self) -> bool {
        matches!(self, Failure::Database(e) if e.undone())
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Database(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

#[async_trait]
impl Backend for PropertiesInDatabase {
    async fn stat(&self, path: &str) -> Result<Metadata> {
        self.inner.stat(path).await
    }

    /// The page, with one query for the properties of all its members. A
    /// listing that fits one page also tells which rows under the
    /// collection belong to resources that are gone (left by a crash
    /// between an S3 step and its database step): they are removed.
    async fn list_members(&self, path: &str, cursor: Option<String>, limit: u32) -> Result<Page> {
        let whole = cursor.is_none();
        let mut page = self.inner.list_members(path, cursor, limit).await?;
        let whole = whole && page.next.is_none();
        let client = self.client().await?;
        let rows = if whole {
            client
                .query(
                    "SELECT path, props FROM edgedav_properties WHERE store = $1 AND parent = $2",
                    &[&self.store, &path],
                )
                .await
        } else {
            let paths: Vec<String> = (page.entries.iter())
                .map(|e| edgedav_rules::path::child_path(path, &e.name))
                .collect();
            client
                .query(
                    "SELECT path, props FROM edgedav_properties \
                     WHERE store = $1 AND parent = $2 AND path = ANY($3)",
                    &[&self.store, &path, &paths],
                )
                .await
        }
        .map_err(|e| self.failed(e))?;
        let index: HashMap<String, usize> = (page.entries.iter().enumerate())
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        let mut orphans = Vec::new();
        {
            let mut listed = self.listed.lock().unwrap_or_else(|p| p.into_inner());
            for row in rows {
                let member: String = row.get(0);
                let Some(&i) = index.get(name_of(&member)) else {
                    orphans.push(member);
                    continue;
                };
                let props = decode(&member, row.get(1))?;
                page.entries[i].has_properties = !props.is_empty();
                listed.insert(member, props);
            }
        }
        // Their subtrees too: a collection that is gone took its members.
        for orphan in orphans {
            self.clear(&orphan, true, &[]).await?;
        }
        Ok(page)
    }

    async fn open_read(&self, path: &str, offset: u64, length: Option<u64>) -> Result<Opened> {
        self.inner.open_read(path, offset, length).await
    }

    async fn open_write(&self, path: &str, options: WriteOptions) -> Result<Writer> {
        let inner = self.inner.open_write(path, options).await?;
        Ok(Box::new(ClearsOnCreate {
            inner,
            layer: PropertiesInDatabase::new(
                self.inner.clone(),
                self.cluster.clone(),
                self.store.clone(),
            ),
            path: path.to_owned(),
        }))
    }

    async fn create_collection(&self, path: &str) -> Result<()> {
        self.inner.create_collection(path).await?;
        self.clear(path, true, &[]).await
    }

    async fn delete(&self, path: &str) -> Result<Vec<MemberError>> {
        self.forget();
        let errors = self.inner.delete(path).await?;
        self.clear(path, true, &kept(&errors)).await?;
        Ok(errors)
    }

    async fn copy(
        &self,
        source: &str,
        destination: &str,
        recursive: bool,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        self.forget();
        let errors = (self.inner)
            .copy(source, destination, recursive, overwrite)
            .await?;
        self.clear(destination, true, &kept(&errors)).await?;
        self.carry(source, destination, recursive, false).await?;
        Ok(errors)
    }

    async fn rename(
        &self,
        source: &str,
        destination: &str,
        overwrite: bool,
    ) -> Result<Vec<MemberError>> {
        self.forget();
        let errors = self.inner.rename(source, destination, overwrite).await?;
        self.clear(destination, true, &kept(&errors)).await?;
        self.carry(source, destination, true, true).await?;
        Ok(errors)
    }

    async fn get_properties(&self, path: &str) -> Result<Vec<Property>> {
        if let Some(props) = (self.listed.lock().unwrap_or_else(|p| p.into_inner())).get(path) {
            return Ok(props.clone());
        }
        let client = self.client().await?;
        match self.read_row(&client, path).await? {
            Some(props) => Ok(props),
            // Not moved into the database yet: still in S3, if anywhere.
            None => self.inner.get_properties(path).await,
        }
    }

    async fn patch_properties(&self, path: &str, changes: Vec<PropertyChange>) -> Result<()> {
        self.inner.stat(path).await?;
        self.forget();
        let mut client = self.client().await?;
        // What is still in S3, read before the transaction (it is no
        // database work to repeat).
        let in_s3 = match self.read_row(&client, path).await? {
            Some(_) => Vec::new(),
            None => self.inner.get_properties(path).await?,
        };
        self.settled(retried!(self.patch_once(
            &mut client,
            path,
            &changes,
            &in_s3
        )))?;
        if !in_s3.is_empty() {
            // The set now lives in the database: the object goes.
            let removals = (in_s3.into_iter())
                .map(|p| {
                    PropertyChange::Remove(PropertyName {
                        namespace: p.namespace,
                        name: p.name,
                    })
                })
                .collect();
            self.inner.patch_properties(path, removals).await?;
        }
        Ok(())
    }

    async fn space_usage(&self, path: &str) -> Result<Space> {
        self.inner.space_usage(path).await
    }
}

/// An upload that, when its commit creates the file, clears properties
/// left at that path by a resource that no longer exists.
struct ClearsOnCreate {
    inner: Writer,
    layer: PropertiesInDatabase,
    path: String,
}

#[async_trait]
impl FileWriter for ClearsOnCreate {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.inner.write(data).await
    }

    async fn commit(self: Box<Self>) -> Result<Committed> {
        let ClearsOnCreate { inner, layer, path } = *self;
        let committed = inner.commit().await?;
        if committed.created
            && let Err(e) = layer.clear(&path, false, &[]).await
        {
            tracing::warn!(path, error = ?e, "stale dead properties not cleared");
        }
        Ok(committed)
    }
}

/// Paths a tree operation could not remove, and their ancestors: their
/// properties stay.
fn kept(errors: &[MemberError]) -> Vec<String> {
    let mut keep = Vec::new();
    for error in errors {
        let mut at = Some(error.path.as_str());
        while let Some(path) = at {
            keep.push(path.to_owned());
            at = parent_of(path);
        }
    }
    keep
}

fn parent(path: &str) -> String {
    parent_of(path).unwrap_or("").to_owned()
}

fn decode(path: &str, json: String) -> Result<Vec<Property>> {
    props::decode(json.as_bytes())
        .map_err(|e| Error::Io(format!("corrupt properties of {path} in the database: {e}")))
}
