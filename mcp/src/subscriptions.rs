//! Resource subscriptions: which session subscribed to which URI (of which user, in which
//! workspace), and the feeds that tell them about changes. Inside `serve` the analytics bus says
//! which users' tables changed at each epoch; a lone `vitasync mcp` process has no bus, so it
//! polls the store and compares each subscribed resource's content with what it last saw.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::{Peer, SubscriptionSink};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use vitasync_engine::bus::{Bus, BusEvent};
use vitasync_engine::domain::{UserId, WorkspaceId};

use crate::resources;
use crate::server::Shared;
use crate::tools::Ctx;

/// Where a subscriber's notifications go.
#[derive(Clone)]
pub(crate) enum Target {
    /// A `resources/subscribe` (protocol up to 2025-11-25): the session's peer.
    Session(Peer<RoleServer>),
    /// A `subscriptions/listen` stream (protocol 2026-07-28).
    Stream(SubscriptionSink),
}

impl Target {
    async fn updated(&self, uri: String) -> Result<(), String> {
        match self {
            Target::Session(peer) => peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
                .map_err(|e| e.to_string()),
            Target::Stream(sink) => sink
                .notify_resource_updated(uri)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

struct Entry {
    session: u64,
    ws: WorkspaceId,
    user: UserId,
    uri: String,
    peer: Target,
    /// Poll mode: the hash of the content last notified (or seen at subscription).
    fingerprint: Option<u64>,
}

/// The registry of subscriptions, shared by every session of one process.
pub struct Subscriptions {
    polls: bool,
    entries: Mutex<Vec<Entry>>,
}

impl Subscriptions {
    /// Changes arrive from the analytics bus (see [`Subscriptions::follow`]).
    pub fn fed_by_bus() -> Arc<Self> {
        Arc::new(Subscriptions {
            polls: false,
            entries: Mutex::new(Vec::new()),
        })
    }

    /// Changes are found by polling the store (see [`Subscriptions::poll`]).
    pub fn polling() -> Arc<Self> {
        Arc::new(Subscriptions {
            polls: true,
            entries: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn polls(&self) -> bool {
        self.polls
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(
        &self,
        session: u64,
        ws: WorkspaceId,
        user: UserId,
        uri: String,
        peer: Target,
        fingerprint: Option<u64>,
    ) {
        let mut entries = self.entries();
        entries.retain(|e| !(e.session == session && e.uri == uri));
        entries.push(Entry {
            session,
            ws,
            user,
            uri,
            peer,
            fingerprint,
        });
    }

    pub(crate) fn remove(&self, session: u64, uri: &str) {
        self.entries()
            .retain(|e| !(e.session == session && e.uri == uri));
    }

    /// Forgets every subscription of `session` (a `subscriptions/listen` stream that ended).
    pub(crate) fn remove_session(&self, session: u64) {
        self.entries().retain(|e| e.session != session);
    }

    /// Sends `notifications/resources/updated` to each target; a session that is gone loses
    /// its subscriptions.
    async fn notify(&self, targets: Vec<(u64, String, Target)>) {
        for (session, uri, peer) in targets {
            if let Err(e) = peer.updated(uri).await {
                tracing::debug!(session, error = %e, "MCP session gone; dropping its subscriptions");
                self.entries().retain(|e| e.session != session);
            }
        }
    }

    fn targets(&self, pick: impl Fn(&Entry) -> bool) -> Vec<(u64, String, Target)> {
        self.entries()
            .iter()
            .filter(|e| pick(e))
            .map(|e| (e.session, e.uri.clone(), e.peer.clone()))
            .collect()
    }

    /// Notifies the subscribers of every user whose analytics a materialised epoch changed.
    pub fn follow(self: Arc<Self>, bus: &Bus) -> JoinHandle<()> {
        let mut rx = bus.subscribe();
        tokio::spawn(async move {
            loop {
                let targets = match rx.recv().await {
                    Ok(event) => match event.as_ref() {
                        BusEvent::AnalyticsMaterialized { users, .. } => {
                            self.targets(|e| users.contains(&e.user))
                        }
                        _ => continue,
                    },
                    // Missed events may have been about anyone: tell everyone to re-read.
                    Err(RecvError::Lagged(_)) => self.targets(|_| true),
                    Err(RecvError::Closed) => return,
                };
                if !targets.is_empty() {
                    self.notify(targets).await;
                }
            }
        })
    }

    /// Every `every`, re-reads each subscribed resource and notifies when its content changed.
    pub fn poll(self: Arc<Self>, shared: Shared, every: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let watched: Vec<(u64, WorkspaceId, String, Option<u64>)> = self
                    .entries()
                    .iter()
                    .map(|e| (e.session, e.ws, e.uri.clone(), e.fingerprint))
                    .collect();
                for (session, ws, uri, seen) in watched {
                    let ctx = Ctx {
                        shared: &shared,
                        ws,
                    };
                    let now = match resources::fingerprint(&ctx, &uri).await {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::debug!(%uri, error = %e.message, "could not poll a subscribed resource");
                            continue;
                        }
                    };
                    if seen == Some(now) {
                        continue;
                    }
                    let peer = {
                        let mut entries = self.entries();
                        let Some(entry) = entries
                            .iter_mut()
                            .find(|e| e.session == session && e.uri == uri)
                        else {
                            continue;
                        };
                        entry.fingerprint = Some(now);
                        entry.peer.clone()
                    };
                    self.notify(vec![(session, uri, peer)]).await;
                }
            }
        })
    }
}
