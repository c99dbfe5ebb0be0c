//! `berth registry gc`: garbage collection of the registry's blobs on a stopped Berth's data
//! dir (a running Berth collects on its own schedule, `--registry-gc-interval`).

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::config::ServeArgs;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Remove blobs no manifest references (older than the grace period) and abandoned uploads
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
}

pub fn run(command: RegistryCommand) -> anyhow::Result<()> {
    let RegistryCommand::Gc(args) = command;
    let settings = args.serve.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let holder = "a running berth holds it; it collects garbage every --registry-gc-interval";
        let store = settings.store.open(&settings.data_dir, holder).await?;
        let registry = crate::serve::open_registry(&settings, store, "localhost", None).await?;
        let report = registry.collect_garbage(std::time::SystemTime::now()).await?;
        println!(
            "removed {} blobs ({} bytes), {} repository links, {} abandoned uploads (grace {:?})",
            report.blobs_removed,
            report.bytes_freed,
            report.links_removed,
            report.uploads_removed,
            Duration::from_secs(settings.registry.gc_grace)
        );
        Ok(())
    })
}
