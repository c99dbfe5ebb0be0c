//! Keep-alive connections to one target: HTTP/1.1 connections are handed out one request at
//! a time and come back when the response has been read to its end. Each serving thread has
//! its own idle list (connections live on the thread that opened them), so the lock around a
//! push or pop is never contended.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::upstream::Conn;
use crate::workers;

/// ALB's connection timeout to a target: past it the client gets a 504.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle connection older than this is closed instead of reused (below the keep-alive
/// timeout of common servers, so the target rarely closes one under a new request).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per target at most.
const MAX_IDLE: usize = 1024;

/// Why no connection to the target could be had.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting to the target failed: {0}")]
    Refused(#[from] std::io::Error),
    #[error("connecting to the target timed out")]
    Timeout,
}

type Idle = Mutex<Vec<Conn>>;

#[derive(Debug)]
pub struct Pool {
    address: SocketAddr,
    /// One idle list per serving thread.
    idle: Box<[Idle]>,
}

impl Pool {
    pub fn new(address: SocketAddr, threads: usize) -> Self {
        Self { address, idle: (0..threads.max(1)).map(|_| Mutex::new(Vec::new())).collect() }
    }

    fn mine(&self) -> &Idle {
        &self.idle[workers::slot() % self.idle.len()]
    }

    /// A connection ready for one request, and whether it was reused.
    pub async fn checkout(&self) -> Result<(Conn, bool), ConnectError> {
        loop {
            let popped = self.mine().lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut conn) = popped else { break };
            if conn.idle_since.elapsed() <= IDLE_TIMEOUT && conn.usable() {
                return Ok((conn, true));
            }
        }
        Ok((self.connect().await?, false))
    }

    /// Gives back a connection whose last answer was read to its end; one that cannot carry
    /// another request is closed instead.
    pub fn checkin(&self, mut conn: Conn) {
        if !conn.reusable() {
            return;
        }
        let mut idle = self.mine().lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            conn.idle_since = Instant::now();
            idle.push(conn);
        }
    }

    /// Opens a new connection (not pooled until checked in).
    pub async fn connect(&self) -> Result<Conn, ConnectError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.address))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        stream.set_nodelay(true)?;
        Ok(Conn::new(stream))
    }
}
