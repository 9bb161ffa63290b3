//! The `oidc` directory: bearer tokens of its provider through the [`Directory`] contract, and
//! the login flow's two halves ([`OidcDirectory::begin`], [`OidcDirectory::callback`]) for the
//! HTTP front-end.

use std::sync::Arc;

use async_trait::async_trait;
use postern_directory::token_cache::{TokenCache, TokenCacheStats, TokenDigest};
use postern_directory::{
    ConfigProblem, CredentialKind, Directory, DirectoryError, Identity, LoginRequest, Outcome,
    RejectReason,
};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::claims;
use crate::config::{ClientAuthMethod, OidcConfig, TokenValidation};
use crate::fetch::{FetchError, Fetcher};
use crate::flow::{self, CallbackParams, Sealer, Transaction};
use crate::jwt::{self, Expect, JwtError, Rules};
use crate::provider::Provider;

/// The wall clock as the engine reads it (seconds since the epoch).
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct OidcDirectory {
    name: String,
    config: OidcConfig,
    secret: Zeroizing<String>,
    redirect_uri: String,
    algorithms: Vec<jsonwebtoken::Algorithm>,
    audiences: Vec<String>,
    provider: Provider,
    sealer: Sealer,
    now: Now,
    /// Access tokens whose signature and claims were checked: a client reusing its token
    /// costs a lookup, not a signature check, until the token's `exp`.
    verified: TokenCache<Arc<Verified>>,
}

/// What [`OidcDirectory::verified`] keeps of a token (never the token): its claims, and the
/// key that signed it, which must still be in the provider's key set when the entry is used.
struct Verified {
    claims: Map<String, Value>,
    kid: Option<String>,
    alg: jsonwebtoken::Algorithm,
}

/// Verified provider tokens kept per generation (so at most twice this many).
const VERIFIED_TOKENS: usize = 16_384;

/// How a callback ended without an identity. Each is a page for the browser, never a 500.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// No valid transaction, wrong or reused state, wrong `iss`, malformed parameters.
    #[error("{0}")]
    BadRequest(String),
    /// The provider sent the user back with an error (cancelled, login required).
    #[error("the provider answered {0}")]
    Denied(String),
    /// The code or the ID token was refused.
    #[error("{0}")]
    Rejected(String),
    /// The provider could not be reached or answered nonsense: try again later.
    #[error("{0}")]
    Unavailable(String),
}

/// Where a login starts: the provider's URL and the transaction's cookie value.
pub struct Begin {
    pub authorize_url: String,
    pub cookie: String,
}

impl OidcDirectory {
    /// Builds the directory without touching the network. `public_url` is `[server]
    /// public-url`, to which the redirect path is joined.
    pub fn new(
        name: &str,
        config: OidcConfig,
        public_url: &str,
        now: Now,
    ) -> Result<OidcDirectory, ConfigProblem> {
        if let Some(p) = config.problems().into_iter().next() {
            return Err(p);
        }
        let secret = match (&config.client_secret, &config.client_secret_file) {
            (Some(s), _) => Zeroizing::new(s.clone()),
            (None, Some(path)) => postern_directory::read_secret_file("client-secret-file", path)?,
            (None, None) => Zeroizing::new(String::new()),
        };
        let fetcher = Fetcher::new(config.ca_file.as_deref(), config.timeout)
            .map_err(|e| ConfigProblem::new("ca-file", e))?;
        let path = config
            .redirect_path
            .clone()
            .unwrap_or_else(|| format!("/auth/oidc/{name}/callback"));
        let redirect_uri = format!("{}{path}", public_url.trim_end_matches('/'));
        Ok(OidcDirectory {
            name: name.to_string(),
            algorithms: jwt::algorithms(&config.id_token_algorithms),
            audiences: config.audiences(),
            provider: Provider::new(
                config.issuer.clone(),
                fetcher,
                config.cache_ttl,
                config.jwks_refetch_interval,
            ),
            sealer: Sealer::new(secret.as_bytes()),
            secret,
            redirect_uri,
            config,
            now,
            verified: TokenCache::new(VERIFIED_TOKENS),
        })
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// `check-config --live`: discovery answers, names the configured issuer, lists what the
    /// flow needs, and the key set is usable.
    pub async fn check_live(&self) -> Vec<ConfigProblem> {
        let m = match self.provider.discover().await {
            Ok(m) => m,
            Err(e) => {
                return vec![ConfigProblem::new(
                    "issuer",
                    format!("discovery at {}: {e}", self.provider.discovery_url()),
                )]
            }
        };
        let mut out = Vec::new();
        if !m.code_challenge_methods_supported.is_empty()
            && !m
                .code_challenge_methods_supported
                .iter()
                .any(|c| c == "S256")
        {
            out.push(ConfigProblem::new(
                "issuer",
                "the provider does not offer PKCE S256",
            ));
        }
        let needs = match self.config.token_validation {
            TokenValidation::Introspection => m
                .introspection_endpoint
                .is_none()
                .then_some("introspection_endpoint"),
            TokenValidation::Userinfo => {
                m.userinfo_endpoint.is_none().then_some("userinfo_endpoint")
            }
            TokenValidation::Jwt => None,
        };
        if let Some(field) = needs {
            out.push(ConfigProblem::new(
                "token-validation",
                format!("the provider's discovery has no {field}"),
            ));
        }
        if let Err(e) = self.provider.fetcher().get_json(&m.jwks_uri, None).await {
            out.push(ConfigProblem::new(
                "issuer",
                format!("JWKS at {}: {e}", m.jwks_uri),
            ));
        }
        out
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            audiences: &self.audiences,
            algorithms: &self.algorithms,
            leeway: i64::try_from(self.config.leeway.as_secs()).unwrap_or(0),
            now: (self.now)(),
        }
    }

