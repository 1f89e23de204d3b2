//! Prometheus metrics in the text exposition format: requests by route and status class, and their latency as
//! a histogram. Written by hand: a few counters behind one mutex need no metrics framework.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(&'static str, &'static str), Series>>,
}

/// A route's label: its pattern, not the path (a USCC in the path would make one series per firm).
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/search" => "/search",
        "/dashboard" => "/dashboard",
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        p if p.starts_with("/firm/") => "/firm/{uscc}",
        p if p.starts_with("/static/") => "/static/{path}",
        _ => "other",
    }
}

impl Metrics {
    pub fn observe(&self, route: &'static str, status: u16, took: Duration) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let secs = took.as_secs_f64();
        let mut m = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = m.entry((route, class)).or_default();
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let m = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from(
            "# HELP xinyong_http_requests_total Requests answered, by route and status class.\n\
             # TYPE xinyong_http_requests_total counter\n",
        );
        for ((route, class), s) in m.iter() {
            let _ = writeln!(
                out,
                "xinyong_http_requests_total{{route=\"{route}\",status=\"{class}\"}} {}",
                s.count
            );
        }
        out.push_str(
            "# HELP xinyong_http_request_seconds Time to answer a request.\n\
             # TYPE xinyong_http_request_seconds histogram\n",
        );
        for ((route, class), s) in m.iter() {
            let l = format!("route=\"{route}\",status=\"{class}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "xinyong_http_request_seconds_bucket{{{l},le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "xinyong_http_request_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(out, "xinyong_http_request_seconds_sum{{{l}}} {}", s.sum);
            let _ = writeln!(out, "xinyong_http_request_seconds_count{{{l}}} {}", s.count);
        }
        out
    }
}

pub async fn handler(State(st): State<crate::AppState>) -> impl IntoResponse {
    let firms = st.index.read().map(|i| i.len()).unwrap_or(0);
    let mut body = st.metrics.render();
    body.push_str(&format!(
        "# HELP xinyong_firms_indexed Firms in the search index.\n# TYPE xinyong_firms_indexed gauge\nxinyong_firms_indexed {firms}\n"
    ));
    let (open, idle) = st.pool.state();
    body.push_str(&format!(
        "# HELP xinyong_store_connections Store connections open and idle.\n# TYPE xinyong_store_connections gauge\n\
         xinyong_store_connections{{state=\"open\"}} {open}\nxinyong_store_connections{{state=\"idle\"}} {idle}\n"
    ));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}
