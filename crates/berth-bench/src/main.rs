//! `berth-bench`: sends one signed AWS JSON request over and over on N keep-alive
//! connections for a fixed time and reports throughput and latency percentiles as JSON.
//!
//! The request is signed once up front (a SigV4 signature stays valid for 15 minutes), so
//! the client spends its time on I/O, not on hashing; the server still verifies every copy.
//! It runs on one thread so that on a small machine most cores are left to the server.
//!
//! `berth-bench lb ...` instead serves a load balancer configuration (see `lb.rs`);
//! `berth-bench agents ...` simulates many agents for scale tests (see `agents.rs`).

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// The server under load and the key pair requests are signed with.
#[derive(clap::Args, Clone)]
pub struct Server {
    /// e.g. http://127.0.0.1:8600
    #[arg(long)]
    pub endpoint: String,
    #[arg(long)]
    pub access_key: String,
    #[arg(long)]
    pub secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
}

#[derive(Parser, Clone)]
struct Args {
    #[command(flatten)]
    server: Server,
    /// Service name in the signature scope.
    #[arg(long, default_value = "ecs")]
    service: String,
    /// The full X-Amz-Target, e.g. AmazonEC2ContainerServiceV20141113.DescribeTasks
    #[arg(long)]
    target: String,
    /// The JSON request body.
    #[arg(long)]
    body: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of measurement (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

mod agents;
mod lb;

// `berth`'s allocator, so the data plane `berth-bench lb` hosts allocates as it does in
// `berth up` (bench/lb.py sets mimalloc's purge delay through the environment as `berth` does
// in its code).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Outcome {
    latencies_us: Vec<u32>,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("lb") => return lb::main(std::env::args().skip(1)),
        Some("agents") => return agents::main(std::env::args().skip(1)),
        _ => {}
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let host = args
        .server
        .endpoint
        .strip_prefix("http://")
        .context("--endpoint must be http://HOST:PORT")?
        .trim_end_matches('/')
        .to_string();
    let content_type = "application/x-amz-json-1.1";
    let signed = berth_api::sigv4::sign_headers(
        &args.server.access_key,
        &args.server.secret_key,
        &args.server.region,
        &args.service,
        SystemTime::now(),
        "POST",
        "/",
        &[("content-type", content_type), ("host", &host), ("x-amz-target", &args.target)],
        args.body.as_bytes(),
    );
    let mut headers = vec![
        ("content-type".to_string(), content_type.to_string()),
        ("host".to_string(), host.clone()),
        ("x-amz-target".to_string(), args.target.clone()),
    ];
    headers.extend(signed);
    let body = Bytes::from(args.body.clone());

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (host, headers, body) = (host.clone(), headers.clone(), body.clone());
        workers.push(tokio::spawn(async move { worker(&host, &headers, body, measure_from, stop_at).await }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let outcome = w.await??;
        latencies.extend(outcome.latencies_us);
        errors += outcome.errors;
    }
    if latencies.is_empty() {
        bail!("no request succeeded ({errors} errors)");
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    let report = serde_json::json!({
        "requests": latencies.len(),
        "errors": errors,
        "seconds": args.duration,
        "rps": latencies.len() as f64 / args.duration,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "connections": args.connections,
    });
    println!("{report}");
    Ok(())
}

async fn connect(host: &str) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(host).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends requests back to back on one connection, opening a new one whenever the server
/// closes it (servers without keep-alive); a failed request counts as an error.
async fn worker(
    host: &str,
    headers: &[(String, String)],
    body: Bytes,
    measure_from: Instant,
    stop_at: Instant,
) -> anyhow::Result<Outcome> {
    let mut out = Outcome { latencies_us: Vec::with_capacity(1 << 16), errors: 0 };
    let mut sender = None;
    loop {
        let sent = Instant::now();
        if sent >= stop_at {
            return Ok(out);
        }
        let measuring = sent >= measure_from;
        let conn = match &mut sender {
            Some(s) => s,
            None => sender.insert(connect(host).await?),
        };
        if conn.ready().await.is_err() {
            sender = None;
            continue;
        }
        let mut req = Request::post("/");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let outcome = match conn.send_request(req.body(Full::new(body.clone()))?).await {
            Ok(response) => {
                let ok = response.status().is_success();
                response.into_body().collect().await.map(|_| ok).unwrap_or(false)
            }
            Err(_) => {
                sender = None;
                false
            }
        };
        if measuring {
            if outcome {
                out.latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
            } else {
                out.errors += 1;
            }
        }
    }
}
