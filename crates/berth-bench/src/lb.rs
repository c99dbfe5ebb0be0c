//! `berth-bench lb --config FILE [--threads N]`: serves a load balancer configuration (the
//! JSON form of `berth_lb::config::Config`) with Berth's data plane until interrupted, so
//! `bench/lb.py` can measure it beside HAProxy and nginx before `berth up` serves load
//! balancers itself. Prints one JSON line naming each listener's bound address once it
//! listens.

use std::path::PathBuf;

use anyhow::{Context, bail};
use berth_lb::config::Config;
use berth_lb::{Affinity, DataPlane};
use clap::Parser;

#[derive(Parser)]
#[command(name = "berth-bench lb")]
struct LbArgs {
    /// The configuration to serve, as JSON.
    #[arg(long)]
    config: PathBuf,
    /// Serving threads of the data plane.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Where the data plane's serving threads run: `cores` (one each, as `berth up` places
    /// them) or `none`.
    #[arg(long, default_value = "cores")]
    affinity: Affinity,
}

pub fn main(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let args = LbArgs::parse_from(args);
    let text = std::fs::read(&args.config).with_context(|| format!("reading {}", args.config.display()))?;
    let config: Config = serde_json::from_slice(&text).context("parsing the configuration")?;
    // Applies the configuration and waits; the data plane serves on threads of its own.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let data_plane = DataPlane::with_threads(args.threads, args.affinity);
        let errors = data_plane.apply(config.clone()).await;
        if !errors.is_empty() {
            bail!("{}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "));
        }
        let bound: serde_json::Map<String, serde_json::Value> = config
            .listeners
            .iter()
            .filter_map(|l| data_plane.local_addr(&l.arn).map(|a| (l.arn.clone(), a.to_string().into())))
            .collect();
        println!("{}", serde_json::Value::Object(bound));
        tokio::signal::ctrl_c().await?;
        data_plane.shutdown().await;
        Ok(())
    })
}
