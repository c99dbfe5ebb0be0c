//! The engine behind Berth's CloudWatch Logs API, free of the API itself:
//!
//! - [`pattern`]: the filter-pattern language of `FilterLogEvents` and metric filters
//!   (terms, quoted phrases, `-` exclusions, `?` alternatives, regular expressions, JSON
//!   patterns and space-delimited patterns), parsed once and matched against messages;
//! - [`insights`]: the Logs Insights query language's useful subset (`fields`, `filter`,
//!   `parse`, `stats ... by`, `sort`, `limit`, `display`, `dedup`) run over events;
//! - [`segments`]: the events of each log group in append-only segment files, durable before
//!   an append returns, recovered after a crash, read back per stream in timestamp order or
//!   scanned across streams in the order they arrived.
//!
//! Log groups and streams as resources (names, retention, tags) are records of the control
//! plane's store; this crate holds their events.

pub mod insights;
pub mod pattern;
pub mod segments;
