//! Commands for people, beside the AWS CLI: `berth ps`, `berth logs`, `berth run`. They talk
//! to the API like any client (the same variables the quickstart exports), and read logs from
//! the local container runtime.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_agent::runtime::Runtime;
use berth_agent::runtime::docker::DockerRuntime;
use berth_agent::runtime::oci::driver::OciRuntime;
use berth_client::ApiClient;
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::config::DEFAULT_REGION;

/// Where the API is and how to sign requests to it.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://127.0.0.1:8600")]
    pub endpoint: String,
    /// [default: the first key pair in DATA_DIR/credentials.toml]
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = DEFAULT_REGION)]
    pub region: String,
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

impl ClientArgs {
    fn client(&self) -> anyhow::Result<ApiClient> {
        let (access, secret) = match (&self.access_key, &self.secret_key) {
            (Some(a), Some(s)) => (a.clone(), s.clone()),
            _ => {
                let dir = self.data_dir.clone().unwrap_or_else(crate::config::default_data_dir);
                let pair = crate::config::first_key(&dir.join("credentials.toml"))
                    .context("no credentials: export the line berth up printed, or pass --access-key/--secret-key")?;
                (pair.access_key, pair.secret_key)
            }
        };
        Ok(ApiClient::new(&self.endpoint, &access, &secret, &self.region)?)
    }
}

#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Also show stopped tasks
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Task id or ARN
    pub task: String,
    /// Keep printing what the containers write
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Publish a port: HOST:CONTAINER (HOST 0 picks a free port)
    #[arg(short = 'p', long = "publish")]
    pub ports: Vec<String>,
    /// An environment variable NAME=VALUE
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Hard memory limit in MiB
    #[arg(long, default_value_t = 128)]
    pub memory: i64,
    /// CPU units (1024 = one core)
    #[arg(long)]
    pub cpu: Option<i64>,
    /// Task definition family [default: run-IMAGE]
    #[arg(long)]
    pub name: Option<String>,
    /// Return once the task runs instead of following its output
    #[arg(short, long)]
    pub detach: bool,
    pub image: String,
    /// Command and arguments
    #[arg(last = true)]
    pub command: Vec<String>,
}

fn runtime_block<F: std::future::Future<Output = anyhow::Result<i32>>>(f: F) -> anyhow::Result<i32> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)
}

async fn describe(client: &ApiClient, cluster: &str, tasks: &[Value]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for chunk in tasks.chunks(100) {
        let answer = client.ecs("DescribeTasks", json!({"cluster": cluster, "tasks": chunk})).await?;
        out.extend(answer["tasks"].as_array().cloned().unwrap_or_default());
    }
    Ok(out)
}

fn short_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

