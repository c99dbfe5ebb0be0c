//! How `berth up` and `berth server` are configured: flags, then `BERTH_*` environment
//! variables, then an optional TOML file, then defaults — in that order of precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8600";
pub const DEFAULT_ACCOUNT: &str = "000000000000";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where Berth keeps its state [default: ~/.local/share/berth]
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address and port of the API (and, later, the registry) [default: 127.0.0.1:8600]
    #[arg(long, env = "BERTH_LISTEN")]
    pub listen: Option<String>,
    /// An access key id clients sign with (pair it with --secret-key)
    #[arg(long, env = "BERTH_ACCESS_KEY", requires = "secret_key")]
    pub access_key: Option<String>,
    /// The secret key of --access-key
    #[arg(long, env = "BERTH_SECRET_KEY", requires = "access_key", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// A TOML file of further key pairs: [[credentials]] access_key = "..." secret_key = "..."
    #[arg(long, env = "BERTH_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Account id in every ARN [default: 000000000000]
    #[arg(long, env = "BERTH_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Region Berth reports as its own (clients choose theirs when signing) [default: us-east-1]
    #[arg(long, env = "BERTH_REGION")]
    pub region: Option<String>,
    /// Seconds after its last contact that an agent still counts as connected [default: 60]
    #[arg(long, env = "BERTH_AGENT_TIMEOUT")]
    pub agent_timeout: Option<u64>,
    /// Seconds after its last contact that an agent's tasks are written off as lost and
    /// service tasks replaced elsewhere [default: 300]
    #[arg(long, env = "BERTH_LOST_AGENT_TIMEOUT")]
    pub lost_agent_timeout: Option<u64>,
    /// Seconds a STOPPED task stays describable before it is forgotten, as ECS forgets them
    /// [default: 3600]
    #[arg(long, env = "BERTH_STOPPED_TASK_RETENTION")]
    pub stopped_task_retention: Option<u64>,
    /// The IPv4 block (/16 to /28) of each region's default VPC, used when the default VPC
    /// is first made; a VPC made before keeps its block [default: 172.31.0.0/16]
    #[arg(long, env = "BERTH_VPC_CIDR")]
    pub vpc_cidr: Option<String>,
    /// The address load balancers' listeners bind: every listener of every load balancer
    /// is a port on it [default: 127.0.0.1]
    #[arg(long, env = "BERTH_LB_ADDRESS")]
    pub lb_address: Option<String>,
    /// Where the load balancer's serving threads (one per core) run: `cores` keeps each on
    /// a core of its own, `none` lets the kernel move them [default: cores]
    #[arg(long, env = "BERTH_LB_CPU_AFFINITY")]
    pub lb_cpu_affinity: Option<String>,
    /// A push to a repository that does not exist creates it (ECR's create-on-push)
    #[arg(long, env = "BERTH_REGISTRY_CREATE_ON_PUSH")]
    pub registry_create_on_push: bool,
    /// Seconds between registry garbage collections, 0 for none [default: 3600]
    #[arg(long, env = "BERTH_REGISTRY_GC_INTERVAL")]
    pub registry_gc_interval: Option<u64>,
    /// Seconds an uploaded blob no manifest uses yet is kept (a push in progress) [default: 3600]
    #[arg(long, env = "BERTH_REGISTRY_GC_GRACE")]
    pub registry_gc_grace: Option<u64>,
    /// Seconds between applications of the repositories' lifecycle policies, 0 for none [default: 3600]
    #[arg(long, env = "BERTH_REGISTRY_LIFECYCLE_INTERVAL")]
    pub registry_lifecycle_interval: Option<u64>,
    /// A TOML file of other Berth registries replication may copy to: [[peers]] region = "..."
    /// registry_id = "..." endpoint = "http://HOST:PORT" access_key = "..." secret_key = "..."
    #[arg(long, env = "BERTH_REGISTRY_PEERS_FILE")]
    pub registry_peers_file: Option<PathBuf>,
    /// Where the registry keeps its blobs: `fs` (the data dir) or an S3-compatible bucket that
    /// several servers share, s3://BUCKET[/PREFIX] [default: fs]
    #[arg(long, env = "BERTH_REGISTRY_STORAGE")]
    pub registry_storage: Option<String>,
    /// The S3 endpoint of --registry-storage, e.g. http://minio.internal:9000 [default: AWS S3]
    #[arg(long, env = "BERTH_REGISTRY_S3_ENDPOINT")]
    pub registry_s3_endpoint: Option<String>,
    /// The bucket's region [default: us-east-1]
    #[arg(long, env = "BERTH_REGISTRY_S3_REGION")]
    pub registry_s3_region: Option<String>,
    /// Access key id for the bucket (with --registry-s3-secret-key)
    #[arg(long, env = "BERTH_REGISTRY_S3_ACCESS_KEY")]
    pub registry_s3_access_key: Option<String>,
    /// Secret access key for the bucket
    #[arg(long, env = "BERTH_REGISTRY_S3_SECRET_KEY", hide_env_values = true)]
    pub registry_s3_secret_key: Option<String>,
    /// Address the bucket in the path (http://HOST/BUCKET/KEY), as MinIO and Ceph usually want
    #[arg(long, env = "BERTH_REGISTRY_S3_PATH_STYLE")]
    pub registry_s3_path_style: bool,
    /// Where Berth's DNS server listens (UDP and TCP): ADDR:PORT, `auto` (169.254.169.253:53 on
    /// this machine's loopback, or no DNS server when that cannot be had) or `off`
    #[arg(long, env = "BERTH_DNS_ADDRESS")]
    pub dns_address: Option<String>,
    /// Resolvers the DNS server forwards other names to, ADDR[:PORT] separated by commas
    /// [default: the nameservers of /etc/resolv.conf]
    #[arg(long, env = "BERTH_DNS_FORWARDERS")]
    pub dns_forwarders: Option<String>,
    /// Where the state lives: `embedded` (a file in the data dir) or an etcd cluster that
    /// several servers share, etcd://HOST:PORT[,HOST:PORT...] [default: embedded]
    #[arg(long, env = "BERTH_STORE")]
    pub store: Option<String>,
    /// The key prefix of this deployment's state in etcd [default: berth/]
    #[arg(long, env = "BERTH_ETCD_NAMESPACE")]
    pub etcd_namespace: Option<String>,
    /// etcd user (with --etcd-password)
    #[arg(long, env = "BERTH_ETCD_USER")]
    pub etcd_user: Option<String>,
    /// etcd password of --etcd-user
    #[arg(long, env = "BERTH_ETCD_PASSWORD", hide_env_values = true)]
    pub etcd_password: Option<String>,
    /// PEM file of the CA that signed etcd's certificates: talk TLS to etcd
    #[arg(long, env = "BERTH_ETCD_CA")]
    pub etcd_ca: Option<PathBuf>,
    /// PEM client certificate for etcd (with --etcd-key and --etcd-ca)
    #[arg(long, env = "BERTH_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,
    /// PEM private key of --etcd-cert
    #[arg(long, env = "BERTH_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,
    /// A TOML file with any of the settings above (keys as the flags, with underscores)
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `berth server`: the control plane's settings, and the metric period of its agents.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Seconds between the agents' reports of their tasks' cpu and memory (as they are started
    /// with): the period of the alarms target tracking makes
    #[arg(long, env = "BERTH_METRIC_PERIOD", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub metric_period: u64,
}

