//! Starts the store and the API server (and, for `berth up`, a local agent), prints how to
//! reach it, and stops cleanly on SIGINT/SIGTERM.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_api::sigv4::KeyRing;
use berth_api::{App, Config};
use berth_control::Control;
use berth_control::clock::SystemClock;
use berth_control::ids::RandomIds;

use crate::config::{AgentOptions, Settings};

/// Records `--vpc-cidr` and makes the region's default VPC, its default group and a default
/// subnet per known zone (nothing when they were made before).
async fn ensure_default_vpc(control: &Control, cidr: Option<&str>) -> anyhow::Result<()> {
    use berth_control::vpc::{cidr as blocks, defaults};
    let wanted = cidr.and_then(blocks::parse);
    defaults::configure(control, wanted).await?;
    let region = control.region(&control.config.region);
    if let (Some(vpc), Some(net)) = (defaults::ensure(&region).await?, wanted)
        && vpc.cidr != net
    {
        tracing::warn!(vpc = %vpc.id, cidr = %vpc.cidr, "the default VPC was made before with another block: --vpc-cidr {net} applies to regions whose default VPC is made from now on");
    }
    Ok(())
}

/// Names this server among those sharing a store: its host, data dir and API address (two
/// servers can have neither the same data dir nor the same address on one host).
fn node_name(settings: &Settings) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}@{}", host.trim(), settings.data_dir.display(), settings.listen)
}

/// Serves the API; with `agent` options (`berth up`) also runs a local agent.
pub fn run(settings: Settings, agent: Option<AgentOptions>) -> anyhow::Result<()> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(settings, agent, started))
}

