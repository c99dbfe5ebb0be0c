//! From a container's output to batches of CloudWatch events, without I/O: chunks of stdout
//! and stderr become lines, lines become events (one each, or, with an event-start pattern, a
//! matching line and the lines after it), and events become batches within PutLogEvents'
//! limits. Each stream keeps its own unfinished line and its own multi-line event: a stack
//! trace on stderr is never joined to a line of stdout that happened to arrive between.

use std::time::Duration;

use berth_agent_protocol::logs::InputLogEvent;
use regex::Regex;

/// CloudWatch's largest event: 1 MiB less its 26-byte overhead. Longer lines are split.
pub const MAX_EVENT: usize = 1_048_576 - 26;
/// PutLogEvents' limits.
pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// How long a batch waits for more events, and a multi-line event for its next line.
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// Turns output chunks into events.
pub struct Assembler {
    start: Option<Regex>,
    /// Unfinished lines of stdout (0) and stderr (1).
    partial: [Vec<u8>; 2],
    /// The multi-line event being gathered on stdout (0) and stderr (1): when it began, and
    /// its text.
    pending: [Option<(i64, String)>; 2],
}

fn cut(text: &str, at: usize) -> usize {
    (0..=at.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0)
}

impl Assembler {
    pub fn new(start: Option<Regex>) -> Self {
        Assembler { start, partial: [Vec::new(), Vec::new()], pending: [None, None] }
    }

    /// Feeds a chunk read at `now` (ms); gives the events it completes. Lines are taken from
    /// the chunk where they lie; only a line's unfinished end waits in the stream's buffer.
    pub fn feed(&mut self, stderr: bool, chunk: &[u8], now: i64, out: &mut Vec<InputLogEvent>) {
        let stream = usize::from(stderr);
        let mut rest = chunk;
        if !self.partial[stream].is_empty()
            && let Some(end) = rest.iter().position(|b| *b == b'\n')
        {
            let mut line = std::mem::take(&mut self.partial[stream]);
            line.extend_from_slice(&rest[..end]);
            self.whole_line(stream, &line, now, out);
            line.clear();
            self.partial[stream] = line;
            rest = &rest[end + 1..];
        }
        if self.partial[stream].is_empty() {
            while let Some(end) = rest.iter().position(|b| *b == b'\n') {
                self.whole_line(stream, &rest[..end], now, out);
                rest = &rest[end + 1..];
            }
        }
        self.partial[stream].extend_from_slice(rest);
        // A line that never ends is cut at the largest event.
        while self.partial[stream].len() >= MAX_EVENT {
            let cut: Vec<u8> = self.partial[stream].drain(..MAX_EVENT).collect();
            self.line(stream, String::from_utf8_lossy(&cut).into_owned(), now, out);
        }
    }

    /// A line without its newline (and without a carriage return before it).
    fn whole_line(&mut self, stream: usize, line: &[u8], now: i64, out: &mut Vec<InputLogEvent>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.line(stream, String::from_utf8_lossy(line).into_owned(), now, out);
    }

    fn line(&mut self, stream: usize, line: String, now: i64, out: &mut Vec<InputLogEvent>) {
        let Some(start) = &self.start else {
            split_into(now, line, out);
            return;
        };
        match &mut self.pending[stream] {
            Some((_, text)) if !start.is_match(&line) => {
                text.push('\n');
                text.push_str(&line);
            }
            pending => {
                if let Some((at, text)) = pending.take() {
                    split_into(at, text, out);
                }
                *pending = Some((now, line));
            }
        }
    }

    /// Gives the multi-line events being gathered that began before `idle_since` (ms).
    pub fn flush_idle(&mut self, idle_since: i64, out: &mut Vec<InputLogEvent>) {
        for pending in &mut self.pending {
            if pending.as_ref().is_some_and(|(at, _)| *at <= idle_since)
                && let Some((at, text)) = pending.take()
            {
                split_into(at, text, out);
            }
        }
    }

    /// Gives everything held back: unfinished lines and the pending event (the output ended).
    pub fn finish(&mut self, now: i64, out: &mut Vec<InputLogEvent>) {
        for i in 0..2 {
            let rest = std::mem::take(&mut self.partial[i]);
            if !rest.is_empty() {
                self.line(i, String::from_utf8_lossy(&rest).into_owned(), now, out);
            }
            if let Some((at, text)) = self.pending[i].take() {
                split_into(at, text, out);
            }
        }
    }

    /// Bytes fed but not yet given as events.
    pub fn held_bytes(&self) -> usize {
        let pending: usize = self.pending.iter().flatten().map(|(_, t)| t.len() + 1).sum();
        self.partial.iter().map(Vec::len).sum::<usize>() + pending
    }
}

/// An event, split into several when longer than [`MAX_EVENT`]; empty lines are kept as a
/// single space (CloudWatch refuses empty messages).
fn split_into(at: i64, mut text: String, out: &mut Vec<InputLogEvent>) {
    if text.is_empty() {
        text.push(' ');
    }
    while text.len() > MAX_EVENT {
        let n = cut(&text, MAX_EVENT);
        let rest = text.split_off(n);
        out.push(InputLogEvent { timestamp: at, message: text });
        text = rest;
    }
    out.push(InputLogEvent { timestamp: at, message: text });
}

