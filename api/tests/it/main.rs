//! Integration tests: the real application on port 0 with a fresh database per test, on SQLite
//! and PostgreSQL. One binary (modules below) keeps link time down.

mod common;

mod analytics;
mod auth;
mod cli;
mod connections;
mod crash;
mod fitabase;
mod health_data;
mod mcp;
mod mcp_python;
mod notify;
mod oauth;
mod real_data;
mod sync_faults;
mod system;
mod tenancy;
mod users;
mod webhooks;
mod webhooks_out;
