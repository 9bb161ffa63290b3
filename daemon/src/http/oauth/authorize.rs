//! The authorization endpoint and its login and consent pages (RFC 6749 §4.1, RFC 9700).
//!
//! The client and its redirect URI are checked first, exactly (RFC 8252 §7.3 loopback ports
//! aside); until they are, every error is a page at Postern, never a redirect. PKCE S256 is
//! required of every client. A person holding a Postern session cookie is not asked again;
//! otherwise the login form posts back here (CSRF-checked, double-submit cookie), and the
//! answer is a 303, so a password is never re-posted to the client. Consent is implicit for
//! first-party clients, asked once and remembered for the others. Every authorization
//! response carries `iss` (RFC 9207) and the client's `state`.

use std::net::IpAddr;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use postern_directory::Credential;
use postern_internal::store::StoredOAuthClient;
use postern_internal::token_hash;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::page::{self, esc, hidden};
use super::params::Params;
use super::token::{allowed_scope, random_token, CodeBody};
use crate::auth::{Frontend, LoginError, Mechanism, PasswordAttempt, SessionView};
use crate::authz::Service;
use crate::http::cookie::{self, SESSION_COOKIE};
use crate::http::extract::{ClientIp, LimitedBody};
use crate::http::AppState;
use crate::oauth::{rules, GrantBody, CODE_TTL};

pub const CSRF_COOKIE: &str = "postern_csrf";

/// The authorization request's parameters, carried through the login and consent forms.
const CARRIED: [&str; 8] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

struct AuthRequest {
    client: StoredOAuthClient,
    redirect_uri: String,
    state: Option<String>,
    scope: Vec<String>,
    challenge: String,
    nonce: Option<String>,
}

/// The `Location` of an authorization response: `iss` always, `state` when given.
fn redirect(issuer: &str, req_uri: &str, state: Option<&str>, fields: &[(&str, &str)]) -> Response {
    let mut pairs: Vec<(&str, &str)> = fields.to_vec();
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", issuer));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let sep = if req_uri.contains('?') { '&' } else { '?' };
    let location = format!("{req_uri}{sep}{query}");
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect_error(state: &AppState, req: &AuthRequest, code: &str, why: &str) -> Response {
    state.engine.count_refusal("oauth", "authorize_refused");
    redirect(
        &state.engine.oauth().issuer(),
        &req.redirect_uri,
        req.state.as_deref(),
        &[("error", code), ("error_description", why)],
    )
}

/// Checks the request. `Err` is the answer: a page while the redirect URI is unproven, a
/// redirect to it afterwards.
async fn validate(state: &AppState, p: &Params) -> Result<AuthRequest, Response> {
    let bad_page = |why: &str| {
        state.engine.count_refusal("oauth", "authorize_refused");
        page::error(StatusCode::BAD_REQUEST, why)
    };
    let Some(client_id) = p.get("client_id") else {
        return Err(bad_page("The request names no client."));
    };
    let client = match state.engine.oauth_store().oauth_client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(bad_page("This application is not known here.")),
        Err(e) => {
            tracing::warn!(error = %e, "authorization request could not be checked");
            return Err(page::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable; try again later.",
            ));
        }
    };
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return Err(bad_page("The request names no redirect URI."));
    };
    if !rules::redirect_allowed(&client.client.redirect_uris, redirect_uri) {
        tracing::info!(client = %client_id, "authorization refused: unregistered redirect URI");
        return Err(bad_page(
            "The redirect URI is not registered for this application.",
        ));
    }
    let mut req = AuthRequest {
        client,
        redirect_uri: redirect_uri.to_string(),
        state: p.get("state").map(str::to_string),
        scope: Vec::new(),
        challenge: String::new(),
        nonce: p.get("nonce").map(str::to_string),
    };
    if p.get("response_type") != Some("code") {
        return Err(redirect_error(
            state,
            &req,
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if !req.client.client.allows_grant("authorization_code") {
        return Err(redirect_error(
            state,
            &req,
            "unauthorized_client",
            "this client may not use authorization_code",
        ));
    }
    match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (Some(c), Some("S256")) if rules::valid_challenge(c) => req.challenge = c.to_string(),
        (Some(_), Some("S256")) => {
            return Err(redirect_error(
                state,
                &req,
                "invalid_request",
                "malformed code_challenge",
            ))
        }
        (None, _) => {
            return Err(redirect_error(
                state,
                &req,
                "invalid_request",
                "PKCE is required: code_challenge with S256",
            ))
        }
        _ => {
            return Err(redirect_error(
                state,
                &req,
                "invalid_request",
                "code_challenge_method must be S256",
            ))
        }
    }
    match allowed_scope(&req.client, p.get("scope").unwrap_or_default()) {
        Ok(s) => req.scope = s,
        Err(e) => {
            let why = e.description.unwrap_or_default();
            return Err(redirect_error(state, &req, "invalid_scope", &why));
        }
    }
    Ok(req)
}

/// The CSRF token of this browser: the cookie's, or a new one to set.
pub(super) fn csrf(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(v) = cookie::read(headers, CSRF_COOKIE) {
        if v.len() == 47 {
            return (v.to_string(), None);
        }
    }
    let token = random_token("csrf");
    let set = HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    ))
    .ok();
    (token, set)
}

