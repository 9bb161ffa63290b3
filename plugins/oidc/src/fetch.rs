//! Outbound HTTP to the provider: redirects off, a timeout on every request, TLS verified
//! against the system roots or `ca-file` (rustls with ring), and every response read up to a
//! size limit, so a huge or slow document is a clear error, never memory or a hung login.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The largest response read from a provider: discovery documents and key sets are a few
/// kilobytes; anything this size is broken or hostile.
pub const MAX_RESPONSE: usize = 256 * 1024;

/// Why a request to the provider gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Unreachable, timed out, TLS failure, 5xx: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// An answer this client cannot use (too large, not JSON, the wrong shape).
    #[error("{0}")]
    Invalid(String),
    /// A 4xx answer, with its status and the body's `error` when it had one.
    #[error("HTTP {status}: {error}")]
    Refused { status: u16, error: String },
}

/// Builds the TLS client configuration: the roots of `ca_file` (PEM) or else the system's,
/// always with the ring provider.
pub fn tls_config(ca_file: Option<&Path>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("{} holds no PEM certificate", path.display()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Fetcher, String> {
        let tls = tls_config(ca_file)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("postern/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Fetcher { client })
    }

    /// GET a JSON document.
    pub async fn get_json(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<serde_json::Value, FetchError> {
        let mut request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// POST a form, with the client's credentials as HTTP Basic when given (each part
    /// form-urlencoded first, RFC 6749 §2.3.1, so secrets with `:` or `%` survive).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<serde_json::Value, FetchError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some((id, secret)) = basic {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = zeroize::Zeroizing::new(format!("{}:{}", enc(id), enc(secret)));
            use base64::Engine as _;
            let b64 = zeroize::Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()),
            );
            request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {}", *b64));
        }
        self.send(request).await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, FetchError> {
        let mut response = request
            .send()
            .await
            .map_err(|e| FetchError::Unavailable(describe(&e)))?;
        let status = response.status();
        if status.is_server_error() || status.is_redirection() {
            return Err(FetchError::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE as u64)
        {
            return Err(FetchError::Invalid(format!(
                "response larger than {MAX_RESPONSE} bytes"
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Unavailable(describe(&e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(FetchError::Invalid(format!(
                    "response larger than {MAX_RESPONSE} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let json: Result<serde_json::Value, _> = serde_json::from_slice(&body);
        if status.is_client_error() {
            let error = json
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_default();
            // The provider's word, not ours: bounded and printable before it reaches a log.
            let error: String = error.chars().filter(|c| !c.is_control()).take(64).collect();
            return Err(FetchError::Refused {
                status: status.as_u16(),
                error,
            });
        }
        json.map_err(|e| FetchError::Invalid(format!("response is not JSON: {e}")))
    }
}

/// The error with its causes (reqwest's own message hides the TLS or connect reason).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
