//! `postern status`: what the running daemon reports of itself (version, listeners, store,
//! directories and their health, sessions, hash queue), asked over its plain HTTP listener
//! (`/readyz` and `/metrics`), then the throttle's locks from the store. A daemon that does
//! not answer is one line and exit 2.

use std::path::PathBuf;

use super::client::{self, ClientError};
use super::output::out;
use super::{load_valid, throttle, Failure};
use crate::config::{Protocol, Source};

pub async fn run(config_path: Option<PathBuf>) -> Result<(), Failure> {
    let source = client::daemon_source(config_path.as_deref());
    let config = load_valid(&source)?;
    let at = client::listener(&config, Protocol::Http)
        .map(|l| client::address_of(&l.bind))
        .ok_or_else(|| Failure::runtime(ClientError::NoListener("http").to_string()))?;
    let path = match &source {
        Source::File(p) => Some(p.clone()),
        Source::Embedded => None,
    };
    // A listener on an ephemeral port cannot be found from the file: only the store's part.
    if at.ends_with(":0") {
        out!("daemon: not asked (its HTTP listener binds port 0)")?;
        out!("throttle locks:")?;
        return throttle::status(path).await;
    }
    let ask = at.clone();
    let (ready, metrics) = tokio::task::spawn_blocking(move || {
        let ready = client::http_get(&ask, "/readyz")?;
        let metrics = client::http_get(&ask, "/metrics")?;
        Ok::<_, ClientError>((ready, metrics))
    })
    .await
    .map_err(|e| Failure::runtime(format!("status: {e}")))?
    .map_err(|e| Failure::runtime(e.to_string()))?;
    let readiness: serde_json::Value = serde_json::from_str(&ready.1).map_err(|e| {
        Failure::runtime(format!(
            "the daemon at {at} answered /readyz with no JSON: {e}"
        ))
    })?;
    let m = Metrics(metrics.1);
    out!(
        "postern {} (daemon at {at}), {}",
        m.label("postern_build_info", "version")
            .unwrap_or_else(|| "?".into()),
        if ready.0 == 200 { "ready" } else { "NOT READY" }
    )?;
    out!("listeners:")?;
    for l in &config.listener {
        let protocol = match l.protocol {
            Protocol::Http => "http",
            Protocol::DovecotAuth => "dovecot-auth",
            Protocol::Saslauthd => "saslauthd",
        };
        let target = client::address_of(&l.bind);
        let state = tokio::task::spawn_blocking(move || client::Stream::connect(&target).is_ok())
            .await
            .unwrap_or(false);
        out!(
            "  {protocol:<13} {:<40} {}{}",
            l.bind,
            if state { "accepting" } else { "NOT ANSWERING" },
            if l.tls.is_some() { ", tls" } else { "" }
        )?;
    }
    out!(
        "store: {}",
        readiness["store"].as_str().unwrap_or("(not reported)")
    )?;
    if let Some(dirs) = readiness["directories"].as_object() {
        for (name, state) in dirs {
            out!("directory {name}: {}", state.as_str().unwrap_or("?"))?;
        }
    }
    for (label, series) in [
        ("sessions active", "postern_sessions_active"),
        ("hash queue depth", "postern_hash_queue_depth"),
        ("store generation", "postern_store_generation"),
    ] {
        out!(
            "{label}: {}",
            m.value(series).unwrap_or_else(|| "(not reported)".into())
        )?;
    }
    for (listener, n) in m.labelled("postern_connections_active", "listener") {
        out!("connections open ({listener}): {n}")?;
    }
    out!("throttle locks:")?;
    // The same file for the locks, so both halves describe one daemon.
    throttle::status(path).await
}

/// The Prometheus text the daemon answered, read by series name.
struct Metrics(String);

impl Metrics {
    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0.lines().filter_map(move |l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                return None;
            }
            let (labels, value) = rest.rsplit_once(' ')?;
            Some((labels.trim(), value))
        })
    }

    fn value(&self, name: &str) -> Option<String> {
        self.samples(name).next().map(|(_, v)| v.to_string())
    }

    fn label(&self, name: &str, label: &str) -> Option<String> {
        self.samples(name)
            .find_map(|(labels, _)| label_value(labels, label))
    }

    fn labelled(&self, name: &str, label: &str) -> Vec<(String, String)> {
        self.samples(name)
            .filter_map(|(labels, v)| Some((label_value(labels, label)?, v.to_string())))
            .collect()
    }
}

fn label_value(labels: &str, label: &str) -> Option<String> {
    let start = labels.find(&format!("{label}=\""))? + label.len() + 2;
    let end = labels[start..].find('"')?;
    Some(labels[start..start + end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_read_by_name_and_label() {
        let m = Metrics(
            "# HELP x\npostern_build_info{version=\"1.2.3\"} 1\npostern_sessions_active 4\n\
             postern_sessions_active_other 9\npostern_connections_active{listener=\"http\"} 2\n"
                .into(),
        );
        assert_eq!(
            m.label("postern_build_info", "version").as_deref(),
            Some("1.2.3")
        );
        assert_eq!(m.value("postern_sessions_active").as_deref(), Some("4"));
        assert_eq!(
            m.labelled("postern_connections_active", "listener"),
            vec![("http".to_string(), "2".to_string())]
        );
        assert_eq!(m.value("postern_hash_queue_depth"), None);
    }
}
