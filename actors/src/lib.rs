//! VitaSync's actix supervision tree: the sync supervisor and per-connection actors, the
//! scheduler, the dataflow bridge, the materializer, and the notification and webhook actors.
//!
//! What lives where: nothing yet — actors arrive with provider sync. Actors never import the
//! dataflow crate; they hand deltas to a trait object the binary wires up.