/// `--fargate-runtime`'s default: the agent's driver picks.
pub const AUTO_FARGATE_RUNTIME: &str = "auto";

/// How the node agent runs (in `berth up` and `berth agent`).
#[derive(Debug, Clone, Args)]
pub struct AgentOptions {
    /// Container runtime driver: docker (the Docker Engine API), oci (Berth pulls images and
    /// runs them with a runc-compatible runtime) or none (no local agent)
    #[arg(long, env = "BERTH_RUNTIME", default_value = "docker", value_parser = ["docker", "oci", "none"])]
    pub runtime: String,
    /// The runc-compatible runtime the oci driver uses (runc, crun, runsc, youki, or a path)
    #[arg(long, env = "BERTH_OCI_RUNTIME", default_value = "runc")]
    pub oci_runtime: String,
    /// The OCI runtime of FARGATE tasks' containers: berth (Berth's own, run by each
    /// container's shim: no runtime process per start), runc, or runsc (gVisor: a user-space
    /// kernel per task); other than runc needs `--runtime oci`. `auto`: berth with `--runtime
    /// oci` where the host has the cgroup v1 devices controller, else runc
    #[arg(long, env = "BERTH_FARGATE_RUNTIME", default_value = AUTO_FARGATE_RUNTIME)]
    pub fargate_runtime: String,
    /// MiB of the machine's memory kept back from tasks
    #[arg(long, env = "BERTH_RESERVED_MEMORY", default_value_t = 256)]
    pub reserved_memory: i64,
    /// Value of the ecs.instance-type attribute
    #[arg(long, env = "BERTH_INSTANCE_TYPE", default_value = "berth.local")]
    pub instance_type: String,
    /// Value of the ecs.availability-zone attribute [default: REGION + "a"]
    #[arg(long, env = "BERTH_AVAILABILITY_ZONE")]
    pub availability_zone: Option<String>,
    /// A custom attribute NAME=VALUE (repeatable)
    #[arg(long = "attribute", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
    /// Let tasks run privileged containers
    #[arg(long, env = "BERTH_ALLOW_PRIVILEGED")]
    pub allow_privileged: bool,
    /// Seconds a stopped task's containers are kept (for `berth logs`) before removal
    #[arg(long, env = "BERTH_TASK_CLEANUP_WAIT", default_value_t = 600)]
    pub task_cleanup_wait: u64,
    /// Seconds between the reports of the tasks' cpu and memory: the period of the AWS/ECS and
    /// ECS/ContainerInsights metrics (and, in `berth up`, of the alarms target tracking makes)
    #[arg(long, env = "BERTH_METRIC_PERIOD", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub metric_period: u64,
    /// Where secrets named by tasks are read: `repositoryCredentials` naming
    /// `arn:aws:secretsmanager:...:secret:NAME` reads the JSON file DIR/NAME
    /// [default: the agent's state dir + /secrets]
    #[arg(long, env = "BERTH_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Where S3 objects named by tasks are read: an `environmentFiles` entry
    /// `arn:aws:s3:::BUCKET/KEY` reads DIR/BUCKET/KEY [default: the agent's state dir + /s3]
    #[arg(long, env = "BERTH_S3_DIR")]
    pub s3_dir: Option<PathBuf>,
    /// The port of the task metadata endpoint at 169.254.170.2: a number, `auto` (80, or a
    /// free port when another agent on this machine has 80) or `off` (containers get no
    /// ECS_CONTAINER_METADATA_URI variables)
    #[arg(long, env = "BERTH_TASK_METADATA_PORT", default_value = "auto")]
    pub task_metadata_port: berth_agent::metadata::Port,
    /// The nameserver of every task's containers whose definition sets no dnsServers (Berth's
    /// DNS server) [default: in `berth up`, its own DNS server when on port 53; otherwise none,
    /// and containers get the host's resolvers]
    #[arg(long, env = "BERTH_DNS_SERVER")]
    pub dns_server: Option<std::net::IpAddr>,
    /// A block of addresses on the network of --public-interface set aside for this machine's
    /// FARGATE tasks with assignPublicIp ENABLED (each gets one, mapped 1:1 to its private
    /// address); without it such tasks are not placed here (docs/networking.md)
    #[arg(long, env = "BERTH_PUBLIC_CIDR", requires = "public_interface")]
    pub public_cidr: Option<String>,
    /// The host's interface on the network of --public-cidr
    #[arg(long, env = "BERTH_PUBLIC_INTERFACE", requires = "public_cidr")]
    pub public_interface: Option<String>,
    /// The router of that network, through which tasks with a public address reach other
    /// networks [default: the gateway of the host's default route through --public-interface]
    #[arg(long, env = "BERTH_PUBLIC_GATEWAY", requires = "public_cidr")]
    pub public_gateway: Option<std::net::Ipv4Addr>,
}

