//! Events (Passport's `AccessTokenCreated`, `AccessTokenRevoked`, `RefreshTokenCreated`, plus
//! security facts) delivered to registered listeners.
//!
//! Delivery is asynchronous: emitting puts the event on a bounded queue and returns at once; one
//! background thread hands events to the listeners in order. A slow listener delays only later
//! events; a panicking one is caught and logged; when the queue is full, events are dropped
//! with a warning (and counted: `passport_events_dropped_total`). Token requests never wait
//! for listeners.

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// An access token was issued and stored.
    AccessTokenCreated {
        /// The token id (`jti`).
        token_id: String,
        /// The user, if any.
        user_id: Option<String>,
        /// The client.
        client_id: String,
    },
    /// An access token was revoked.
    AccessTokenRevoked {
        /// The token id.
        token_id: String,
    },
    /// A refresh token was issued.
    RefreshTokenCreated {
        /// The refresh token's id (hash).
        refresh_token_id: String,
        /// The access token issued with it.
        access_token_id: String,
    },
    /// A client failed to authenticate at the token endpoint.
    ClientAuthenticationFailed {
        /// The client id it claimed.
        client_id: String,
    },
    /// Wrong user credentials (password grant or login page).
    UserAuthenticationFailed {
        /// The client, for the password grant.
        client_id: Option<String>,
    },
    /// A used authorization code was presented again; the tokens issued from it were revoked.
    AuthCodeReplayed {
        /// The client.
        client_id: String,
    },
    /// A used refresh token was presented again; its whole family was revoked.
    RefreshTokenReused {
        /// The client.
        client_id: String,
    },
}

/// Receives events. Called on a background thread, one event at a time, in order.
pub trait EventListener: Send + Sync + Debug {
    /// Handles one event.
    fn handle(&self, event: &Event);
}

/// Logs every event as one `tracing` line at info level, target `passport::events`, with the
/// event as JSON in the field `event` (what the standalone server logs). Events carry ids,
/// never secrets or tokens.
///
/// ```no_run
/// # fn demo(builder: passport::PassportBuilder) -> passport::PassportBuilder {
/// builder.listen(std::sync::Arc::new(passport::TracingListener))
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingListener;

impl EventListener for TracingListener {
    fn handle(&self, event: &Event) {
        let fields = serde_json::to_string(event).unwrap_or_default();
        tracing::info!(target: "passport::events", event = %fields);
    }
}

enum Message {
    Event(Event),
    Flush(oneshot::Sender<()>),
}

/// The queue between emitters and listeners.
#[derive(Debug, Clone, Default)]
pub(crate) struct Events {
    inner: Arc<EventsInner>,
}

#[derive(Debug, Default)]
struct EventsInner {
    listeners: Vec<Arc<dyn EventListener>>,
    /// Counts events delivered and dropped.
    metrics: Arc<Metrics>,
    sender: OnceLock<Option<mpsc::Sender<Message>>>,
}

const QUEUE: usize = 4096;

impl Events {
    pub(crate) fn new(listeners: Vec<Arc<dyn EventListener>>, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(EventsInner {
                listeners,
                metrics,
                sender: OnceLock::new(),
            }),
        }
    }

    fn sender(&self) -> Option<&mpsc::Sender<Message>> {
        if self.inner.listeners.is_empty() {
            return None;
        }
        self.inner
            .sender
            .get_or_init(|| {
                let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
                let listeners = self.inner.listeners.clone();
                let metrics = self.inner.metrics.clone();
                // Listeners are synchronous and may block (I/O, locks, sleeps): they run on a
                // thread of their own, never on the async workers that serve requests.
                let spawned = std::thread::Builder::new()
                    .name("passport-events".to_owned())
                    .spawn(move || {
                        while let Some(message) = rx.blocking_recv() {
                            match message {
                                Message::Event(event) => {
                                    for listener in &listeners {
                                        if catch_unwind(AssertUnwindSafe(|| listener.handle(&event))).is_err() {
                                            tracing::error!(?listener, "an event listener panicked");
                                        }
                                    }
                                    metrics.event_delivered();
                                }
                                Message::Flush(done) => {
                                    let _ = done.send(());
                                }
                            }
                        }
                    });
                if let Err(err) = spawned {
                    tracing::error!(error = %err, "cannot start the event thread: events are dropped");
                    return None;
                }
                Some(tx)
            })
            .as_ref()
    }

    /// Queues `event` for the listeners; never waits.
    pub(crate) fn emit(&self, event: Event) {
        if let Some(sender) = self.sender()
            && sender.try_send(Message::Event(event)).is_err()
        {
            self.inner.metrics.event_dropped();
            tracing::warn!("event queue full: an event was dropped");
        }
    }

    /// Waits until every event emitted so far has been handled.
    pub(crate) async fn flush(&self) {
        if let Some(sender) = self.sender() {
            let (tx, rx) = oneshot::channel();
            if sender.send(Message::Flush(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
    }
}