pub fn ps(args: PsArgs) -> anyhow::Result<i32> {
    runtime_block(async move {
        let client = args.client.client()?;
        let mut arns = Vec::new();
        let statuses: &[&str] = if args.all { &["RUNNING", "STOPPED"] } else { &["RUNNING"] };
        for status in statuses {
            let mut token: Option<String> = None;
            loop {
                let mut input = json!({"cluster": args.client.cluster, "desiredStatus": status});
                if let Some(t) = &token {
                    input["nextToken"] = json!(t);
                }
                let page = client.ecs("ListTasks", input).await?;
                arns.extend(page["taskArns"].as_array().cloned().unwrap_or_default());
                match page["nextToken"].as_str() {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
        }
        let tasks = describe(&client, &args.client.cluster, &arns).await?;
        println!("{:<34} {:<24} {:<10} {:<10} {:<28} PORTS", "TASK", "DEFINITION", "STATUS", "DESIRED", "CONTAINERS");
        for t in tasks {
            let definition =
                t["taskDefinitionArn"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string();
            let containers: Vec<String> = t["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| match c["exitCode"].as_i64() {
                    Some(code) => format!("{}(exit {code})", c["name"].as_str().unwrap_or("?")),
                    None => format!(
                        "{}({})",
                        c["name"].as_str().unwrap_or("?"),
                        c["lastStatus"].as_str().unwrap_or("?").to_lowercase()
                    ),
                })
                .collect();
            let ports: Vec<String> = t["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["networkBindings"].as_array().cloned().unwrap_or_default())
                .filter(|b| b["bindIP"] != "::")
                .map(|b| {
                    format!("{}->{}/{}", b["hostPort"], b["containerPort"], b["protocol"].as_str().unwrap_or("tcp"))
                })
                .collect();
            println!(
                "{:<34} {:<24} {:<10} {:<10} {:<28} {}",
                short_id(t["taskArn"].as_str().unwrap_or_default()),
                definition,
                t["lastStatus"].as_str().unwrap_or_default(),
                t["desiredStatus"].as_str().unwrap_or_default(),
                containers.join(","),
                ports.join(",")
            );
        }
        Ok(0)
    })
}

/// The runtime driver that runs `task` (its container instance's agent names it in
/// `versionInfo.dockerVersion`), for reading logs on this machine.
async fn runtime_of(client: &ApiClient, args: &ClientArgs, task: &Value) -> anyhow::Result<Box<dyn Runtime>> {
    let described = client
        .ecs(
            "DescribeContainerInstances",
            json!({"cluster": args.cluster, "containerInstances": [task["containerInstanceArn"]]}),
        )
        .await?;
    let driver =
        described["containerInstances"][0]["versionInfo"]["dockerVersion"].as_str().unwrap_or("docker").to_string();
    if driver == "oci" {
        let state = args.data_dir.clone().unwrap_or_else(crate::config::default_data_dir).join("agent");
        let shim = std::env::current_exe()?;
        return Ok(Box::new(OciRuntime::new(&state, "runc", shim).context("reading the oci driver's logs")?));
    }
    Ok(Box::new(DockerRuntime::connect().await.context("reading logs needs the local Docker Engine")?))
}

/// Prints the output of the task's containers; with `follow`, until they exit.
async fn print_logs(runtime: &dyn Runtime, task: &Value, follow: bool) -> anyhow::Result<()> {
    let containers: Vec<(String, String)> = task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["name"].as_str()?.to_string(), c["runtimeId"].as_str()?.to_string())))
        .collect();
    if containers.is_empty() {
        bail!("the task's containers have not been created yet");
    }
    let prefix = containers.len() > 1;
    let streams = containers.iter().map(|(name, id)| runtime.logs(id, follow).map(move |chunk| (name.clone(), chunk)));
    let mut merged = futures::stream::select_all(streams);
    while let Some((name, chunk)) = merged.next().await {
        let (stderr, bytes) = chunk?;
        let text = String::from_utf8_lossy(&bytes);
        let line = if prefix { format!("{name} | {text}") } else { text.into_owned() };
        if stderr {
            eprint!("{line}");
        } else {
            print!("{line}");
            std::io::stdout().flush().ok();
        }
    }
    Ok(())
}

pub fn logs(args: LogsArgs) -> anyhow::Result<i32> {
    runtime_block(async move {
        let client = args.client.client()?;
        let task = describe(&client, &args.client.cluster, &[json!(args.task)]).await?.into_iter().next();
        let task = task.with_context(|| format!("no task {} in cluster {}", args.task, args.client.cluster))?;
        let runtime = runtime_of(&client, &args.client, &task).await?;
        print_logs(runtime.as_ref(), &task, args.follow).await?;
        Ok(0)
    })
}

/// A task definition family from an image reference: `run-` and its last path segment.
fn family_for(image: &str) -> String {
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split(['@', ':']).next().unwrap_or(base);
    let clean: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    format!("run-{clean}")
}