fn parse_attribute(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {raw:?}")),
    }
}

/// `berth agent`: where the control plane is and how to sign requests to it.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// The control plane's endpoint, e.g. http://10.0.0.5:8600; repeat it (or separate with
    /// commas) for several servers of one store: the agent moves to the next when one fails
    #[arg(long, env = "BERTH_SERVER", value_delimiter = ',', required = true)]
    pub server: Vec<String>,
    /// The cluster to join
    #[arg(long, env = "BERTH_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// Also lend this machine's capacity to FARGATE tasks of every cluster
    #[arg(long, env = "BERTH_FARGATE")]
    pub fargate: bool,
    #[arg(long, env = "BERTH_ACCESS_KEY")]
    pub access_key: String,
    #[arg(long, env = "BERTH_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
    #[arg(long, env = "BERTH_REGION", default_value = DEFAULT_REGION)]
    pub region: String,
    /// Where the agent keeps its identity and task volumes [default: ~/.local/share/berth/agent]
    #[arg(long, env = "BERTH_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentOptions,
}

impl AgentArgs {
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| default_data_dir().join("agent"))
    }
}

/// The optional TOML configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    credentials_file: Option<PathBuf>,
    account_id: Option<String>,
    region: Option<String>,
    agent_timeout: Option<u64>,
    lost_agent_timeout: Option<u64>,
    stopped_task_retention: Option<u64>,
    vpc_cidr: Option<String>,
    lb_address: Option<String>,
    lb_cpu_affinity: Option<String>,
    registry_create_on_push: Option<bool>,
    registry_gc_interval: Option<u64>,
    registry_gc_grace: Option<u64>,
    registry_lifecycle_interval: Option<u64>,
    registry_peers_file: Option<PathBuf>,
    registry_storage: Option<String>,
    registry_s3_endpoint: Option<String>,
    registry_s3_region: Option<String>,
    registry_s3_access_key: Option<String>,
    registry_s3_secret_key: Option<String>,
    registry_s3_path_style: Option<bool>,
    dns_address: Option<String>,
    dns_forwarders: Option<String>,
    store: Option<String>,
    etcd_namespace: Option<String>,
    etcd_user: Option<String>,
    etcd_password: Option<String>,
    etcd_ca: Option<PathBuf>,
    etcd_cert: Option<PathBuf>,
    etcd_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyPair {
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialsFile {
    #[serde(default)]
    credentials: Vec<KeyPair>,
}

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub account_id: String,
    pub region: String,
    pub agent_timeout: u64,
    pub lost_agent_timeout: u64,
    pub stopped_task_retention: u64,
    /// `--vpc-cidr`, checked: the default VPC's block when it is first made.
    pub vpc_cidr: Option<String>,
    /// Where load balancers' listeners bind.
    pub lb_address: std::net::IpAddr,
    /// Where the load balancer's serving threads run.
    pub lb_affinity: berth_lb::Affinity,
    pub keys: Vec<KeyPair>,
    /// Whether the first key pair was generated by this start.
    pub generated_key: bool,
    /// Seconds: the period of the built-in metrics, which target tracking's alarms use
    /// (`--metric-period`, of the local agent in `berth up`).
    pub metric_period: u64,
    pub registry: RegistrySettings,
    /// Berth's DNS server (`--dns-address`, `--dns-forwarders`).
    pub dns: crate::dns::DnsSettings,
    /// Where the state lives (`--store`, `--etcd-*`).
    pub store: crate::store::StoreSettings,
}