/// Whether a form's `csrf` field matches the browser's cookie (constant time).
pub fn csrf_ok(headers: &HeaderMap, p: &Params) -> bool {
    match (cookie::read(headers, CSRF_COOKIE), p.get("csrf")) {
        (Some(c), Some(f)) => c.len() == f.len() && bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    }
}

fn carried(p: &Params) -> Vec<(&'static str, &str)> {
    CARRIED
        .iter()
        .filter_map(|k| p.get(k).map(|v| (*k, v)))
        .collect()
}

fn login_page(
    headers: &HeaderMap,
    p: &Params,
    req: &AuthRequest,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let (token, set) = csrf(headers);
    let mut fields = carried(p);
    fields.push(("csrf", &token));
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m)))
        .unwrap_or_default();
    let name = if req.client.client.description.is_empty() {
        &req.client.client.client_id
    } else {
        &req.client.client.description
    };
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong>{}</strong></p>{error}\
<form method=\"post\" action=\"/oauth/authorize\">{}\
<label for=\"username\">Username</label>\
<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
        esc(name),
        hidden(&fields)
    );
    let mut r = page::html(status, "Sign in", &body);
    if let Some(set) = set {
        r.headers_mut().append(header::SET_COOKIE, set);
    }
    r
}

fn consent_page(headers: &HeaderMap, p: &Params, req: &AuthRequest) -> Response {
    let (token, set) = csrf(headers);
    let mut fields = carried(p);
    fields.push(("csrf", &token));
    let scopes: String = req
        .scope
        .iter()
        .map(|s| format!("<li>{}</li>", esc(s)))
        .collect();
    let body = format!(
        "<h1>Allow access?</h1><p><strong>{}</strong> asks to act on your behalf with:</p>\
<ul>{scopes}<li>your roles and permissions</li></ul>\
<form method=\"post\" action=\"/oauth/authorize\">{}\
<button type=\"submit\" name=\"consent\" value=\"allow\">Allow</button> \
<button type=\"submit\" name=\"consent\" value=\"deny\">Deny</button></form>",
        esc(&req.client.client.client_id),
        hidden(&fields)
    );
    let mut r = page::html(StatusCode::OK, "Allow access?", &body);
    if let Some(set) = set {
        r.headers_mut().append(header::SET_COOKIE, set);
    }
    r
}

/// Whether a login may stand behind a grant: the person's own password or their identity
/// provider. An app password or API key is a scoped credential for one program; a session
/// born from one would otherwise mint tokens (and app passwords, on `/account`) beyond its
/// scope.
pub(super) fn interactive(method: &str) -> bool {
    matches!(method, "password" | "oidc")
}

/// The person of the browser's session cookie, if it is a live session.
async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) -> Option<SessionView> {
    let token = cookie::read(headers, SESSION_COOKIE)?;
    match state.engine.bearer(token, ip).await {
        Ok(Some(v)) if v.token.is_some() && interactive(&v.mechanism) => Some(v),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed at the authorization endpoint");
            None
        }
    }
}

