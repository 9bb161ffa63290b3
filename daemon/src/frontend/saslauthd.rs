//! The saslauthd server (Cyrus `mux` socket): one counted-string request per connection,
//! answered `OK` or `NO …`, then closed.
//!
//! User name: the `login` field, or `login@realm` when the client sent a non-empty realm (what
//! saslauthd's `-r` option does). libsasl2 has already split `user@realm` at the last `@`, so
//! a user who typed `alice@example.org` arrives as login `alice`, realm `example.org` and is
//! looked up as `alice@example.org` again; applications that send their host name as the
//! default realm must be configured not to (Cyrus: leave `defaultdomain`/`sasl_realm` unset).
//!
//! Service: Cyrus names POP3 `pop`; it is checked as `pop3` so `pop3-authenticate` applies.

use std::sync::Arc;
use std::time::Duration;

use postern_directory::Credential;
use postern_protocols::saslauthd::{decode_request, Reply, Request, MAX_REQUEST_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::auth::{Engine, Frontend, LoginError, Mechanism, PasswordAttempt};
use crate::authz::Service;

/// Reads one request (within `timeout`), answers it and closes. A truncated request or a
/// timeout closes without an answer, as saslauthd does.
pub async fn handle<S>(
    mut stream: S,
    engine: Arc<Engine>,
    timeout: Duration,
    services: Arc<[String]>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = Instant::now() + timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let request = loop {
        match decode_request(&buf) {
            Ok(Some((request, _))) => break Ok(request),
            Err(e) => break Err(e),
            Ok(None) if buf.len() > MAX_REQUEST_LEN => return,
            Ok(None) => {}
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Ok(_) => {
                tracing::debug!("saslauthd client closed before a complete request");
                return;
            }
            Err(_) => {
                tracing::debug!("saslauthd client too slow; closed");
                return;
            }
        }
    };
    let reply = match request {
        Ok(request) => verify(&engine, &request, &services).await,
        Err(e) => {
            tracing::info!(error = %e, "saslauthd request refused");
            e.reply()
        }
    };
    let _ = stream.write_all(&reply.encode()).await;
    let _ = stream.shutdown().await;
}

async fn verify(engine: &Engine, request: &Request, services: &[String]) -> Reply {
    let username = request.qualified_login();
    let service = match Service::resolve(&request.service, services) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %e, "saslauthd request refused: unknown service (add it to the listener's services to allow it)");
            engine.refused(
                Frontend::Saslauthd,
                Mechanism::Password,
                None,
                "unknown service",
            );
            return Reply::No("authentication failed".into());
        }
    };
    let result = engine
        .login(PasswordAttempt {
            frontend: Frontend::Saslauthd,
            mechanism: Mechanism::Password,
            username: &username,
            password: Credential::password(request.password.as_str()),
            service,
            remote_ip: None,
        })
        .await;
    match result {
        Ok(_) => Reply::Ok,
        Err(
            LoginError::InvalidCredentials
            | LoginError::InvalidRequest(_)
            | LoginError::RateLimited(_),
        ) => Reply::No("authentication failed".into()),
        Err(LoginError::Unavailable | LoginError::Misconfigured) => {
            Reply::No("temporary failure".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::testkit;
    use postern_protocols::saslauthd::encode_request;

    async fn ask(engine: &Arc<Engine>, input: Vec<u8>, close_after: bool) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(4096);
        let task = tokio::spawn(handle(
            server,
            engine.clone(),
            Duration::from_millis(500),
            Arc::from(Vec::new()),
        ));
        client.write_all(&input).await.unwrap();
        if close_after {
            client.shutdown().await.unwrap();
        }
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        task.await.unwrap();
        out
    }

    fn text(reply: &[u8]) -> String {
        assert!(reply.len() >= 2, "no counted string: {reply:?}");
        let len = usize::from(u16::from_be_bytes([reply[0], reply[1]]));
        assert_eq!(reply.len(), 2 + len);
        String::from_utf8(reply[2..].to_vec()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_ok_no_and_protocol_errors() {
        let (_dir, engine) = testkit::engine().await;
        let good = encode_request("alice", testkit::PASSWORD, "imap", "").unwrap();
        assert_eq!(text(&ask(&engine, good, false).await), "OK");
        let bad = encode_request("alice", "wrong", "imap", "").unwrap();
        assert_eq!(
            text(&ask(&engine, bad, false).await),
            "NO authentication failed"
        );
        // The realm qualifies the login: alice@example.org does not exist.
        let realm = encode_request("alice", testkit::PASSWORD, "imap", "example.org").unwrap();
        assert_eq!(
            text(&ask(&engine, realm, false).await),
            "NO authentication failed"
        );
        // No pop3-authenticate for bob ("pop" is Cyrus' name for POP3).
        let pop = encode_request("bob", testkit::PASSWORD, "pop", "").unwrap();
        assert_eq!(
            text(&ask(&engine, pop, false).await),
            "NO authentication failed"
        );
        let imap = encode_request("bob", testkit::PASSWORD, "imap", "").unwrap();
        assert_eq!(text(&ask(&engine, imap, false).await), "OK");
        // A NUL inside a field.
        let nul = encode_request("al\0ice", "x", "imap", "").unwrap();
        assert_eq!(text(&ask(&engine, nul, false).await), "NO ");
        // A truncated length prefix, then EOF: closed without an answer.
        assert!(ask(&engine, vec![0], true).await.is_empty());
        // Truncated and silent: closed after the timeout, no answer.
        assert!(ask(&engine, vec![0, 5, b'a'], false).await.is_empty());
        // An oversized field length is refused at once.
        assert_eq!(text(&ask(&engine, vec![0x10, 0x00], false).await), "NO ");
    }
}