/// Cuts `events` (in order) into batches PutLogEvents takes; timestamps never go backwards
/// within the stream's order.
pub fn batches(events: Vec<InputLogEvent>) -> Vec<Vec<InputLogEvent>> {
    let mut out: Vec<Vec<InputLogEvent>> = Vec::new();
    let mut size = 0;
    let mut last = i64::MIN;
    let total = events.len();
    for (i, mut e) in events.into_iter().enumerate() {
        e.timestamp = e.timestamp.max(last);
        last = e.timestamp;
        let bytes = e.message.len() + 26;
        let full = out.last().is_none_or(|b| {
            b.len() >= MAX_BATCH_EVENTS
                || size + bytes > MAX_BATCH_BYTES
                || e.timestamp - b[0].timestamp > 23 * 3_600_000
        });
        if full {
            out.push(Vec::with_capacity((total - i).min(MAX_BATCH_EVENTS)));
            size = 0;
        }
        size += bytes;
        out.last_mut().expect("a batch").push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(events: &[InputLogEvent]) -> Vec<&str> {
        events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn chunks_become_lines_per_stream() {
        let mut a = Assembler::new(None);
        let mut out = Vec::new();
        a.feed(false, b"one\ntw", 1, &mut out);
        a.feed(true, b"err\r\n", 2, &mut out);
        a.feed(false, b"o\n\nthree", 3, &mut out);
        assert_eq!(messages(&out), ["one", "err", "two", " "]);
        assert_eq!(a.held_bytes(), 5);
        a.finish(4, &mut out);
        assert_eq!(messages(&out)[4], "three");
        assert_eq!(a.held_bytes(), 0);
    }

    #[test]
    fn a_line_spread_over_chunks_is_joined() {
        let mut a = Assembler::new(None);
        let mut out = Vec::new();
        for chunk in [&b"a"[..], b"b", b"c\r", b"\nd\ne", b"f\n"] {
            a.feed(false, chunk, 1, &mut out);
        }
        assert_eq!(messages(&out), ["abc", "d", "ef"]);
        assert_eq!(a.held_bytes(), 0);
    }

    #[test]
    fn a_start_pattern_gathers_continuation_lines() {
        let mut a = Assembler::new(Some(Regex::new(r"^\[\d").unwrap()));
        let mut out = Vec::new();
        a.feed(false, b"[1] boom\n  at a()\n  at b()\n[2] next\n", 10, &mut out);
        assert_eq!(messages(&out), ["[1] boom\n  at a()\n  at b()"]);
        a.flush_idle(9, &mut out);
        assert_eq!(out.len(), 1, "the pending event is younger than the idle mark");
        a.flush_idle(10, &mut out);
        assert_eq!(messages(&out)[1], "[2] next");
    }

    #[test]
    fn each_stream_gathers_its_own_multi_line_events() {
        let mut a = Assembler::new(Some(Regex::new(r"^\[\d").unwrap()));
        let mut out = Vec::new();
        // stderr's trace begins, a stdout line arrives in between, then the trace goes on.
        a.feed(true, b"[1] boom\n", 10, &mut out);
        a.feed(false, b"[2] done\n", 11, &mut out);
        a.feed(true, b"  at a()\n  at b()\n", 12, &mut out);
        a.finish(13, &mut out);
        let mut got = messages(&out);
        got.sort();
        assert_eq!(got, ["[1] boom\n  at a()\n  at b()", "[2] done"]);
        assert_eq!(a.held_bytes(), 0);
    }

    #[test]
    fn long_lines_are_split_at_the_largest_event() {
        let mut a = Assembler::new(None);
        let mut out = Vec::new();
        let long = "é".repeat(MAX_EVENT);
        a.feed(false, format!("{long}\n").as_bytes(), 1, &mut out);
        assert!(out.len() >= 2);
        assert!(out.iter().all(|e| e.message.len() <= MAX_EVENT));
        assert_eq!(out.iter().map(|e| e.message.as_str()).collect::<String>(), long);
    }

    #[test]
    fn batches_keep_putlogevents_limits_and_order() {
        let events: Vec<InputLogEvent> =
            (0..25_000).map(|i| InputLogEvent { timestamp: 100 - (i % 3), message: "x".repeat(50) }).collect();
        let b = batches(events);
        assert!(b.iter().all(|b| b.len() <= MAX_BATCH_EVENTS));
        assert!(b.iter().all(|b| b.iter().map(|e| e.message.len() + 26).sum::<usize>() <= MAX_BATCH_BYTES));
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 25_000);
        let stamps: Vec<i64> = b.iter().flatten().map(|e| e.timestamp).collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
        let big: Vec<InputLogEvent> =
            (0..3).map(|_| InputLogEvent { timestamp: 1, message: "y".repeat(600_000) }).collect();
        assert_eq!(batches(big).len(), 3);
    }
}
