//! VitaSync's incremental analytics: a timely + differential-dataflow pipeline behind a handle
//! with typed commands and output deltas, and a plain batch implementation of the same analytics
//! that serves as its test oracle.
//!
//! What lives where:
//! - [`model`]: sample rows in, analytics rows out, fixed-point values and the total-order
//!   float that lets statistics travel as dataflow data.
//! - [`stats`]: the arithmetic (daily aggregation, baseline statistics) as pure functions shared
//!   by the pipeline and the oracle.
//! - [`corr`]: Pearson and Spearman from exact integer moments, with scipy's p-values
//!   (regularised incomplete beta).
//! - [`pipeline`]: the dataflow graph (samples → each provider's day → the workspace's choice →
//!   the per-user operator; workouts → per-activity records).
//! - `in_order`: an operator's updates held until their epoch is complete, oldest first.
//! - `metric_days`: one user's days per metric in date order, as the horizon and the
//!   per-provider operator keep them.
//! - `provider_days`: each provider's value of a day per (user, metric, day), in an operator
//!   that keeps each user's days (per metric, in date order) and emits what changed.
//! - `series`, `baseline_window`, `correlation_window`: one metric's daily values and the
//!   windows over them the per-user operator keeps from one epoch to the next (exact sums,
//!   values in order, per-pair products), moved by the dates that enter, leave or change.
//! - `user_analytics`: the per-user operator (held daily values → baselines, records,
//!   anomalies, scores, correlations, re-derived where an epoch's changes reach and emitted as
//!   differences; the archive of the dates a moving boundary passes), and the same derivations
//!   in batch for the horizon's archive.
//! - `prefetch`: the next user's state asked for while the operators work on the current one.
//! - [`providers`]: provider names as process-local ids inside the dataflow.
//! - [`handle`]: `Dataflow`, the workers on their own threads behind command and output
//!   channels; logical time is the ingestion epoch.
//! - [`horizon`]: which dates the dataflow holds per user (a boundary trailing their latest
//!   date, plus the windows' reach) and the batch archive of the dates before it where the
//!   dataflow cannot derive it (a user's first samples, changes before the boundary).
//! - [`oracle`]: the from-scratch batch computation the pipeline is tested against.
//! - [`materialize`]: changed keys → rows of the analytics tables, in the API's shapes, as
//!   they are now and as they were.
//! - [`reconcile`]: what a flush writes and announces (the rows that differ, one set of rules),
//!   and the first flush after a start against the stored tables.
//! - [`view`]: the outputs accumulated and consolidated, with the epoch they reflect.
//! - [`sink`]: `Analytics` — pipeline + view + hydration from the store + the materializer,
//!   behind the engine's `AnalyticsSink` port.
//!
//! Operators do no I/O: the handle's caller feeds sample changes and materialises the deltas.

mod baseline_window;
pub mod corr;
mod correlation_window;
pub mod handle;
pub mod horizon;
mod in_order;
pub mod materialize;
mod metric_days;
pub mod model;
pub mod oracle;
pub mod pipeline;
mod prefetch;
mod provider_days;
pub mod providers;
pub mod reconcile;
mod series;
pub mod sink;
pub mod stats;
mod user_analytics;
pub mod view;

pub use handle::Dataflow;
pub use pipeline::{Epoch, Output};
pub use sink::Analytics;
