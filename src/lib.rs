//! realtime-chat: a Socket.IO chat server compatible with the Flask seed's clients.
pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod http;
pub mod monitoring;
pub mod push;
pub mod socket;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod wire;
