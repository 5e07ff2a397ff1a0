//! Notifications and outbound webhooks: the typed event model ([`event`]), per-user channels
//! (one folder per type: [`discord`], [`slack`], [`teams`], [`email`], [`push`], [`ntfy`],
//! [`webhook`]) behind [`channel::ChannelConfig`], rule matching ([`rules`]), the SSRF guard
//! ([`ssrf`]), webhook signatures ([`signing`]), one guarded HTTP attempt ([`http`]), what is
//! stored ([`model`]) and the settings ([`settings`]). The runtime that reacts to the bus and
//! retries lives in the actors crate; the use cases the API calls are in
//! [`crate::services::notifications`] and [`crate::services::outbound_webhooks`].

pub mod channel;
pub mod discord;
pub mod email;
pub mod event;
pub mod http;
pub mod model;
pub mod ntfy;
pub mod push;
pub mod rules;
pub mod settings;
pub mod signing;
pub mod slack;
pub mod ssrf;
pub mod teams;
pub mod text;
pub mod webhook;