fn port_mappings(ports: &[String]) -> anyhow::Result<Vec<Value>> {
    ports
        .iter()
        .map(|p| {
            let (host, container) = p.split_once(':').with_context(|| format!("-p {p}: expected HOST:CONTAINER"))?;
            let host: u16 = host.parse().with_context(|| format!("-p {p}: bad host port"))?;
            let container: u16 = container.parse().with_context(|| format!("-p {p}: bad container port"))?;
            Ok(json!({"containerPort": container, "hostPort": host, "protocol": "tcp"}))
        })
        .collect()
}

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    runtime_block(async move {
        let client = args.client.client()?;
        let mut container = json!({
            "name": "main", "image": args.image, "memory": args.memory, "essential": true,
            "portMappings": port_mappings(&args.ports)?,
            "environment": args.env.iter().map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                json!({"name": k, "value": v})
            }).collect::<Vec<_>>(),
            "linuxParameters": {"initProcessEnabled": true},
        });
        if !args.command.is_empty() {
            container["command"] = json!(args.command);
        }
        if let Some(cpu) = args.cpu {
            container["cpu"] = json!(cpu);
        }
        let family = args.name.clone().unwrap_or_else(|| family_for(&args.image));
        client.ecs("RegisterTaskDefinition", json!({"family": family, "containerDefinitions": [container]})).await?;
        let started = client
            .ecs("RunTask", json!({"cluster": args.client.cluster, "taskDefinition": family, "startedBy": "berth run"}))
            .await?;
        let Some(arn) = started["tasks"][0]["taskArn"].as_str().map(str::to_string) else {
            bail!("the task was not placed: {}", started["failures"]);
        };
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar.set_message(format!("{} pending", short_id(&arn)));
        let task = loop {
            let task = describe(&client, &args.client.cluster, &[json!(arn)]).await?.remove(0);
            match task["lastStatus"].as_str() {
                Some("RUNNING") | Some("STOPPED") => break task,
                _ if task.get("pullStartedAt").is_some() && task.get("pullStoppedAt").is_none() => {
                    bar.set_message(format!("pulling {}", args.image));
                }
                _ if task.get("pullStoppedAt").is_some() => bar.set_message("starting"),
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        };
        bar.finish_and_clear();
        let id = short_id(&arn).to_string();
        if task["lastStatus"] == "RUNNING" && args.detach {
            println!("{id}");
            return Ok(0);
        }
        // Follow a running task's output; a task that already ended still has its output.
        let has_containers = task["containers"].as_array().into_iter().flatten().any(|c| c.get("runtimeId").is_some());
        if has_containers {
            let runtime = runtime_of(&client, &args.client, &task).await?;
            print_logs(runtime.as_ref(), &task, task["lastStatus"] == "RUNNING").await?;
        }
        let task = loop {
            let task = describe(&client, &args.client.cluster, &[json!(arn)]).await?.remove(0);
            if task["lastStatus"] == "STOPPED" {
                break task;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let code = task["containers"][0]["exitCode"].as_i64();
        if code.is_none() || task["stopCode"] == "TaskFailedToStart" {
            eprintln!("berth run: {id} stopped: {}", task["stoppedReason"].as_str().unwrap_or("unknown reason"));
            return Ok(125);
        }
        Ok(code.unwrap_or(0) as i32)
    })
}

#[derive(Debug, Clone, Args)]
pub struct SpotInterruptArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The task (id or ARN), launched by the FARGATE_SPOT capacity provider
    pub task: String,
    /// Seconds between SIGTERM and SIGKILL
    #[arg(long, default_value_t = berth_agent_protocol::spot::DEFAULT_WARNING)]
    pub warning: u64,
}

/// `berth spot-interrupt`: takes a FARGATE_SPOT task's capacity back, as AWS does when it
/// needs it; prints the task's stop code and reason.
pub fn spot_interrupt(args: SpotInterruptArgs) -> anyhow::Result<i32> {
    runtime_block(async move {
        let client = args.client.client()?;
        let request = berth_agent_protocol::spot::SpotInterruption {
            cluster: Some(args.client.cluster.clone()),
            task: args.task.clone(),
            warning_seconds: Some(args.warning),
        };
        let answer = client.interrupt_spot(&request).await?;
        let task = &answer["task"];
        println!(
            "{} {} ({}); SIGKILL after {} s",
            task["taskArn"].as_str().unwrap_or_default(),
            task["stopCode"].as_str().unwrap_or_default(),
            task["stoppedReason"].as_str().unwrap_or_default(),
            args.warning
        );
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_ports() {
        assert_eq!(family_for("127.0.0.1:5000/hello:1"), "run-hello");
        assert_eq!(family_for("busybox@sha256:abc"), "run-busybox");
        assert_eq!(port_mappings(&["8080:80".into()]).unwrap()[0]["hostPort"], 8080);
        assert!(port_mappings(&["80".into()]).is_err());
    }
}
