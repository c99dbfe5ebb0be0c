//! In-process tests of the handlers and the domain behind them, over a real store (see
//! `crate::testing`): no HTTP, no containers.

mod contention;
mod fargate;
mod housekeeping;
mod scheduler;
