//! `edgedav-spin-testhost`: a test-only stand-in for Spin's HTTP trigger.
//!
//! Spin itself cannot be built here, so the Spin composition
//! (`target/edge/edgedav-spin.wasm`) is exercised with this small host: it
//! serves a `wasi:http/incoming-handler@0.2.x` component the way Spin does
//! (a fresh instance per request, WASI 0.2, outgoing HTTP refused) and
//! provides `spin:sqlite/sqlite@3.0.0` as Spin's local SQLite does: every
//! `open` gets its own rusqlite connection (default busy timeout) to one
//! database file; only the label `default` is allowed, as with
//! `sqlite_databases = ["default"]` in spin.toml.
//!
//! ```text
//! edgedav-spin-testhost COMPONENT.wasm DATABASE.sqlite [127.0.0.1:PORT]
//! edgedav-spin-testhost --query DATABASE.sqlite SQL
//! edgedav-spin-testhost --conformance ADAPTER.wasm DIR
//! ```
//! The first prints `edgedav-spin-testhost listening on http://ADDR` on
//! stdout; the second prints the first column of each row of a query (for
//! tests that inspect the adapter's tables); the third runs the storage
//! conformance suite against a storage adapter component (see
//! `conformance.rs`), which needs the same WASI and `spin:sqlite` imports.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

mod conformance;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "testhost",
        with: { "spin:sqlite/sqlite.connection": super::SqliteConnection },
    });
}

use bindings::spin::sqlite::sqlite::{self as sql, QueryResult, RowResult, Value};

/// One `spin:sqlite` connection.
pub struct SqliteConnection(rusqlite::Connection);

struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutgoing,
    table: ResourceTable,
    database: Arc<PathBuf>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

struct DenyOutgoing;

type OutgoingIo = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

impl WasiHttpHooks for DenyOutgoing {
    fn send_request(
        &mut self,
        _request: hyper::http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _io: OutgoingIo,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(hyper::http::Response<WasiBody>, OutgoingIo)>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

fn io_error(e: impl std::fmt::Display) -> sql::Error {
    sql::Error::Io(e.to_string())
}

impl sql::Host for State {}

impl sql::HostConnection for State {
    fn open(&mut self, database: String) -> Result<Resource<SqliteConnection>, sql::Error> {
        if database != "default" {
            return Err(sql::Error::AccessDenied);
        }
        let connection = rusqlite::Connection::open(&*self.database).map_err(io_error)?;
        self.table
            .push(SqliteConnection(connection))
            .map_err(io_error)
    }

    fn execute(
        &mut self,
        connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> Result<QueryResult, sql::Error> {
        let conn = &self
            .table
            .get(&connection)
            .map_err(|_| sql::Error::InvalidConnection)?
            .0;
        let mut statement = conn.prepare_cached(&statement).map_err(io_error)?;
        let columns: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let parameters = parameters.into_iter().map(|v| match v {
            Value::Integer(i) => rusqlite::types::Value::Integer(i),
            Value::Real(r) => rusqlite::types::Value::Real(r),
            Value::Text(t) => rusqlite::types::Value::Text(t),
            Value::Blob(b) => rusqlite::types::Value::Blob(b),
            Value::Null => rusqlite::types::Value::Null,
        });
        let count = columns.len();
        let rows = statement
            .query_map(rusqlite::params_from_iter(parameters), |row| {
                let mut values = Vec::with_capacity(count);
                for i in 0..count {
                    values.push(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(i) => Value::Integer(i),
                        rusqlite::types::ValueRef::Real(r) => Value::Real(r),
                        rusqlite::types::ValueRef::Text(t) => {
                            Value::Text(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    });
                }
                Ok(RowResult { values })
            })
            .map_err(io_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_error)?;
        Ok(QueryResult { columns, rows })
    }

    fn last_insert_rowid(&mut self, connection: Resource<SqliteConnection>) -> i64 {
        self.table
            .get(&connection)
            .map_or(0, |c| c.0.last_insert_rowid())
    }

    fn changes(&mut self, connection: Resource<SqliteConnection>) -> u64 {
        self.table.get(&connection).map_or(0, |c| c.0.changes())
    }

    fn drop(&mut self, connection: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

fn failure(status: StatusCode, text: String) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

async fn handle(
    pre: ProxyPre<State>,
    database: Arc<PathBuf>,
    request: Request<Incoming>,
) -> Response<HyperOutgoingBody> {
    let state = State {
        wasi: WasiCtx::builder().inherit_stderr().build(),
        http: WasiHttpCtx::new(),
        hooks: DenyOutgoing,
        table: ResourceTable::new(),
        database,
    };
    let mut store = Store::new(pre.engine(), state);
    let (sender, receiver) = oneshot::channel();
    let prepared = (|| -> wasmtime::Result<_> {
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let response = store.data_mut().http().new_response_outparam(sender)?;
        Ok((request, response))
    })();
    let (request, response) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("{e:?}\n")),
    };
    // The guest streams the body after setting the response: own task.
    let guest = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, response)
            .await
    });
    match receiver.await {
        Ok(Ok(response)) => {
            tokio::spawn(async move {
                if let Ok(Err(e)) = guest.await {
                    eprintln!("edgedav-spin-testhost: guest failed while streaming: {e:?}");
                }
            });
            response
        }
        Ok(Err(code)) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("guest error {code:?}\n"),
        ),
        Err(_) => {
            let why = match guest.await {
                Ok(Err(e)) => format!("{e:?}"),
                other => format!("no response ({other:?})"),
            };
            eprintln!("edgedav-spin-testhost: guest failed: {why}");
            failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error\n".into(),
            )
        }
    }
}

/// `--query DATABASE SQL`: prints the first column of each row.
fn query(database: &str, sql: &str) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(database)?;
    let mut statement = conn.prepare(sql)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let value: rusqlite::types::Value = row.get(0)?;
        match value {
            rusqlite::types::Value::Integer(i) => println!("{i}"),
            rusqlite::types::Value::Real(r) => println!("{r}"),
            rusqlite::types::Value::Text(t) => println!("{t}"),
            rusqlite::types::Value::Blob(b) => println!("<{} bytes>", b.len()),
            rusqlite::types::Value::Null => println!("NULL"),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> wasmtime::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, database, sql] = args.as_slice()
        && flag == "--query"
    {
        if let Err(e) = query(database, sql) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    if let [flag, adapter, dir] = args.as_slice()
        && flag == "--conformance"
    {
        let (adapter, dir) = (PathBuf::from(adapter), PathBuf::from(dir));
        let failures = tokio::task::block_in_place(|| conformance::run(&adapter, &dir))?;
        for failure in &failures {
            println!("FAILED {failure}");
        }
        println!("{} failed cases", failures.len());
        std::process::exit(i32::from(!failures.is_empty()));
    }
    let mut args = args.into_iter();
    let (Some(component), Some(database)) = (args.next(), args.next()) else {
        eprintln!("usage: edgedav-spin-testhost COMPONENT.wasm DATABASE.sqlite [127.0.0.1:PORT]");
        std::process::exit(2);
    };
    let address: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:0").parse()?;

    let engine = Engine::new(&Config::new())?;
    let component = Component::from_file(&engine, &component)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::Testhost::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
    let database = Arc::new(PathBuf::from(database));

    let listener = tokio::net::TcpListener::bind(address).await?;
    println!(
        "edgedav-spin-testhost listening on http://{}",
        listener.local_addr()?
    );
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let (pre, database) = (pre.clone(), database.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let (pre, database) = (pre.clone(), database.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(pre, database, request).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