    fn client_auth<'a>(&'a self, form: &mut Vec<(&'a str, &'a str)>) -> Option<(&'a str, &'a str)> {
        match self.config.token_endpoint_auth {
            ClientAuthMethod::ClientSecretBasic => Some((&self.config.client_id, &self.secret)),
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", &self.secret));
                None
            }
        }
    }

    /// Starts a login: the provider's authorization URL and the sealed transaction.
    pub async fn begin(&self, ret: Option<String>) -> Result<Begin, CallbackError> {
        let m = self
            .provider
            .metadata()
            .await
            .map_err(|e| CallbackError::Unavailable(format!("discovery: {e}")))?;
        if !m.code_challenge_methods_supported.is_empty()
            && !m
                .code_challenge_methods_supported
                .iter()
                .any(|c| c == "S256")
        {
            return Err(CallbackError::Unavailable(
                "the provider does not offer PKCE S256".into(),
            ));
        }
        let t = Transaction::new(&self.name, ret, (self.now)());
        let mut url = url::Url::parse(&m.authorization_endpoint)
            .map_err(|e| CallbackError::Unavailable(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", &t.state)
            .append_pair("nonce", &t.nonce)
            .append_pair("code_challenge", &flow::challenge(&t.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(Begin {
            authorize_url: url.into(),
            cookie: self.sealer.seal(&t),
        })
    }

    /// Ends a login: every check of the callback, one code exchange, the ID token, userinfo
    /// when the token lacks claims. Returns the identity and the transaction's return path.
    pub async fn callback(
        &self,
        params: &CallbackParams,
        cookie: Option<&str>,
    ) -> Result<(Identity, Option<String>), CallbackError> {
        use CallbackError::*;
        if params.oversized() {
            return Err(BadRequest("callback parameter too long".into()));
        }
        let now = (self.now)();
        let t = cookie
            .and_then(|c| self.sealer.open(c, now))
            .filter(|t| t.dir == self.name)
            .ok_or_else(|| BadRequest("no login in progress here, or it expired".into()))?;
        let state = params.state.as_deref().unwrap_or("");
        if !flow::same(state, &t.state) {
            return Err(BadRequest(
                "state does not match the login in progress".into(),
            ));
        }
        if !self.sealer.use_once(&t.state, t.exp, now) {
            return Err(BadRequest("this login was already completed".into()));
        }
        let m = self
            .provider
            .metadata()
            .await
            .map_err(|e| Unavailable(format!("discovery: {e}")))?;
        match params.iss.as_deref() {
            Some(iss) if iss != self.config.issuer => {
                return Err(BadRequest("iss is not the provider's issuer".into()))
            }
            None if m.authorization_response_iss_parameter_supported => {
                return Err(BadRequest("iss missing from the provider's answer".into()))
            }
            _ => {}
        }
        if let Some(error) = &params.error {
            let word: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(Denied(word));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| BadRequest("code missing".into()))?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", t.verifier.as_str()),
        ];
        let basic = self.client_auth(&mut form);
        // Exactly once, whatever happens: a replayed code revokes what the first exchange
        // produced.
        let answer = self
            .provider
            .fetcher()
            .post_form(&m.token_endpoint, &form, basic)
            .await
            .map_err(|e| match e {
                FetchError::Refused { .. } => Rejected(format!("token endpoint: {e}")),
                other => Unavailable(format!("token endpoint: {other}")),
            })?;
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| Rejected("the token response has no id_token".into()))?;
        let mut claims = jwt::verify(
            id_token,
            Expect::IdToken { nonce: &t.nonce },
            &self.rules(),
            &self.provider,
        )
        .await
        .map_err(|e| match e {
            JwtError::Unavailable(m) => Unavailable(m),
            other => Rejected(format!("ID token: {other}")),
        })?;
        let access = answer.get("access_token").and_then(Value::as_str);
        if let Some(token) = access.filter(|_| self.lacks_claims(&claims)) {
            self.add_userinfo(&mut claims, token)
                .await
                .map_err(|e| match e {
                    Fail::Unavailable(m) => Unavailable(m),
                    Fail::Invalid(m) => Rejected(m),
                })?;
        }
        let identity = claims::identity(
            &claims,
            &self.config.username_claim,
            &self.config.groups_claim,
        )
        .map_err(Rejected)?;
        Ok((identity, t.ret))
    }

    fn lacks_claims(&self, claims: &Map<String, Value>) -> bool {
        !claims.contains_key(&self.config.username_claim)
            || !claims.contains_key(&self.config.groups_claim)
            || !claims.contains_key("email")
    }

    async fn add_userinfo(&self, claims: &mut Map<String, Value>, token: &str) -> Result<(), Fail> {
        let m = self.provider.metadata().await.map_err(Fail::from)?;
        let Some(endpoint) = &m.userinfo_endpoint else {
            return Ok(());
        };
        let info = self
            .provider
            .fetcher()
            .get_json(endpoint, Some(token))
            .await
            .map_err(Fail::from)?;
        claims::merge_userinfo(claims, info).map_err(Fail::Invalid)
    }

    /// A provider access token: its claims, or why not.
    async fn token_claims(&self, token: &str) -> Result<Option<Map<String, Value>>, Fail> {
        match self.config.token_validation {
            TokenValidation::Jwt => {
                let digest = self.verified.digest(token);
                if let Some(hit) = self.verified.get(&digest, (self.now)()) {
                    // A key the provider no longer publishes ends its tokens, cached or not;
                    // the full check below then says why.
                    if self.provider.key(hit.kid.as_deref(), hit.alg).await.is_ok() {
                        return Ok(Some(hit.claims.clone()));
                    }
                    self.verified.invalidate(&digest);
                }
                match jwt::verify(token, Expect::AccessToken, &self.rules(), &self.provider).await {
                    Ok(mut claims) => {
                        if !claims.contains_key(&self.config.username_claim) {
                            self.add_userinfo(&mut claims, token).await?;
                        }
                        self.keep_verified(digest, token, &claims);
                        Ok(Some(claims))
                    }
                    Err(JwtError::NotOurs(_)) => Ok(None),
                    Err(JwtError::Invalid(m)) => Err(Fail::Invalid(m)),
                    Err(JwtError::Unavailable(m)) => Err(Fail::Unavailable(m)),
                }
            }
            TokenValidation::Introspection => self.introspect(token).await,
            TokenValidation::Userinfo => {
                let m = self.provider.metadata().await?;
                let endpoint = m
                    .userinfo_endpoint
                    .as_deref()
                    .ok_or_else(|| Fail::Unavailable("no userinfo_endpoint".into()))?;
                match self
                    .provider
                    .fetcher()
                    .get_json(endpoint, Some(token))
                    .await
                {
                    Ok(Value::Object(c)) if c.get("sub").is_some_and(Value::is_string) => {
                        Ok(Some(c))
                    }
                    Ok(_) => Err(Fail::Invalid("userinfo without sub".into())),
                    // The provider does not know the token: perhaps another directory does.
                    Err(FetchError::Refused {
                        status: 400 | 401 | 403,
                        ..
                    }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Keeps a token that just verified until its `exp` (checked present by the verification).
    fn keep_verified(&self, digest: TokenDigest, token: &str, claims: &Map<String, Value>) {
        let (Ok(header), Some(exp)) = (
            jsonwebtoken::decode_header(token),
            claims.get("exp").and_then(Value::as_i64),
        ) else {
            return;
        };
        let entry = Verified {
            claims: claims.clone(),
            kid: header.kid,
            alg: header.alg,
        };
        self.verified.insert(digest, Arc::new(entry), exp);
    }

    /// RFC 7662 with the client's credentials; inactive is "not a token of this provider".
    async fn introspect(&self, token: &str) -> Result<Option<Map<String, Value>>, Fail> {
        let m = self.provider.metadata().await?;
        let endpoint = m
            .introspection_endpoint
            .as_deref()
            .ok_or_else(|| Fail::Unavailable("no introspection_endpoint".into()))?;
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let basic = self.client_auth(&mut form);
        let answer = self
            .provider
            .fetcher()
            .post_form(endpoint, &form, basic)
            .await?;
        let Value::Object(mut claims) = answer else {
            return Err(Fail::Invalid(
                "introspection answer is not an object".into(),
            ));
        };
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Ok(None);
        }
        let rules = self.rules();
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_some_and(|exp| exp.saturating_add(rules.leeway) <= rules.now)
        {
            return Err(Fail::Invalid("expired".into()));
        }
        if claims
            .get("iss")
            .is_some_and(|iss| iss.as_str() != Some(&self.config.issuer))
        {
            return Err(Fail::Invalid("iss is not the provider's issuer".into()));
        }
        if let Some(aud) = claims.get("aud") {
            let list: Vec<&str> = match aud {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let ok = list
                .iter()
                .any(|a| *a == self.config.client_id || self.audiences.iter().any(|t| t == a));
            if !ok {
                return Err(Fail::Invalid("aud is not an accepted audience".into()));
            }
        }
        if !claims.get("sub").is_some_and(Value::is_string) {
            return Err(Fail::Invalid("introspection answer without sub".into()));
        }
        if !claims.contains_key(&self.config.username_claim) {
            if let Some(name) = claims.get("username").cloned() {
                claims.insert(self.config.username_claim.clone(), name);
            } else {
                self.add_userinfo(&mut claims, token).await?;
            }
        }
        Ok(Some(claims))
    }
}

enum Fail {
    Invalid(String),
    Unavailable(String),
}

impl From<FetchError> for Fail {
    fn from(e: FetchError) -> Fail {
        match e {
            FetchError::Refused { .. } => Fail::Invalid(e.to_string()),
            FetchError::Invalid(m) | FetchError::Unavailable(m) => Fail::Unavailable(m),
        }
    }
}

#[async_trait]
impl Directory for OidcDirectory {
    fn name(&self) -> &str {
        &self.name
    }

    /// Provider tokens only: the people of an OIDC directory have no password Postern could
    /// check (app passwords are the internal directory's).
    fn accepts(&self, kind: CredentialKind) -> bool {
        kind == CredentialKind::Bearer
    }

    async fn authenticate(&self, request: &LoginRequest<'_>) -> Result<Outcome, DirectoryError> {
        let token = request.credential.expose();
        if token.len() > jwt::MAX_TOKEN {
            return Ok(Outcome::UnknownUser);
        }
        match self.token_claims(token).await {
            Ok(None) => Ok(Outcome::UnknownUser),
            Ok(Some(c)) => {
                match claims::identity(&c, &self.config.username_claim, &self.config.groups_claim) {
                    Ok(identity) => Ok(Outcome::Authenticated(identity)),
                    Err(e) => Err(DirectoryError::InvalidData(e)),
                }
            }
            Err(Fail::Invalid(reason)) => {
                tracing::info!(directory = %self.name, %reason, "provider token refused");
                Ok(Outcome::Rejected(RejectReason::WrongSecret))
            }
            Err(Fail::Unavailable(e)) => Err(DirectoryError::Unavailable(e)),
        }
    }

    fn token_cache_stats(&self) -> Option<TokenCacheStats> {
        Some(self.verified.stats())
    }

    async fn lookup(&self, _name: &str) -> Result<Option<Identity>, DirectoryError> {
        // A provider cannot be asked about a person without their token.
        Ok(None)
    }

    async fn health(&self) -> Result<(), DirectoryError> {
        self.provider
            .metadata()
            .await
            .map(|_| ())
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))
    }
}
