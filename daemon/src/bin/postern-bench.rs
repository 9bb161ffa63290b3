//! `postern-bench`: a load generator speaking the Dovecot authentication client protocol.
//!
//! Opens C connections to a dovecot-auth server (Postern's listener or Dovecot's own
//! `auth-client` socket), keeps N `AUTH PLAIN` requests in flight on each for a fixed duration,
//! and prints requests/s with the p50/p99 latency of the answers:
//!
//! ```text
//! postern-bench --connect 127.0.0.1:12345 --user alice --password secret -c 4 -n 8 -d 10
//! postern-bench --connect unix:/run/dovecot/auth-client --user alice --password secret
//! ```
//!
//! Every answer must be `OK` for the run to exit 0 (a `FAIL` means the users or passwords
//! differ between the servers being compared). For the soak test (`benches/soak.sh`):
//! `--user-file` spreads the requests over several users, `--rip` names the client address the
//! mail server would pass, and `--allow-temp` counts temporary failures (`FAIL … temp`, a
//! directory outage) apart, as `temp=` at the end of the result line, instead of failing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

#[derive(Debug, Parser)]
#[command(name = "postern-bench", about = "Dovecot auth protocol load generator")]
struct Args {
    /// `host:port` or `unix:/path` of the dovecot-auth server.
    #[arg(long)]
    connect: String,
    #[arg(long, required_unless_present = "user_file")]
    user: Option<String>,
    #[arg(long, required_unless_present = "user_file")]
    password: Option<String>,
    /// `name<TAB>password` lines; the requests go to each user in turn (instead of --user).
    #[arg(long, conflicts_with_all = ["user", "password"])]
    user_file: Option<std::path::PathBuf>,
    /// `rip=` (the mail client's address) of each request: the daemon throttles per address.
    #[arg(long)]
    rip: Option<std::net::IpAddr>,
    /// Count `FAIL … temp` answers as temporary failures (`temp=`), not failures.
    #[arg(long)]
    allow_temp: bool,
    /// `service=` of each request.
    #[arg(long, default_value = "smtp")]
    service: String,
    /// Connections (C).
    #[arg(short = 'c', long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight per connection (N).
    #[arg(short = 'n', long, default_value_t = 8)]
    in_flight: usize,
    /// Seconds to run.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// `host:port` of an HTTP listener whose `/healthz` is timed every 100 ms during the run
    /// (one kept-alive connection; p50/p99/max added to the result line).
    #[arg(long)]
    probe: Option<String>,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    fail: u64,
    temp: u64,
    latencies: Vec<Duration>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.connections == 0 || args.in_flight == 0 {
        bail!("--connections and --in-flight must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// The base64 `resp=` of each user's `AUTH PLAIN`.
fn responses(args: &Args) -> Result<Vec<String>> {
    let pairs = match (&args.user_file, &args.user, &args.password) {
        (Some(path), _, _) => std::fs::read_to_string(path)
            .with_context(|| format!("read {}", path.display()))?
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split_once('\t')
                    .map(|(u, p)| (u.to_owned(), p.to_owned()))
                    .ok_or_else(|| anyhow!("{}: no TAB in {l:?}", path.display()))
            })
            .collect::<Result<Vec<_>>>()?,
        (None, Some(user), Some(password)) => vec![(user.clone(), password.clone())],
        _ => bail!("--user and --password, or --user-file, are required"),
    };
    if pairs.is_empty() {
        bail!("the user file is empty");
    }
    Ok(pairs
        .iter()
        .map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("\0{u}\0{p}")))
        .collect())
}

