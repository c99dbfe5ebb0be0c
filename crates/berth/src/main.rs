//! The `berth` binary: `berth up` (everything in one process), `berth server` (the control
//! plane alone), `berth agent` (join a machine to a cluster), the commands for people
//! (`berth ps`, `berth logs`, `berth run`, `berth registry gc`, `berth version`), and the
//! hidden `berth shim` the oci driver runs per container and `berth zygote` that forks them.
//!
//! - `config`: flags, environment and config file, resolved into settings;
//! - `serve`: the control plane (and, for `up`, the local agent) in one process;
//! - `agent`: the node agent with its runtime driver;
//! - `dns`: Berth's DNS server in `up` and `server`;
//! - `cli`: the commands for people, through `berth-client`;
//! - `peers`: other Berth registries replication writes to;
//! - `registry`: registry maintenance.

mod agent;
mod balancer;
mod cli;
mod config;
mod dns;
mod peers;
mod registry;
mod registry_storage;
mod serve;
mod store;

// mimalloc, not glibc's malloc: placement and rollouts at thousands of instances allocate and
// free many small records across both runtime workers (docs/performance.md, Scale).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's option setter (the library the allocator above links).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc.h (the same in its v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Keeps freed memory mapped instead of handing it back to the kernel 10 ms later, mimalloc's
/// default: under load the heap is freed and refilled all the time, and each refill then
/// faults and zeroes its pages again (a seventh of the server's CPU in the 5,000-instance
/// scale test, docs/performance.md). The cost is a peak resident size that stays after a
/// peak. `MIMALLOC_PURGE_DELAY` in the environment still decides when it is set.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option by its index; mimalloc reads options at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth", version, about = "A self-hosted container platform that speaks the ECS and ECR APIs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Berth on this machine: API, store, controllers and a local agent in one process.
    Up {
        #[command(flatten)]
        serve: Box<config::ServeArgs>,
        #[command(flatten)]
        agent: config::AgentOptions,
    },
    /// Run the control plane only (API, store, controllers), for agents on other machines.
    Server(config::ServerArgs),
    /// Join this machine to a cluster as a container instance.
    Agent(config::AgentArgs),
    /// List tasks and their status.
    Ps(cli::PsArgs),
    /// Print a task's container output.
    Logs(cli::LogsArgs),
    /// Run an image as a task, the feel of `docker run` on ECS semantics.
    Run(cli::RunArgs),
    /// Take a FARGATE_SPOT task's capacity back, as AWS does when it needs it.
    SpotInterrupt(cli::SpotInterruptArgs),
    /// Registry maintenance.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Print the version.
    Version,
    /// Run one container under an OCI runtime (started by the oci driver, not by people).
    #[command(hide = true)]
    Shim {
        #[arg(long)]
        runtime: String,
        /// A global flag of the runtime, given before each of its commands (repeatable).
        #[arg(long = "runtime-arg", allow_hyphen_values = true)]
        runtime_args: Vec<String>,
        #[arg(long)]
        id: String,
        #[arg(long)]
        bundle: std::path::PathBuf,
        #[arg(long)]
        cgroups_path: String,
    },
    /// Fork shims for the oci driver, which talks to it on standard input (not for people).
    #[command(hide = true)]
    Zygote,
}

fn main() -> anyhow::Result<()> {
    keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up { serve, agent } => {
            let settings = config::Settings { metric_period: agent.metric_period, ..serve.resolve()? };
            serve::run(settings, Some(agent))
        }
        Command::Server(args) => {
            let settings = config::Settings { metric_period: args.metric_period, ..args.serve.resolve()? };
            serve::run(settings, None)
        }
        Command::Agent(args) => agent::run(args),
        Command::Ps(args) => exit_with(cli::ps(args)),
        Command::Logs(args) => exit_with(cli::logs(args)),
        Command::Run(args) => exit_with(cli::run(args)),
        Command::SpotInterrupt(args) => exit_with(cli::spot_interrupt(args)),
        Command::Registry(command) => registry::run(command),
        Command::Shim { runtime, runtime_args, id, bundle, cgroups_path } => {
            let runtime = berth_agent::runtime::oci::runtimes::RuntimeCommand { program: runtime, args: runtime_args };
            Ok(berth_agent::runtime::oci::shim::run(&runtime, &id, &bundle, &cgroups_path)?)
        }
        Command::Zygote => Ok(berth_agent::runtime::oci::zygote::serve(|a| {
            berth_agent::runtime::oci::shim::run(&a.runtime, &a.id, &a.bundle, &a.cgroups_path)
        })?),
        Command::Version => {
            println!("berth {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

/// Ends the process with a command's exit code (as `berth run` passes the task's on).
fn exit_with(code: anyhow::Result<i32>) -> anyhow::Result<()> {
    let code = code?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
