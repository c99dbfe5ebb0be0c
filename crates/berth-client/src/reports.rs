//! An agent's task state changes, sent in batches: the reports that come in while a request
//! is in flight go together in the next one (`POST /berth/v1/task-states`). A lone report is
//! sent at once; under load, one request carries many.

use std::sync::Arc;

use berth_agent_protocol::ecs::SubmitTaskStateChange;
use berth_agent_protocol::task_states::MAX_REPORTS;
use tokio::sync::{mpsc, oneshot};

use crate::{ApiClient, ClientError};

type Waiting = (SubmitTaskStateChange, oneshot::Sender<Result<(), ClientError>>);

/// One agent's sender of task state changes. Dropping it ends its sending task.
pub struct TaskStateReports {
    queue: mpsc::UnboundedSender<Waiting>,
}

fn stopped() -> ClientError {
    ClientError::Transport("the task state sender has stopped".into())
}

impl TaskStateReports {
    /// Starts the sending task on the current tokio runtime.
    pub fn start(client: Arc<ApiClient>) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(send_batches(client, waiting));
        TaskStateReports { queue }
    }

    /// Sends `report` with whatever else is waiting; answers what became of it, as a
    /// `SubmitTaskStateChange` call would.
    pub async fn submit(&self, report: SubmitTaskStateChange) -> Result<(), ClientError> {
        let (reply, outcome) = oneshot::channel();
        self.queue.send((report, reply)).map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

async fn send_batches(client: Arc<ApiClient>, mut waiting: mpsc::UnboundedReceiver<Waiting>) {
    let mut batch = Vec::new();
    while waiting.recv_many(&mut batch, MAX_REPORTS).await > 0 {
        let (reports, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match client.task_states(reports).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
