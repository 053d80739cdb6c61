//! Running a guest inside the connection's own task.
//!
//! A wasi:http guest sets its response (through the outparam) and then keeps
//! running to stream the body. Instead of a task of its own per request,
//! which costs a spawn and, with two workers, a wake-up of the other thread
//! and its inter-processor interrupt, the guest's future is polled by the
//! task that serves the connection: by [`answer`] until the response is
//! set, then by the response body ([`GuestBody`]) each time hyper asks it
//! for data. The guest therefore runs exactly when the connection can take
//! what it writes.
//!
//! If hyper lets go of the body before the guest has finished (a HEAD, a
//! client gone mid-download), the rest of the guest runs in a task of its
//! own, as every guest used to: it finishes, logs and frees its slot.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use tracing::error;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::metrics::{self, ComponentError};

/// A request's guest, run to its end: instantiation, the handler call, the
/// body. It logs and counts its own failures; its output says which, if
/// any, ended it.
pub type Guest = Pin<Box<dyn Future<Output = Option<ComponentError>> + Send>>;

/// What the guest passes through its response outparam.
pub type Answer = Result<Response<HyperOutgoingBody>, ErrorCode>;

/// Runs `guest` until it has answered through `answer`, and returns that
/// response with a body that keeps the guest running. Dropping this future
/// before then (the client went away) stops the guest.
pub async fn answer(
    mut guest: Guest,
    mut answered: oneshot::Receiver<Answer>,
) -> Result<Response<HyperOutgoingBody>, ComponentError> {
    let mut ended = None;
    let outcome = std::future::poll_fn(|cx| {
        if ended.is_none()
            && let Poll::Ready(outcome) = guest.as_mut().poll(cx)
        {
            ended = Some(outcome);
        }
        // A finished guest has dropped its store and so the sender: the
        // receiver is then ready either way.
        Pin::new(&mut answered).poll(cx)
    })
    .await;
    match outcome {
        Ok(Ok(response)) => Ok(match ended {
            Some(_) => response,
            None => response.map(|body| {
                GuestBody {
                    guest: Some(guest),
                    body,
                }
                .boxed_unsync()
            }),
        }),
        Ok(Err(code)) => {
            error!("the handler answered with error {code:?}");
            metrics::get().component_error(ComponentError::NoResponse);
            if ended.is_none() {
                finish_detached(guest);
            }
            Err(ComponentError::NoResponse)
        }
        // The outparam was dropped unset; the guest tells why when it ends.
        Err(_) => {
            let ended = match ended {
                Some(ended) => ended,
                None => guest.await,
            };
            ended.map_or_else(
                || {
                    error!("the handler returned without setting a response");
                    metrics::get().component_error(ComponentError::NoResponse);
                    Err(ComponentError::NoResponse)
                },
                Err,
            )
        }
    }
}

/// A response body that runs the guest producing it whenever it is polled.
struct GuestBody {
    guest: Option<Guest>,
    body: HyperOutgoingBody,
}

impl Body for GuestBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(guest) = &mut this.guest
            && guest.as_mut().poll(cx).is_ready()
        {
            this.guest = None;
        }
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for GuestBody {
    fn drop(&mut self) {
        if let Some(guest) = self.guest.take() {
            finish_detached(guest);
        }
    }
}

/// Lets a guest run to its end in a task of its own; outside the runtime
/// (it is shutting down) the guest is dropped, as every task is.
fn finish_detached(guest: Guest) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(guest);
    }
}
