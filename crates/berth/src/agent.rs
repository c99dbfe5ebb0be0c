//! Running the node agent: `berth agent` on its own, or inside `berth up`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use berth_agent::runtime::Runtime;
use berth_agent::runtime::docker::DockerRuntime;
use berth_agent::runtime::oci::driver::OciRuntime;
use berth_agent::vpc::plan::Cidr;
use berth_agent::vpc::public::PublicSide;
use berth_agent::{Agent, AgentConfig};
use berth_client::ApiClient;

use crate::config::{AgentArgs, AgentOptions};

/// Connects to the runtime the options name; `None` for `--runtime none`. The oci driver
/// keeps images and containers under `state_dir` and runs this binary as its shim.
pub async fn runtime(options: &AgentOptions, state_dir: &Path) -> anyhow::Result<Option<Arc<dyn Runtime>>> {
    match options.runtime.as_str() {
        "none" => Ok(None),
        "oci" => {
            let shim = std::env::current_exe().context("finding the berth binary for the shim")?;
            let driver = OciRuntime::new(state_dir, &options.oci_runtime, shim)
                .with_context(|| format!("--oci-runtime {}", options.oci_runtime))?;
            Ok(Some(Arc::new(driver)))
        }
        _ => Ok(Some(Arc::new(DockerRuntime::connect().await.context("connecting to the Docker Engine")?))),
    }
}

/// `--fargate-runtime auto` becomes the driver's choice; the driver must be able to run the
/// runtime named, or the agent does not start (a wrong setting, unlike an engine not up yet,
/// ends `berth up` too).
pub fn resolve_fargate_runtime(driver: &dyn Runtime, options: &mut AgentOptions) -> anyhow::Result<()> {
    if options.fargate_runtime == crate::config::AUTO_FARGATE_RUNTIME {
        options.fargate_runtime = driver.default_fargate_runtime();
    }
    driver
        .check_runtime(&options.fargate_runtime)
        .with_context(|| format!("--fargate-runtime {}", options.fargate_runtime))
}

/// Where this machine's public addresses live, from `--public-cidr`, `--public-interface` and
/// `--public-gateway` (or the host's default gateway through that interface).
pub async fn public_side(options: &AgentOptions) -> anyhow::Result<Option<PublicSide>> {
    let (Some(cidr), Some(interface)) = (&options.public_cidr, &options.public_interface) else { return Ok(None) };
    let pool = match Cidr::parse(cidr) {
        Some(pool) if pool.to_string() == *cidr && pool.prefix <= 30 => pool,
        _ => anyhow::bail!(
            "--public-cidr {cidr}: expected a block of at least four addresses, A.B.C.D/N with no host bits set"
        ),
    };
    // Looked up whether or not a gateway is given: it also says whether the interface exists.
    let found = berth_agent::vpc::public::default_gateway(interface)
        .await
        .with_context(|| format!("--public-interface {interface}"))?;
    let gateway = match (options.public_gateway, found) {
        (Some(g), _) | (None, Some(g)) => g,
        (None, None) => {
            anyhow::bail!("--public-interface {interface} has no default route through it: give --public-gateway")
        }
    };
    if pool.contains(gateway) {
        anyhow::bail!("--public-gateway {gateway} is inside --public-cidr {cidr}");
    }
    Ok(Some(PublicSide { interface: interface.clone(), pool, gateway }))
}

/// The agent's configuration; `fargate`: whether it lends the machine to FARGATE tasks; `dns`:
/// the nameserver its tasks get unless `--dns-server` names another.
pub fn config(
    options: &AgentOptions,
    cluster: &str,
    region: &str,
    state_dir: PathBuf,
    fargate: bool,
    dns: Option<std::net::IpAddr>,
    public: Option<PublicSide>,
) -> AgentConfig {
    AgentConfig {
        fargate,
        public,
        cluster: cluster.to_string(),
        secrets_dir: options.secrets_dir.clone().unwrap_or_else(|| state_dir.join("secrets")),
        s3_dir: options.s3_dir.clone().unwrap_or_else(|| state_dir.join("s3")),
        state_dir,
        reserved_memory_mib: options.reserved_memory,
        instance_type: options.instance_type.clone(),
        availability_zone: options.availability_zone.clone().unwrap_or_else(|| format!("{region}a")),
        attributes: options.attributes.clone(),
        allow_privileged: options.allow_privileged,
        fargate_runtime: options.fargate_runtime.clone(),
        dns_servers: options.dns_server.or(dns).map(|ip| vec![ip.to_string()]).unwrap_or_default(),
        cleanup_wait: std::time::Duration::from_secs(options.task_cleanup_wait),
        metric_period: std::time::Duration::from_secs(options.metric_period),
        metadata_port: options.task_metadata_port,
    }
}

/// `berth agent`: registers with the server and runs until interrupted.
pub fn run(mut args: AgentArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let driver = self::runtime(&args.agent, &args.state_dir())
            .await?
            .context("--runtime none leaves nothing for an agent to do")?;
        resolve_fargate_runtime(driver.as_ref(), &mut args.agent)?;
        let client = Arc::new(ApiClient::with_servers(&args.server, &args.access_key, &args.secret_key, &args.region)?);
        let public = public_side(&args.agent).await?;
        let config = config(&args.agent, &args.cluster, &args.region, args.state_dir(), args.fargate, None, public);
        let agent = Agent::register(config, Arc::new(berth_agent::control::Remote::new(client)), driver).await?;
        println!("berth agent: container instance {} of cluster {}", agent.instance_arn(), args.cluster);
        tokio::select! {
            result = agent.run() => result.map_err(Into::into),
            _ = crate::serve::shutdown() => Ok(()),
        }
    })
}
