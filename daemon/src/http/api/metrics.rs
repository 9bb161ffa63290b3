//! `postern_api_requests_total{resource,method,status}` and
//! `postern_api_request_duration_seconds{resource,method}`: one middleware around every
//! `/api/v1` route. Labels come from the matched route and a fixed list of methods, never from
//! the request's text; the series' handles are resolved once and kept (a bounded set: a few
//! resources × methods × status codes).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

type Key = (&'static str, &'static str);

pub struct ApiMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    counters: RwLock<HashMap<(Key, u16), IntCounter>>,
    histograms: RwLock<HashMap<Key, Histogram>>,
}

impl ApiMetrics {
    pub fn new(m: &crate::metrics::Metrics) -> Arc<ApiMetrics> {
        Arc::new(ApiMetrics {
            requests: m.api_requests.clone(),
            duration: m.api_duration.clone(),
            counters: RwLock::new(HashMap::new()),
            histograms: RwLock::new(HashMap::new()),
        })
    }

    fn counter(&self, key: Key, status: u16) -> IntCounter {
        if let Some(c) = self
            .counters
            .read()
            .ok()
            .and_then(|m| m.get(&(key, status)).cloned())
        {
            return c;
        }
        let c = self
            .requests
            .with_label_values(&[key.0, key.1, &status.to_string()]);
        if let Ok(mut m) = self.counters.write() {
            m.insert((key, status), c.clone());
        }
        c
    }

    fn histogram(&self, key: Key) -> Histogram {
        if let Some(h) = self
            .histograms
            .read()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return h;
        }
        let h = self.duration.with_label_values(&[key.0, key.1]);
        if let Ok(mut m) = self.histograms.write() {
            m.insert(key, h.clone());
        }
        h
    }
}

/// The resource a route serves: its last fixed segment.
fn resource(path: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "api-keys",
        "app-passwords",
        "permissions",
        "principals",
        "roles",
        "tenants",
        "oauth-clients",
        "authentication",
        "openapi.json",
    ];
    path.rsplit('/')
        .filter(|s| !s.starts_with('{'))
        .find_map(|s| KNOWN.iter().find(|k| **k == s).copied())
        .unwrap_or("other")
}

fn method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

pub async fn count(State(m): State<Arc<ApiMetrics>>, request: Request, next: Next) -> Response {
    let key = (
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or("other", |p| resource(p.as_str())),
        method(request.method()),
    );
    let started = Instant::now();
    let response = next.run(request).await;
    m.histogram(key).observe(started.elapsed().as_secs_f64());
    m.counter(key, response.status().as_u16()).inc();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_a_fixed_set() {
        assert_eq!(
            resource("/api/v1/principals/{name}/api-keys/{id}"),
            "api-keys"
        );
        assert_eq!(resource("/api/v1/principals/{name}"), "principals");
        assert_eq!(
            resource("/api/v1/settings/authentication"),
            "authentication"
        );
        assert_eq!(resource("/api/v1/whatever"), "other");
    }
}
