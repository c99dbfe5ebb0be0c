//! Starts the store and the API server, prints how to reach it, and stops cleanly on
//! SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_api::sigv4::KeyRing;
use berth_api::{App, Config};
use berth_store::{Embedded, EmbeddedOptions};

use crate::config::Settings;

pub fn run(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(settings, started))
}

async fn serve(settings: Settings, started: Instant) -> anyhow::Result<()> {
    let db = settings.data_dir.join("state.redb");
    let store = Embedded::open(&db, EmbeddedOptions::default()).with_context(|| {
        format!(
            "opening the store at {} (is another berth running on this data dir?)",
            db.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let endpoint = format!("http://{addr}");
    let keys = KeyRing::new(
        settings
            .keys
            .iter()
            .map(|k| (k.access_key.clone(), k.secret_key.clone())),
    );
    let config = Config {
        account: settings.account_id.clone(),
        region: settings.region.clone(),
        keys,
        agent_timeout: Duration::from_secs(settings.agent_timeout),
        endpoint: endpoint.clone(),
    };
    let app = App::new(config, Arc::new(store));
    berth_api::ensure_default_cluster(&app)
        .await
        .context("creating the default cluster")?;

    let key = &settings.keys[0];
    println!(
        "berth {} ready in {} ms",
        env!("CARGO_PKG_VERSION"),
        started.elapsed().as_millis()
    );
    println!("  endpoint  {endpoint}");
    println!("  data dir  {}", settings.data_dir.display());
    println!(
        "  region    {}    account {}",
        settings.region, settings.account_id
    );
    if settings.generated_key {
        println!(
            "  a new key pair was generated into {}",
            settings.data_dir.join("credentials.toml").display()
        );
    }
    println!();
    println!(
        "export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION={}",
        key.access_key, key.secret_key, settings.region
    );
    use std::io::Write;
    std::io::stdout().flush().ok();

    axum::serve(listener, berth_api::router(app))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
