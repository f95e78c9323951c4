//! What every suite shares: the one test world (`world`: one set of organizations, one Bob) and
//! the helpers written once (loopback servers and the servers a test needs, an HTTP client with
//! the documented answers, the store conformance suite).
#![allow(dead_code, reason = "each test binary uses part of it")]

pub mod captured_logs;
pub mod gated_store;
pub mod http_cases;
pub mod independent_jwt;
pub mod postgres_server;
pub mod redis_server;
pub mod servers;
pub mod store_conformance;
pub mod world;
