//! The `awslogs` log driver: each container whose definition asks for it has its output sent
//! to CloudWatch Logs on the control plane, in the group and stream ECS would use.
//!
//! The runtime keeps the output (json-file rotation) as for every container; the driver
//! follows that kept log ([`Runtime::logs`]), so a container never waits for CloudWatch. Before
//! the container starts, [`prepare`] makes the group (`awslogs-create-group`) and the stream;
//! a missing group fails the start as ECS fails it. [`spawn`] then ships lines as events in
//! batches ([`assemble`]), at least every second, and records how far it got in
//! `STATE/awslogs/<container id>`, so a restarted agent goes on from there.

pub mod assemble;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_agent_protocol::ErrorCode;
use berth_agent_protocol::logs::{CreateLogGroup, CreateLogStream, InputLogEvent, PutLogEvents};
use berth_client::ClientError;
use berth_model::awslogs::AwsLogs;
use futures::StreamExt;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use crate::control::ControlPlane;
use crate::runtime::Runtime;
use assemble::{Assembler, FLUSH_AFTER, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, batches};

/// How often the shipper looks at what waits.
const TICK: Duration = Duration::from_millis(250);
/// How often a batch the control plane could not take is tried again before it is dropped.
const ATTEMPTS: u32 = 10;

/// The driver's options of a container definition, when its log driver is `awslogs`.
pub fn of(container: &Map<String, Value>) -> Result<Option<AwsLogs>, String> {
    let Some(log) = container.get("logConfiguration").and_then(Value::as_object) else { return Ok(None) };
    if log.get("logDriver").and_then(Value::as_str) != Some("awslogs") {
        return Ok(None);
    }
    let empty = Map::new();
    let options = log.get("options").and_then(Value::as_object).unwrap_or(&empty);
    AwsLogs::parse(options).map(Some).map_err(|e| format!("CannotStartContainerError: awslogs: {e}"))
}

fn already_exists(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { code: ErrorCode::ResourceAlreadyExists, .. })
}

/// Makes the group (when asked) and the stream; `Err` is why the container cannot start.
pub async fn prepare(control: &dyn ControlPlane, options: &AwsLogs, stream: &str) -> Result<(), String> {
    let fail = |what: &str, e: ClientError| {
        format!("CannotStartContainerError: failed to initialize logging driver: {what}: {e}")
    };
    if options.create_group {
        let input = CreateLogGroup { log_group_name: options.group.clone() };
        match control.create_log_group(&input).await {
            Err(e) if !already_exists(&e) => return Err(fail("failed to create CloudWatch log group", e)),
            _ => {}
        }
    }
    let input = CreateLogStream { log_group_name: options.group.clone(), log_stream_name: stream.to_string() };
    match control.create_log_stream(&input).await {
        Err(e) if !already_exists(&e) => Err(fail("failed to create CloudWatch log stream", e)),
        _ => Ok(()),
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn offset_file(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("awslogs").join(id)
}

/// Where a container's shipping goes.
pub struct Shipping {
    pub runtime: Arc<dyn Runtime>,
    pub control: Arc<dyn ControlPlane>,
    pub state_dir: PathBuf,
    pub container_id: String,
    pub options: AwsLogs,
    pub stream: String,
}

/// Ships a container's output until it ends (the container exited), after `before` (the
/// shipper of the container's previous run) has finished.
pub fn spawn(s: Shipping, before: Option<JoinHandle<()>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(previous) = before {
            let _ = previous.await;
        }
        ship(s).await;
    })
}

/// What waits to be sent: events gathered since the last hand-over to the putter.
#[derive(Default)]
struct Pending {
    events: Vec<InputLogEvent>,
    bytes: usize,
    oldest: Option<tokio::time::Instant>,
}

impl Pending {
    /// Moves the events of `new` in (`new` keeps its room for the next ones).
    fn take(&mut self, new: &mut Vec<InputLogEvent>) {
        if !new.is_empty() && self.events.is_empty() {
            self.oldest = Some(tokio::time::Instant::now());
        }
        self.bytes += new.iter().map(|e| e.message.len() + 26).sum::<usize>();
        self.events.append(new);
    }

    fn due(&self) -> bool {
        self.events.len() >= MAX_BATCH_EVENTS
            || self.bytes >= MAX_BATCH_BYTES
            || self.oldest.is_some_and(|t| t.elapsed() >= FLUSH_AFTER)
    }

    /// The events gathered; room for a full batch is made for the next ones at once rather
    /// than grown a push at a time.
    fn drain(&mut self) -> Vec<InputLogEvent> {
        (self.bytes, self.oldest) = (0, None);
        std::mem::replace(&mut self.events, Vec::with_capacity(MAX_BATCH_EVENTS))
    }
}

/// Puts events (in PutLogEvents batches, in order), then records `shipped` bytes of output as
/// done.
async fn put(s: &Shipping, events: Vec<InputLogEvent>, shipped: u64) {
    for batch in batches(events) {
        let input = PutLogEvents {
            log_group_name: s.options.group.clone(),
            log_stream_name: s.stream.clone(),
            log_events: batch,
        };
        for attempt in 1..=ATTEMPTS {
            match s.control.put_log_events(&input).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => tokio::time::sleep(TICK * attempt).await,
                Err(e) => {
                    tracing::warn!(container = %s.container_id, error = %e, events = input.log_events.len(), "awslogs: a batch was dropped");
                    break;
                }
            }
        }
    }
    let path = offset_file(&s.state_dir, &s.container_id);
    let written = std::fs::create_dir_all(path.parent().expect("a parent"))
        .and_then(|_| std::fs::write(&path, shipped.to_string()));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "awslogs: cannot record how far shipping got");
    }
}

/// Reads the output and hands batches to a putter task, so reading goes on while a batch is
/// being put (in order: one putter, a short queue).
async fn ship(s: Shipping) {
    let s = Arc::new(s);
    let skip: u64 = std::fs::read_to_string(offset_file(&s.state_dir, &s.container_id))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let (handover, mut queue) = tokio::sync::mpsc::channel::<(Vec<InputLogEvent>, u64)>(4);
    let putter = {
        let s = s.clone();
        tokio::spawn(async move {
            while let Some((events, shipped)) = queue.recv().await {
                put(&s, events, shipped).await;
            }
        })
    };
    let mut consumed = 0u64;
    let mut assembler = Assembler::new(s.options.event_start.clone());
    let mut pending = Pending::default();
    let mut output = s.runtime.logs(&s.container_id, true);
    let mut tick = tokio::time::interval(TICK);
    let mut new = Vec::new();
    loop {
        tokio::select! {
            item = output.next() => match item {
                Some(Ok((stderr, chunk))) => {
                    let len = chunk.len() as u64;
                    let from = skip.saturating_sub(consumed).min(len) as usize;
                    consumed += len;
                    assembler.feed(stderr, &chunk[from..], now_ms(), &mut new);
                }
                Some(Err(e)) => {
                    tracing::warn!(container = %s.container_id, error = %e, "awslogs: reading the output failed");
                    break;
                }
                None => break,
            },
            _ = tick.tick() => assembler.flush_idle(now_ms() - FLUSH_AFTER.as_millis() as i64, &mut new),
        }
        pending.take(&mut new);
        if pending.due() && handover.send((pending.drain(), consumed - assembler.held_bytes() as u64)).await.is_err() {
            break;
        }
    }
    let mut rest = Vec::new();
    assembler.finish(now_ms(), &mut rest);
    pending.take(&mut rest);
    let _ = handover.send((pending.drain(), consumed)).await;
    drop(handover);
    let _ = putter.await;
}

#[cfg(test)]
mod tests;
