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
//! differ between the servers being compared).

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
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
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
}

#[derive(Default)]
struct Tally {
    ok: u64,
    fail: u64,
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

async fn run(args: Args) -> Result<()> {
    let resp = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{}\0{}", args.user, args.password));
    let until = Instant::now() + Duration::from_secs_f64(args.duration);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (connect, service, resp, n) = (
            args.connect.clone(),
            args.service.clone(),
            resp.clone(),
            args.in_flight,
        );
        tasks.push(tokio::spawn(async move {
            if let Some(path) = connect.strip_prefix("unix:") {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .with_context(|| format!("connect {connect}"))?;
                connection(stream, &service, &resp, n, until).await
            } else {
                let stream = tokio::net::TcpStream::connect(&connect)
                    .await
                    .with_context(|| format!("connect {connect}"))?;
                stream.set_nodelay(true)?;
                connection(stream, &service, &resp, n, until).await
            }
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.map_err(|e| anyhow!("connection task: {e}"))??;
        total.ok += tally.ok;
        total.fail += tally.fail;
        total.latencies.extend(tally.latencies);
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies.sort();
    let pct = |p: f64| -> f64 {
        if total.latencies.is_empty() {
            return 0.0;
        }
        let index = ((total.latencies.len() - 1) as f64 * p).round() as usize;
        total
            .latencies
            .get(index)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let done = total.ok + total.fail;
    println!(
        "connections={} in_flight={} requests={} ok={} fail={} seconds={:.2} req_per_s={:.1} p50_ms={:.2} p99_ms={:.2}",
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

async fn connection<S>(
    stream: S,
    service: &str,
    resp: &str,
    n: usize,
    until: Instant,
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
    loop {
        batch.clear();
        while open.len() < n && Instant::now() < until {
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
            "FAIL" => tally.fail += 1,
            _ => bail!("unexpected answer: {line:?}"),
        }
    }
}
