//! Socket activation with systemd's own tool: `systemd-socket-activate` binds the sockets,
//! waits for the first connection and only then starts Postern with them (LISTEN_FDS), as
//! `postern.socket` does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use postern_e2e::*;

#[test]
fn sockets_passed_by_systemd_are_served_and_left_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http_port = free_port();
    let stray_port = free_port();
    let auth = dir.path().join("auth");
    let mux = dir.path().join("mux");
    let config = dir.path().join("postern.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
state-dir = "state"

[[listener]]
protocol = "http"
bind = "127.0.0.1:{http_port}"

[[listener]]
protocol = "dovecot-auth"
bind = "unix:{auth}"

# Not passed by systemd: binds its own socket.
[[listener]]
protocol = "saslauthd"
bind = "unix:{mux}"
"#,
            auth = auth.display(),
            mux = mux.display()
        ),
    )
    .expect("config");
    let stderr = dir.path().join("stderr.log");
    let mut child = Command::new("systemd-socket-activate")
        .args([
            "-l".to_string(),
            format!("127.0.0.1:{http_port}"),
            "-l".to_string(),
            auth.display().to_string(),
            // A socket no listener names: logged and closed.
            "-l".to_string(),
            format!("127.0.0.1:{stray_port}"),
            "-E".to_string(),
            "POSTERN_ADMIN_PASSWORD=Activation-admin-pw".to_string(),
            "--".to_string(),
        ])
        .arg(postern_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run systemd-socket-activate (package systemd): {e}"));

    // The sockets exist before Postern runs; the first connection starts it and is answered by
    // it, from the backlog of the socket it was handed.
    within(
        Duration::from_secs(20),
        "systemd-socket-activate listening",
        || auth.exists(),
    );
    let mut http = TcpStream::connect(("127.0.0.1", http_port)).expect("connect");
    http.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    http.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .expect("request");
    let mut reply = String::new();
    http.read_to_string(&mut reply).expect("reply");
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );

    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).expect("stdout") > 0,
            "exited: {banner:?}"
        );
        if line.trim_end() == "ready" {
            break;
        }
        banner.push(line.trim_end().to_string());
    }
    assert!(
        banner.contains(&format!("listening http 127.0.0.1:{http_port}")),
        "{banner:?}"
    );

    // The passed unix socket speaks dovecot-auth.
    let unix = UnixStream::connect(&auth).expect("connect to the passed unix socket");
    unix.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let handshake: Vec<String> = BufReader::new(unix)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l != "DONE")
        .collect();
    assert_eq!(handshake.first().map(String::as_str), Some("VERSION\t1\t2"));
    // The listener systemd did not pass has its own socket.
    assert!(mux.exists());

    let logs = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(
        logs.matches("on a socket passed by systemd").count(),
        2,
        "{logs}"
    );
    assert!(
        logs.contains("no listener binds") && logs.contains(&format!("127.0.0.1:{stray_port}")),
        "{logs}"
    );

    // A reload that rebuilds the HTTP listener (a changed table) gets the passed socket again:
    // binding the port itself would fail, systemd still holds it.
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            &format!("bind = \"127.0.0.1:{http_port}\"\n"),
            &format!("bind = \"127.0.0.1:{http_port}\"\nmax-connections = 77\n"),
        ),
    )
    .expect("rewrite config");
    run(Command::new("kill").args(["-HUP", &child.id().to_string()]));
    within(
        Duration::from_secs(20),
        "the HTTP listener rebuilt on the passed socket",
        || {
            let logs = std::fs::read_to_string(&stderr).unwrap_or_default();
            logs.matches("on a socket passed by systemd").count() == 3
        },
    );
    assert_eq!(
        get(&format!("http://127.0.0.1:{http_port}/healthz"), None).status,
        200
    );
    let logs = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(!logs.contains("listener not started"), "{logs}");

    // systemd-socket-activate exec'd Postern in place: its PID is the daemon's.
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    // Postern removes the socket files it made, never the ones systemd made.
    assert!(!mux.exists(), "own socket left behind");
    assert!(auth.exists(), "the socket unit's file was removed");
}