async fn serve(settings: Settings, agent_options: Option<AgentOptions>, started: Instant) -> anyhow::Result<()> {
    let store = settings.store.open(&settings.data_dir, "is another berth running on this data dir?").await?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let endpoint = format!("http://{addr}");
    let keys = KeyRing::new(settings.keys.iter().map(|k| (k.access_key.clone(), k.secret_key.clone())));
    let config = Config { keys, endpoint: endpoint.clone() };
    let domain = berth_control::Config {
        account: settings.account_id.clone(),
        region: settings.region.clone(),
        agent_timeout: Duration::from_secs(settings.agent_timeout),
        lost_agent_timeout: Duration::from_secs(settings.lost_agent_timeout),
        stopped_task_retention: Duration::from_secs(settings.stopped_task_retention),
        node: node_name(&settings),
        metric_period: Duration::from_secs(settings.metric_period),
    };
    let control = Control::new(domain, store.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
    let secrets_dir = agent_options.as_ref().and_then(|o| o.secrets_dir.clone());
    let registry = open_registry(&settings, store.clone(), &local_endpoint(addr), secrets_dir).await?;
    registry.set_peers(Arc::new(crate::peers::load(settings.registry.peers_file.as_deref())?));
    let logs = Arc::new(berth_logs::segments::LogStore::new(settings.data_dir.join("logs")));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let metrics = Arc::new(
        berth_metrics::Metrics::open(&settings.data_dir.join("metrics"), now_ms).context("opening the metrics")?,
    );
    let app = App::new(config, control, registry.clone(), logs, metrics);
    berth_api::ensure_default_cluster(&app).await.context("creating the default cluster")?;
    ensure_default_vpc(&app.control, settings.vpc_cidr.as_deref()).await.context("creating the default VPC")?;
    let stopping = app.clone();
    let server = axum::serve(listener, berth_api::router(app.clone()))
        .with_graceful_shutdown(async move { stopping.closed().await });
    let mut server = tokio::spawn(server.into_future());
    // One server per store runs the service scheduler (see docs/deployments.md).
    tokio::spawn(berth_control::leader::run(app.control.clone()));
    let every = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
    let schedule = berth_control::registry::Schedule {
        gc_every: every(settings.registry.gc_interval),
        lifecycle_every: every(settings.registry.lifecycle_interval),
    };
    berth_control::registry::spawn(app.control.clone(), registry.clone(), schedule);
    // Every server sweeps the log events it stores (they are on its disk, not in the store).
    tokio::spawn(berth_api::logs::retention::run(app.clone()));
    // Alarms are evaluated where the metrics are: on every server, over its own.
    tokio::spawn(berth_api::cloudwatch::alarms::run(app.clone()));
    // Every server serves the load balancers' listeners on its own address.
    let period = Duration::from_secs(settings.metric_period);
    tokio::spawn(crate::balancer::run(
        app.control.clone(),
        settings.lb_address,
        settings.lb_affinity,
        app.metrics.clone(),
        period,
    ));
    let dns = crate::dns::start(&settings.dns, app.control.clone(), settings.lb_address).await?;

    let key = &settings.keys[0];
    let (agent_line, agent_task) = match agent_options {
        None => (None, None),
        Some(mut options) => match crate::agent::runtime(&options, &settings.data_dir.join("agent")).await {
            Ok(Some(driver)) => {
                crate::agent::resolve_fargate_runtime(driver.as_ref(), &mut options)?;
                let public = crate::agent::public_side(&options).await?;
                let name = driver.name();
                let client = berth_client::ApiClient::new(
                    &local_endpoint(addr),
                    &key.access_key,
                    &key.secret_key,
                    &settings.region,
                )?;
                // The machine of `berth up` is Fargate capacity as well as the default
                // cluster's container instance.
                let state_dir = settings.data_dir.join("agent");
                let config = crate::agent::config(
                    &options,
                    "default",
                    &settings.region,
                    state_dir,
                    true,
                    dns.nameserver(),
                    public,
                );
                let control = Arc::new(berth_agent::control::Remote::new(Arc::new(client)));
                let agent =
                    berth_agent::Agent::register(config, control, driver).await.context("starting the local agent")?;
                let line = format!("  agent     {} ({name})", agent.instance_arn());
                (Some(line), Some(tokio::spawn(agent.run())))
            }
            Ok(None) => (Some("  agent     none (--runtime none): tasks stay PENDING".to_string()), None),
            // The oci driver's errors are its settings' (a runtime it cannot use, a state dir it
            // cannot write): they end `berth up`, as a wrong --fargate-runtime does. A Docker
            // Engine not up yet only leaves the machine without an agent.
            Err(e) if options.runtime == "oci" => return Err(e),
            Err(e) => (Some(format!("  agent     none: {e:#}; tasks stay PENDING until an agent joins")), None),
        },
    };

    println!("berth {} ready in {} ms", env!("CARGO_PKG_VERSION"), started.elapsed().as_millis());
    println!("  endpoint  {endpoint}");
    println!("  data dir  {}", settings.data_dir.display());
    if settings.store != crate::store::StoreSettings::Embedded {
        println!("  state     {}", settings.store.describe(&settings.data_dir));
    }
    println!("  region    {}    account {}", settings.region, settings.account_id);
    if let Some(line) = agent_line {
        println!("{line}");
    }
    println!("{}", dns.line());
    if settings.generated_key {
        println!("  a new key pair was generated into {}", settings.data_dir.join("credentials.toml").display());
    }
    println!();
    // The last variable keeps SDKs from prefixing Cloud Map's DiscoverInstances host (`data-`).
    println!(
        "export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION={} AWS_DISABLE_HOST_PREFIX_INJECTION=true",
        key.access_key, key.secret_key, settings.region
    );
    use std::io::Write;
    std::io::stdout().flush().ok();

    tokio::select! {
        _ = shutdown() => {}
        stopped = &mut server => return Ok(stopped??),
    }
    // The local agent first (its containers keep running and are re-adopted on the next
    // start), then open requests are told to finish, then the server drains.
    if let Some(task) = agent_task {
        task.abort();
    }
    app.close();
    server.await??;
    Ok(())
}

/// The registry (its blobs in `<data dir>/registry` or the bucket of `--registry-storage`),
/// reached by clients at `endpoint`. It reads the credentials of pull-through cache rules from
/// `secrets_dir` (the local agent's `--secrets-dir`), by default the agent's
/// `<data dir>/agent/secrets`.
pub async fn open_registry(
    settings: &Settings,
    store: Arc<dyn berth_store::Store>,
    endpoint: &str,
    secrets_dir: Option<std::path::PathBuf>,
) -> anyhow::Result<Arc<berth_registry::Registry>> {
    let options = berth_registry::Options {
        account: settings.account_id.clone(),
        region: settings.region.clone(),
        host: endpoint.trim_start_matches("http://").to_string(),
        create_on_push: settings.registry.create_on_push,
        gc_grace: Duration::from_secs(settings.registry.gc_grace),
        secrets_dir: secrets_dir.unwrap_or_else(|| settings.data_dir.join("agent").join("secrets")),
    };
    let dir = settings.data_dir.join("registry");
    let blobs = settings.registry.storage.open(&dir).await?;
    berth_registry::Registry::open_shared(&dir, store, blobs, options)
        .await
        .with_context(|| format!("opening the registry at {}", dir.display()))
}

/// How a process on this machine reaches the listener (a wildcard address means loopback).
fn local_endpoint(addr: std::net::SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() { std::net::IpAddr::from([127, 0, 0, 1]) } else { addr.ip() };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