async fn run(args: Args) -> Result<()> {
    let resps = responses(&args)?;
    let extra = match args.rip {
        Some(ip) => format!("\trip={ip}"),
        None => String::new(),
    };
    let until = Instant::now() + Duration::from_secs_f64(args.duration);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..args.connections {
        // Each connection starts at its own share of the users, so that they do not move in
        // step and K requests visit all K users (they used to start one user apart, so a
        // "first pass" of K requests over 100,000 users saw only the first quarter).
        let mut resp = resps.clone();
        let connections = args.connections.max(1);
        resp.rotate_left((index * resps.len() / connections) % resps.len());
        let (connect, service, n, allow_temp) = (
            args.connect.clone(),
            format!("{}{extra}", args.service),
            args.in_flight,
            args.allow_temp,
        );
        tasks.push(tokio::spawn(async move {
            if let Some(path) = connect.strip_prefix("unix:") {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .with_context(|| format!("connect {connect}"))?;
                connection(stream, &service, &resp, n, until, allow_temp).await
            } else {
                let stream = tokio::net::TcpStream::connect(&connect)
                    .await
                    .with_context(|| format!("connect {connect}"))?;
                stream.set_nodelay(true)?;
                connection(stream, &service, &resp, n, until, allow_temp).await
            }
        }));
    }
    let probe = args
        .probe
        .clone()
        .map(|addr| tokio::spawn(probe_healthz(addr, until)));
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.map_err(|e| anyhow!("connection task: {e}"))??;
        total.ok += tally.ok;
        total.fail += tally.fail;
        total.temp += tally.temp;
        total.latencies.extend(tally.latencies);
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies.sort();
    let pct = |p: f64| percentile(&total.latencies, p);
    let done = total.ok + total.fail + total.temp;
    let probed = match probe {
        Some(task) => {
            let mut l = task.await.map_err(|e| anyhow!("probe task: {e}"))??;
            l.sort();
            format!(
                " probe_p50_ms={:.2} probe_p99_ms={:.2} probe_max_ms={:.2}",
                percentile(&l, 0.50),
                percentile(&l, 0.99),
                percentile(&l, 1.0)
            )
        }
        None => String::new(),
    };
    let temp = if args.allow_temp {
        format!(" temp={}", total.temp)
    } else {
        String::new()
    };
    println!(
        "connections={} in_flight={} requests={} ok={} fail={} seconds={:.2} req_per_s={:.1} p50_ms={:.2} p99_ms={:.2}{probed}{temp}",
        args.connections,
        args.in_flight,
        done,
        total.ok,
        total.fail,
        elapsed,
        done as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
    if total.fail > 0 {
        bail!("{} requests failed", total.fail);
    }
    if done == 0 {
        bail!("no request was answered");
    }
    Ok(())
}

/// The `p` quantile of sorted latencies, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted
        .get(index)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Times `GET /healthz` every 100 ms until `until`, on one kept-alive connection, as a
/// monitoring system would see the daemon while it is loaded.
async fn probe_healthz(addr: String, until: Instant) -> Result<Vec<Duration>> {
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .with_context(|| format!("probe: connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let start = Instant::now();
        write.write_all(request.as_bytes()).await?;
        let mut status = String::new();
        read.read_line(&mut status).await?;
        if !status.starts_with("HTTP/1.1 200") {
            bail!("probe: /healthz answered {status:?}");
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if read.read_line(&mut line).await? == 0 {
                bail!("probe: connection closed");
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        let mut body = vec![0u8; length];
        tokio::io::AsyncReadExt::read_exact(&mut read, &mut body).await?;
        latencies.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(latencies)
}

async fn connection<S>(
    stream: S,
    service: &str,
    resps: &[String],
    n: usize,
    until: Instant,
    allow_temp: bool,
) -> Result<Tally>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut lines = BufReader::new(rd).lines();
    loop {
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("server closed during the handshake"))?;
        if line == "DONE" {
            break;
        }
    }
    wr.write_all(format!("VERSION\t1\t2\nCPID\t{}\n", std::process::id()).as_bytes())
        .await?;
    let mut tally = Tally::default();
    let mut open: HashMap<u32, Instant> = HashMap::new();
    let mut next_id: u32 = 1;
    let mut batch = String::new();
    let mut users = resps.iter().cycle();
    loop {
        batch.clear();
        while open.len() < n && Instant::now() < until {
            let resp = users.next().ok_or_else(|| anyhow!("no user to log in"))?;
            batch.push_str(&format!(
                "AUTH\t{next_id}\tPLAIN\tservice={service}\tsecured\tresp={resp}\n"
            ));
            open.insert(next_id, Instant::now());
            next_id = next_id.wrapping_add(1).max(1);
        }
        if !batch.is_empty() {
            wr.write_all(batch.as_bytes()).await?;
        }
        if open.is_empty() {
            return Ok(tally);
        }
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("server closed the connection"))?;
        let mut fields = line.split('\t');
        let (verb, id) = (
            fields.next().unwrap_or(""),
            fields.next().and_then(|i| i.parse::<u32>().ok()),
        );
        let Some(sent) = id.and_then(|id| open.remove(&id)) else {
            bail!("unexpected line from the server: {line:?}");
        };
        tally.latencies.push(sent.elapsed());
        match verb {
            "OK" => tally.ok += 1,
            "FAIL" if allow_temp && line.split('\t').any(|f| f == "temp") => tally.temp += 1,
            "FAIL" => tally.fail += 1,
            _ => bail!("unexpected answer: {line:?}"),
        }
    }
}