/// How the built-in registry behaves.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub create_on_push: bool,
    /// Seconds between garbage collections (0: never).
    pub gc_interval: u64,
    pub gc_grace: u64,
    /// Seconds between lifecycle policy sweeps (0: never).
    pub lifecycle_interval: u64,
    /// Other Berth registries replication may copy to (see `peers`).
    pub peers_file: Option<PathBuf>,
    /// Where blobs live (`--registry-storage`, `--registry-s3-*`).
    pub storage: crate::registry_storage::BlobStorage,
}

pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("berth"),
        _ => {
            std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".local/share/berth")
        }
    }
}

/// The first key pair of a credentials file.
pub fn first_key(path: &Path) -> anyhow::Result<KeyPair> {
    read_credentials(path)?.into_iter().next().with_context(|| format!("{} holds no key pair", path.display()))
}

fn read_credentials(path: &Path) -> anyhow::Result<Vec<KeyPair>> {
    let raw = std::fs::read_to_string(path).with_context(|| format!("reading credentials file {}", path.display()))?;
    let file: CredentialsFile =
        toml::from_str(&raw).with_context(|| format!("parsing credentials file {}", path.display()))?;
    Ok(file.credentials)
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

/// A fresh key pair shaped like AWS's: a 20-character id and a 40-character secret.
fn generate_key() -> KeyPair {
    let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let secret = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    KeyPair { access_key: format!("BKIA{}", random_string(upper, 16)), secret_key: random_string(secret, 40) }
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let raw =
                    std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str(&raw).with_context(|| format!("parsing config {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = self.data_dir.or(file.data_dir).unwrap_or_else(default_data_dir);
        let listen_raw = self.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr =
            listen_raw.parse().with_context(|| format!("--listen {listen_raw}: expected ADDR:PORT"))?;
        let account_id = self.account_id.or(file.account_id).unwrap_or_else(|| DEFAULT_ACCOUNT.to_string());
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("--account-id {account_id}: an account id is 12 digits");
        }
        let region = self.region.or(file.region).unwrap_or_else(|| DEFAULT_REGION.to_string());
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            bail!("--region {region}: use a region name such as us-east-1");
        }
        let agent_timeout = self.agent_timeout.or(file.agent_timeout).unwrap_or(60);
        let lost_agent_timeout = self.lost_agent_timeout.or(file.lost_agent_timeout).unwrap_or(300);
        let stopped_task_retention = self.stopped_task_retention.or(file.stopped_task_retention).unwrap_or(3600);
        let vpc_cidr = self.vpc_cidr.or(file.vpc_cidr);
        if let Some(block) = &vpc_cidr {
            let net = berth_control::vpc::cidr::parse(block)
                .with_context(|| format!("--vpc-cidr {block}: expected an IPv4 block such as 172.31.0.0/16"))?;
            berth_control::vpc::vpcs::check_cidr(&net)
                .with_context(|| format!("--vpc-cidr {block}: must be /16 to /28"))?;
        }
        let lb_raw = self.lb_address.or(file.lb_address).unwrap_or_else(|| "127.0.0.1".to_string());
        let lb_address = lb_raw.parse().with_context(|| format!("--lb-address {lb_raw}: expected an IP address"))?;
        let lb_affinity = match self.lb_cpu_affinity.or(file.lb_cpu_affinity) {
            Some(raw) => raw.parse().map_err(|e| anyhow::anyhow!("--lb-cpu-affinity {raw}: {e}"))?,
            None => berth_lb::Affinity::default(),
        };
        if lost_agent_timeout < agent_timeout {
            bail!("--lost-agent-timeout {lost_agent_timeout} must be at least --agent-timeout {agent_timeout}");
        }

        let mut keys = Vec::new();
        match (self.access_key.or(file.access_key), self.secret_key.or(file.secret_key)) {
            (Some(a), Some(s)) => keys.push(KeyPair { access_key: a, secret_key: s }),
            (None, None) => {}
            _ => bail!("--access-key and --secret-key go together"),
        }
        if let Some(path) = self.credentials_file.or(file.credentials_file) {
            keys.extend(read_credentials(&path)?);
        }
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let mut generated_key = false;
        if keys.is_empty() {
            let path = data_dir.join("credentials.toml");
            if path.exists() {
                keys = read_credentials(&path)?;
            }
            if keys.is_empty() {
                keys.push(generate_key());
                write_private(&path, &toml::to_string(&CredentialsFile { credentials: keys.clone() })?)?;
                generated_key = true;
            }
        }
        let registry = RegistrySettings {
            create_on_push: self.registry_create_on_push || file.registry_create_on_push.unwrap_or(false),
            gc_interval: self.registry_gc_interval.or(file.registry_gc_interval).unwrap_or(3600),
            gc_grace: self.registry_gc_grace.or(file.registry_gc_grace).unwrap_or(3600),
            lifecycle_interval: self.registry_lifecycle_interval.or(file.registry_lifecycle_interval).unwrap_or(3600),
            peers_file: self.registry_peers_file.or(file.registry_peers_file),
            storage: crate::registry_storage::BlobStorage::parse(
                self.registry_storage.or(file.registry_storage).as_deref(),
                crate::registry_storage::S3Flags {
                    endpoint: self.registry_s3_endpoint.or(file.registry_s3_endpoint),
                    region: self.registry_s3_region.or(file.registry_s3_region),
                    access_key: self.registry_s3_access_key.or(file.registry_s3_access_key),
                    secret_key: self.registry_s3_secret_key.or(file.registry_s3_secret_key),
                    path_style: self.registry_s3_path_style || file.registry_s3_path_style.unwrap_or(false),
                },
            )?,
        };
        let dns_address = self.dns_address.or(file.dns_address);
        let dns_forwarders = self.dns_forwarders.or(file.dns_forwarders);
        let dns = crate::dns::DnsSettings::parse(dns_address.as_deref(), dns_forwarders.as_deref())?;
        let etcd = crate::store::EtcdFlags {
            namespace: self.etcd_namespace.or(file.etcd_namespace),
            user: self.etcd_user.or(file.etcd_user),
            password: self.etcd_password.or(file.etcd_password),
            ca: self.etcd_ca.or(file.etcd_ca),
            cert: self.etcd_cert.or(file.etcd_cert),
            key: self.etcd_key.or(file.etcd_key),
        };
        let store = crate::store::StoreSettings::parse(self.store.or(file.store).as_deref(), etcd)?;
        Ok(Settings {
            data_dir,
            listen,
            account_id,
            region,
            agent_timeout,
            lost_agent_timeout,
            stopped_task_retention,
            vpc_cidr,
            lb_address,
            lb_affinity,
            keys,
            generated_key,
            metric_period: 60,
            registry,
            dns,
            store,
        })
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path) -> ServeArgs {
        ServeArgs {
            data_dir: Some(dir.to_path_buf()),
            listen: None,
            access_key: None,
            secret_key: None,
            credentials_file: None,
            account_id: None,
            region: None,
            agent_timeout: None,
            lost_agent_timeout: None,
            stopped_task_retention: None,
            vpc_cidr: None,
            lb_address: None,
            lb_cpu_affinity: None,
            registry_create_on_push: false,
            registry_gc_interval: None,
            registry_gc_grace: None,
            registry_lifecycle_interval: None,
            registry_peers_file: None,
            registry_storage: None,
            registry_s3_endpoint: None,
            registry_s3_region: None,
            registry_s3_access_key: None,
            registry_s3_secret_key: None,
            registry_s3_path_style: false,
            dns_address: None,
            dns_forwarders: None,
            store: None,
            etcd_namespace: None,
            etcd_user: None,
            etcd_password: None,
            etcd_ca: None,
            etcd_cert: None,
            etcd_key: None,
            config: None,
        }
    }

    #[test]
    fn generates_a_key_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = args(dir.path()).resolve().unwrap();
        assert!(first.generated_key);
        assert_eq!(first.keys[0].access_key.len(), 20);
        let second = args(dir.path()).resolve().unwrap();
        assert!(!second.generated_key);
        assert_eq!(first.keys, second.keys);
        assert_eq!(second.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn flags_beat_the_config_file_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("berth.toml");
        std::fs::write(&cfg, "region = \"eu-west-1\"\naccount_id = \"123456789012\"\nlisten = \"127.0.0.1:9000\"\n")
            .unwrap();
        let mut a = args(dir.path());
        a.config = Some(cfg.clone());
        a.region = Some("ap-south-1".into());
        let s = a.resolve().unwrap();
        assert_eq!((s.region.as_str(), s.account_id.as_str(), s.listen.port()), ("ap-south-1", "123456789012", 9000));
        let mut bad = args(dir.path());
        bad.account_id = Some("12".into());
        assert!(bad.resolve().is_err());
        std::fs::write(&cfg, "colour = \"blue\"\n").unwrap();
        let mut unknown = args(dir.path());
        unknown.config = Some(cfg);
        assert!(unknown.resolve().is_err(), "unknown config keys are refused");
    }

    #[test]
    fn the_default_vpc_block_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("berth.toml");
        std::fs::write(&cfg, "vpc_cidr = \"10.20.0.0/16\"\n").unwrap();
        let mut a = args(dir.path());
        a.config = Some(cfg);
        assert_eq!(a.resolve().unwrap().vpc_cidr.as_deref(), Some("10.20.0.0/16"));
        assert_eq!(args(dir.path()).resolve().unwrap().vpc_cidr, None);
        for bad in ["10.20.0.1/16", "10.0.0.0/8", "10.0.0.0/29", "ten"] {
            let mut a = args(dir.path());
            a.vpc_cidr = Some(bad.into());
            let e = a.resolve().unwrap_err().to_string();
            assert!(e.starts_with(&format!("--vpc-cidr {bad}")), "{e}");
        }
    }

    #[test]
    fn the_serving_threads_placement_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(args(dir.path()).resolve().unwrap().lb_affinity, berth_lb::Affinity::Cores);
        let cfg = dir.path().join("berth.toml");
        std::fs::write(&cfg, "lb_cpu_affinity = \"none\"\n").unwrap();
        let mut a = args(dir.path());
        a.config = Some(cfg);
        assert_eq!(a.resolve().unwrap().lb_affinity, berth_lb::Affinity::Unpinned);
        let mut a = args(dir.path());
        a.lb_cpu_affinity = Some("some".into());
        let e = a.resolve().unwrap_err().to_string();
        assert!(e.starts_with("--lb-cpu-affinity some:") && e.contains("expected cores or none"), "{e}");
    }
}
