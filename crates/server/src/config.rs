//! The server's configuration file (TOML): what `xinyong serve --config FILE` reads. Every key has a default,
//! so an empty file is valid; `config/xinyong.example.toml` documents each one and a test loads it.

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// The store (`--db` overrides it): a SQLite file or a PostgreSQL URL.
    pub db: Option<String>,
    /// Connections in the store pool.
    pub pool_size: u32,
    /// Seconds a request waits for a free store connection before it gets an error.
    pub pool_wait_secs: u64,
    /// Whether cookies carry `Secure` (leave on; off only for plain-HTTP development on localhost).
    pub secure_cookies: bool,
    /// Send Strict-Transport-Security (served over HTTPS directly, or behind a TLS-terminating proxy).
    pub hsts: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Results per search page (a request cannot ask for more).
    pub search_limit: usize,
    /// A session ends after this many seconds without a request.
    pub session_idle_secs: u64,
    /// A session ends this many seconds after login, however busy.
    pub session_absolute_secs: u64,
    /// Requests a second each signed-in user may make on average (0: no limit) ...
    pub rate_per_sec: f64,
    /// ... and in a burst.
    pub rate_burst: f64,
    /// Seconds between checks for new data (a scoring run or a batch): the caches are dropped, the dashboard
    /// and search reload.
    pub refresh_secs: u64,
    /// Megabytes of firm overviews kept between requests (estimated; 0: none kept).
    pub overview_cache_mb: usize,
    /// Whether webhooks may go to internal addresses (loopback, private networks): off, against server-side
    /// request forgery; on for a test bench or a receiver on the same private network.
    pub webhook_private_hosts: bool,
    /// The State Council holiday calendar (TOML, as `crates/rights/config/calendar.toml`); none: the built-in.
    pub calendar: Option<std::path::PathBuf>,
    /// Objection regimes (TOML, as `crates/rights/config/objections.toml`); none: the built-in.
    pub objection_regimes: Option<std::path::PathBuf>,
    /// Retention and publicity windows (TOML, as `crates/rights/config/windows.toml`); none: the built-in.
    pub windows: Option<std::path::PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            db: None,
            pool_size: 8,
            pool_wait_secs: 10,
            secure_cookies: true,
            hsts: true,
            max_body_bytes: 16 * 1024 * 1024,
            search_limit: 50,
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            rate_per_sec: 20.0,
            rate_burst: 60.0,
            refresh_secs: 30,
            overview_cache_mb: 256,
            webhook_private_hosts: false,
            calendar: None,
            objection_regimes: None,
            windows: None,
        }
    }
}

impl ServerConfig {
    pub fn parse(text: &str) -> Result<ServerConfig, String> {
        let c: ServerConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if c.pool_size == 0 {
            return Err("pool_size must be at least 1".into());
        }
        if c.pool_wait_secs == 0 {
            return Err("pool_wait_secs must be at least 1".into());
        }
        if c.session_idle_secs == 0 || c.session_absolute_secs < c.session_idle_secs {
            return Err("session_idle_secs must be at least 1 and session_absolute_secs at least as long".into());
        }
        if c.rate_per_sec < 0.0 || (c.rate_per_sec > 0.0 && c.rate_burst < 1.0) {
            return Err("rate_per_sec must be 0 (no limit) or positive with rate_burst at least 1".into());
        }
        if c.search_limit == 0 {
            return Err("search_limit must be at least 1".into());
        }
        Ok(c)
    }

    pub fn pool_wait(&self) -> Duration {
        Duration::from_secs(self.pool_wait_secs)
    }
}