pub async fn authorize(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let p = match Params::from_query(query.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                e.description.as_deref().unwrap_or("invalid request"),
            )
        }
    };
    let req = match validate(&state, &p).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match session_of(&state, &headers, ip).await {
        Some(view) => proceed(&state, &headers, &p, &req, &view, None).await,
        None => login_page(&headers, &p, &req, StatusCode::OK, None),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Response {
    let p = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                e.description.as_deref().unwrap_or("invalid request"),
            )
        }
    };
    if !csrf_ok(&headers, &p) {
        state.engine.count_refusal("oauth", "csrf");
        tracing::info!("login form refused: CSRF token missing or wrong");
        return page::error(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back and try again.",
        );
    }
    let req = match validate(&state, &p).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let Some(username) = p.get("username") else {
        // A consent answer: the session cookie says who.
        return match session_of(&state, &headers, ip).await {
            Some(view) => proceed(&state, &headers, &p, &req, &view, p.get("consent")).await,
            None => login_page(&headers, &p, &req, StatusCode::OK, None),
        };
    };
    let password = Zeroizing::new(p.get("password").unwrap_or_default().to_string());
    let attempt = PasswordAttempt {
        frontend: Frontend::Http,
        mechanism: Mechanism::Password,
        username,
        password: Credential::Password(password),
        service: Service::HTTP,
        remote_ip: ip,
    };
    let principal = match state.engine.login(attempt).await {
        Ok(principal) if interactive(principal.method.as_str()) => principal,
        Ok(principal) => {
            tracing::info!(user = %principal.name, method = principal.method.as_str(), "login page refused a scoped credential");
            return login_page(
                &headers,
                &p,
                &req,
                StatusCode::UNAUTHORIZED,
                Some("Wrong username or password."),
            );
        }
        Err(e) => {
            let (status, message) = match e {
                LoginError::RateLimited(_) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts. Wait a while and try again.",
                ),
                LoginError::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is unavailable right now. Try again later.",
                ),
                // One message for every refusal: it tells nothing about the account.
                _ => (StatusCode::UNAUTHORIZED, "Wrong username or password."),
            };
            return login_page(&headers, &p, &req, status, Some(message));
        }
    };
    let view = match state.engine.issue_session(&principal).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store session");
            return page::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now. Try again later.",
            );
        }
    };
    let set_cookie = view.token.as_deref().and_then(|t| {
        let settings = state.settings();
        settings.cookie.session(t, None)
    });
    let mut r = proceed(&state, &headers, &p, &req, &view, None).await;
    if let Some(c) = set_cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// A logged-in person: consent (implicit, remembered or asked), then the code.
async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
    req: &AuthRequest,
    who: &SessionView,
    consent: Option<&str>,
) -> Response {
    let store = state.engine.oauth_store();
    let account = &who.principal.name;
    let client_id = &req.client.client.client_id;
    let scope = req.scope.join(" ");
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "authorization could not be completed");
        page::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now. Try again later.",
        )
    };
    if !req.client.client.first_party {
        match consent {
            Some("deny") => {
                return redirect_error(state, req, "access_denied", "the person declined")
            }
            Some("allow") if csrf_ok(headers, p) => {
                if let Err(e) = store.put_consent(account, client_id, &scope).await {
                    return unavailable(&e);
                }
            }
            _ => {
                let given = match store.consent(account, client_id).await {
                    Ok(g) => g.unwrap_or_default(),
                    Err(e) => return unavailable(&e),
                };
                let given: Vec<&str> = given.split(' ').collect();
                if !req.scope.iter().all(|s| given.contains(&s.as_str())) {
                    return consent_page(headers, p, req);
                }
            }
        }
    }
    let now = state.engine.clock().unix();
    let code = random_token("pac_");
    let body = CodeBody {
        client_id: client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: Some(req.challenge.clone()),
        nonce: req.nonce.clone(),
        account: account.clone(),
        grant: GrantBody {
            sub: who.principal.id.clone(),
            scope,
            directory: who.directory.clone(),
            groups: who.groups.clone(),
            auth_time: now,
            credential: None,
        },
    };
    let Ok(json) = serde_json::to_string(&body) else {
        return unavailable(&"code body");
    };
    if let Err(e) = store
        .insert_code(&token_hash(&code), now + CODE_TTL, &json)
        .await
    {
        return unavailable(&e);
    }
    redirect(
        &state.engine.oauth().issuer(),
        &req.redirect_uri,
        req.state.as_deref(),
        &[("code", &code)],
    )
}
