//! VitaSync's incremental analytics: a timely + differential-dataflow pipeline behind a handle
//! with typed commands and output deltas, and a plain batch implementation of the same analytics
//! that serves as its test oracle.
//!
//! What lives where: nothing yet — the pipeline arrives with the analytics work. The crate exists
//! so the dependency direction (dataflow → engine, never the reverse) is fixed from the start.
