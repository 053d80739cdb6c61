//! The host's per-request gate, in front of the component: client address,
//! defender ban, rate limit, authentication, a place in the instance queue,
//! then the component instance bound to the authenticated user's storage,
//! with counted, throttled and policed bodies and an access log line.
//!
//! Every `503` that leaves here carries `Retry-After`.
//!
//! Nothing here knows WebDAV: it looks at the `Authorization` and
//! `X-Forwarded-For` headers and the method only to let `OPTIONS` through
//! without credentials (the component answers it; its storage then refuses
//! everything).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tracing::{debug, warn};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::app::App;
use crate::cluster::bans;
use crate::cluster::properties::PropertiesInDatabase;
use crate::config::{BanAction, IpNet};
use crate::gate::auth::{self, CHALLENGE, Credentials};
use crate::gate::limits::{Defender, RateLimiter, Throttle};
use crate::gate::perms::Permissions;
use crate::gate::users::User;
use crate::locks::LockView;
use crate::metrics::{self, Refusal};
use crate::net::connection::RETRY_AFTER_SECS;
use crate::net::traffic::{
    AccessLog, BodyOutcome, BodyRate, READ_AHEAD, RequestBody, ResponseBody,
};
use crate::runtime::admission::Busy;
use crate::runtime::{StorageBinding, Tenant};
use crate::storage::Backend;
use crate::storage::guard::{DenyAll, Guarded};
use crate::storage::home::{Home, LockScope};

/// How a binding authenticates.
pub enum AuthMode {
    /// No authentication: everyone gets the whole store (zero-config CLI).
    Open,
    /// Users from the configuration; requests without credentials act as
    /// `anonymous` (read-only) when set.
    Users { anonymous: Option<String> },
}

/// What the open store's requests may do, and whose instances answer them;
/// what refused logins may do. The same for every request: built once.
static EVERYTHING: LazyLock<Arc<Permissions>> = LazyLock::new(|| Arc::new(Permissions::all()));
static OPEN: LazyLock<Tenant> = LazyLock::new(|| Tenant::new("open"));
static READ_ONLY: LazyLock<Arc<Permissions>> =
    LazyLock::new(|| Arc::new(Permissions::all().read_only()));

/// One binding's request gate.
pub struct Endpoint {
    pub app: Arc<App>,
    pub auth: AuthMode,
    pub rate_limit: Option<RateLimiter>,
    pub defender: Option<Arc<Defender>>,
    pub trusted_proxies: Vec<IpNet>,
    pub request_timeout: Option<Duration>,
    /// The minimum request-body rate; none: no minimum.
    pub body_rate: Option<BodyRate>,
}

/// Returned to hyper to close the connection without answering (banned
/// client with `action = "drop"`).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped: the client is banned")
    }
}

impl std::error::Error for Dropped {}

/// Who a request acts as.
enum Identity {
    Open,
    User {
        user: Arc<User>,
        anonymous: bool,
    },
    /// Unauthenticated OPTIONS.
    Nobody,
}

impl Endpoint {
    /// A request's view of a home: in cluster mode, an S3 home keeps its
    /// dead properties in the cluster's database (see
    /// [`crate::cluster::properties`]).
    fn home_backend(&self, home: &Home) -> Arc<dyn Backend> {
        match &self.app.cluster {
            Some(cluster) if home.scope.is_s3() => Arc::new(PropertiesInDatabase::new(
                home.backend.clone(),
                cluster.clone(),
                home.scope.key(),
            )),
            _ => home.backend.clone(),
        }
    }

    pub async fn serve(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<ResponseBody>, Dropped> {
        let started = Instant::now();
        let remote = auth::client_ip(peer.ip(), request.headers(), &self.trusted_proxies);
        let received = Arc::new(AtomicU64::new(0));
        let mut log = AccessLog {
            method: request.method().clone(),
            uri: request.uri().clone(),
            status: 0,
            user: None,
            remote,
            started,
            received: received.clone(),
            logged: false,
        };
        // Wrapped at once, so that a body refused unread is drained.
        let expects_continue = request
            .headers()
            .get(hyper::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let mut request =
            request.map(|body| RequestBody::new(body, received, self.body_rate, expects_continue));
        let outcome = request.body().outcome();

        if let Some(defender) = &self.defender
            && defender.is_banned(remote)
        {
            metrics::get().banned_requests.fetch_add(1, Relaxed);
            if defender.action == BanAction::Drop {
                return Err(Dropped);
            }
            return Ok(finish(
                simple(StatusCode::FORBIDDEN, "banned\n"),
                None,
                log,
                &outcome,
            ));
        }
        if let Some(limiter) = &self.rate_limit
            && let Err(wait) = limiter.check(remote)
        {
            metrics::get().rate_limited.fetch_add(1, Relaxed);
            let mut response = simple(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert("retry-after", secs.max(1).into());
            return Ok(finish(response, None, log, &outcome));
        }

        // Without the cluster's database there is no lock state: only the
        // methods that need none are served (see `crate::cluster`).
        if let Some(cluster) = &self.app.cluster
            && !cluster.is_up()
            && !matches!(
                *request.method(),
                Method::GET | Method::HEAD | Method::OPTIONS
            )
        {
            return Ok(finish(database_unreachable(), None, log, &outcome));
        }

        let identity = match self.identify(&request, remote).await {
            Ok(identity) => identity,
            Err(response) => return Ok(finish(response, None, log, &outcome)),
        };
        let (storage, upload, download, anonymous) = match &identity {
            Identity::Open => {
                let open = self
                    .app
                    .open
                    .as_ref()
                    .expect("open bindings exist only with an open store");
                let binding = StorageBinding {
                    backend: self.home_backend(open),
                    locks: LockView::new(
                        self.app.locks.clone(),
                        open.scope.clone(),
                        None,
                        EVERYTHING.clone(),
                    ),
                    tenant: Some(OPEN.clone()),
                };
                (binding, None, None, false)
            }
            Identity::User { user, anonymous } => {
                log.user = Some(user.name.clone());
                let policy = if *anonymous {
                    user.read_only_policy.clone()
                } else {
                    user.policy.clone()
                };
                let binding = StorageBinding {
                    backend: Arc::new(Guarded::new(
                        self.home_backend(&user.home),
                        policy.clone(),
                        user.usage.clone(),
                    )),
                    locks: LockView::new(
                        self.app.locks.clone(),
                        user.home.scope.clone(),
                        Some(user.name.clone()),
                        policy.perms.clone(),
                    ),
                    tenant: Some(if *anonymous {
                        user.anonymous_tenant.clone()
                    } else {
                        user.tenant.clone()
                    }),
                };
                (
                    binding,
                    user.upload.clone(),
                    user.download.clone(),
                    *anonymous,
                )
            }
            Identity::Nobody => {
                let binding = StorageBinding {
                    backend: Arc::new(DenyAll),
                    locks: LockView::new(
                        self.app.locks.clone(),
                        LockScope {
                            store: Arc::from("none"),
                            prefix: Arc::from(""),
                        },
                        None,
                        READ_ONLY.clone(),
                    ),
                    // Failed logins share nothing, not even an instance.
                    tenant: None,
                };
                (binding, None, None, true)
            }
        };

        request.body_mut().throttle(upload);
        request.body_mut().read_ahead(READ_AHEAD).await;
        if outcome.cut() {
            return Ok(finish(slow_body(), download, log, &outcome));
        }
        let slot = match self.app.admission.enter(remote).await {
            Ok(slot) => slot,
            Err(busy) => {
                let reason = match busy {
                    Busy::Pool => Refusal::InstancesBusy,
                    Busy::PerIp => Refusal::InstancesPerIp,
                };
                metrics::get().refused(reason);
                debug!(remote = %remote, reason = reason.label(), "request refused");
                let response = simple(StatusCode::SERVICE_UNAVAILABLE, reason.message());
                return Ok(finish(response, None, log, &outcome));
            }
        };
        let handled = self.app.runtime.handle(request, storage, slot);
        let response = match self.request_timeout {
            None => handled.await,
            Some(limit) => match tokio::time::timeout(limit, handled).await {
                Ok(response) => response,
                Err(_) => {
                    warn!(
                        method = %log.method,
                        path = %log.uri.path(),
                        "no response within the request timeout of {limit:?}"
                    );
                    simple(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n")
                }
            },
        };
        // A 500 while the cluster's database is down came from a lock call
        // that could not reach it: a transient condition, so 503 (see
        // `crate::cluster`).
        let response = match &self.app.cluster {
            Some(cluster)
                if response.status() == StatusCode::INTERNAL_SERVER_ERROR && !cluster.is_up() =>
            {
                database_unreachable()
            }
            _ => response,
        };
        // A body cut for being too slow: whatever the guest made of it, the
        // client is told, and the connection is closed.
        let response = if outcome.cut() {
            slow_body()
        // An anonymous client refused something may have credentials that
        // allow it: ask for them.
        } else if anonymous && response.status() == StatusCode::FORBIDDEN {
            challenge()
        } else {
            response
        };
        Ok(finish(response, download, log, &outcome))
    }

    /// Authenticates the request, or answers it (401).
    async fn identify<B>(
        &self,
        request: &Request<B>,
        remote: IpAddr,
    ) -> Result<Identity, Response<HyperOutgoingBody>> {
        let AuthMode::Users { anonymous } = &self.auth else {
            return Ok(Identity::Open);
        };
        let users = self.app.users.load_full();
        match auth::credentials(request.headers()) {
            Credentials::Basic { user, password } => {
                let m = metrics::get();
                m.login_attempts.fetch_add(1, Relaxed);
                if let Some(found) = users.authenticate(&user, &password).await {
                    m.login_successes.fetch_add(1, Relaxed);
                    return Ok(Identity::User {
                        user: found,
                        anonymous: false,
                    });
                }
                m.login_failures.fetch_add(1, Relaxed);
                warn!(user = %user, remote = %remote, "login failed");
                if let Some(defender) = &self.defender
                    && defender.record_failure(remote)
                {
                    m.bans.fetch_add(1, Relaxed);
                    warn!(remote = %remote, "banned after repeated failed logins");
                    if let Some(cluster) = &self.app.cluster {
                        tokio::spawn(bans::publish(
                            cluster.clone(),
                            defender.binding,
                            remote,
                            defender.ban_time(),
                        ));
                    }
                }
                Err(challenge())
            }
            Credentials::None | Credentials::Unusable => {
                if request.method() == Method::OPTIONS {
                    return Ok(Identity::Nobody);
                }
                match anonymous.as_deref().and_then(|name| users.get(name)) {
                    Some(user) => Ok(Identity::User {
                        user,
                        anonymous: true,
                    }),
                    None => Err(challenge()),
                }
            }
        }
    }
}

/// Wraps the response body for counting, throttling and the access log;
/// gives a 503 its `Retry-After`, and says `Connection: close` when the
/// request body's remains will not be read (see [`BodyOutcome`]).
fn finish(
    mut response: Response<HyperOutgoingBody>,
    download: Option<Arc<Throttle>>,
    mut log: AccessLog,
    body: &BodyOutcome,
) -> Response<ResponseBody> {
    if !body.connection_survives() {
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(hyper::header::RETRY_AFTER)
            .or_insert(RETRY_AFTER_SECS.into());
    }
    log.status = response.status().as_u16();
    let declared = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    response.map(|body| ResponseBody::new(body, download, log, declared))
}

/// 401 with the one Basic challenge.
fn challenge() -> Response<HyperOutgoingBody> {
    let mut response = simple(StatusCode::UNAUTHORIZED, "authentication required\n");
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static(CHALLENGE),
    );
    response
}

/// 408: the request body came slower than the binding's `min_body_rate`
/// (the connection then closes, see [`BodyOutcome::connection_survives`]).
fn slow_body() -> Response<HyperOutgoingBody> {
    simple(StatusCode::REQUEST_TIMEOUT, Refusal::SlowBody.message())
}

/// 503 with `Retry-After`: the cluster's database cannot be reached.
fn database_unreachable() -> Response<HyperOutgoingBody> {
    let mut response = simple(
        StatusCode::SERVICE_UNAVAILABLE,
        "the cluster database is unreachable: only GET, HEAD and OPTIONS are served\n",
    );
    response
        .headers_mut()
        .insert("retry-after", RETRY_AFTER_SECS.into());
    response
}

/// A short plain-text response.
pub fn simple(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
