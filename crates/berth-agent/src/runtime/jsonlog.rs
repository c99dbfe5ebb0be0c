//! Following a container's kept output in a json-lines file: Docker's json-file format, one
//! `{"log":…,"stream":"stdout"|"stderr",…}` object per line, which the oci shim writes too.
//!
//! The file is read through one open descriptor in large reads, each line is parsed in place,
//! and the messages of consecutive lines of one stream are handed on as one chunk: a chatty
//! container costs a parse per line, not a stream item, a read or a copy of the buffer per
//! line. While following, the end of the file is polled; the output ends once the container
//! is seen to have exited and one more read found nothing new. A file replaced or truncated
//! under the reader (the writer's rotation) is read again from its start.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;

use super::{BoxFuture, LogStream, RuntimeError};

/// How long the reader waits at the end of the file before it looks again.
const POLL: Duration = Duration::from_millis(20);
/// How many empty looks pass between two questions whether the container exited.
const LOOKS_PER_EXIT_CHECK: u32 = 4;
/// The most one read takes from the file.
const READ: usize = 1 << 20;
/// The most output one chunk carries.
const CHUNK: usize = 256 << 10;

/// One line of the file, when it is not laid out as [`direct`] reads it; other members
/// (`time`) are not needed to follow it.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
}

/// Whether the container has exited (asked only at the end of the file, while following).
pub type Exited<'a> = Box<dyn FnMut() -> BoxFuture<'a, bool> + Send + 'a>;

struct Reader {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// The inode `file` was opened at, to notice the path naming a new file.
    inode: u64,
    /// How far `file` was read.
    offset: u64,
    /// Bytes read and not yet parsed: at most a part of one line.
    partial: Vec<u8>,
    ready: VecDeque<(bool, Bytes)>,
}

impl Reader {
    /// Appends what the file holds past `offset` to `partial` (up to [`READ`] bytes); the
    /// number of bytes read. At the end of the file, a path that names a new file, or a file
    /// shorter than what was read, is read again from its start.
    fn read_more(&mut self) -> std::io::Result<usize> {
        let Some(file) = self.file.as_mut() else {
            match std::fs::File::open(&self.path) {
                Ok(file) => (self.inode, self.file) = (file.metadata()?.ino(), Some(file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            }
            return self.read_more();
        };
        let before = self.partial.len();
        file.take(READ as u64).read_to_end(&mut self.partial)?;
        let got = self.partial.len() - before;
        self.offset += got as u64;
        if got > 0 {
            return Ok(got);
        }
        let (replaced, cut) = match std::fs::metadata(&self.path) {
            Ok(m) => (m.ino() != self.inode, m.len() < self.offset),
            Err(_) => (false, false),
        };
        if replaced {
            (self.file, self.offset) = (None, 0);
        } else if cut {
            file.seek(SeekFrom::Start(0))?;
            self.offset = 0;
        } else {
            return Ok(0);
        }
        // What was left of a line in the old file or the cut part ends nowhere.
        self.partial.clear();
        self.read_more()
    }

    /// Parses the whole lines of `partial` into `ready`.
    fn parse(&mut self) {
        let mut start = 0;
        let mut chunk: Option<(bool, BytesMut)> = None;
        let mut log = Vec::new();
        while let Some(end) = self.partial[start..].iter().position(|b| *b == b'\n') {
            let raw = &self.partial[start..start + end];
            start += end + 1;
            let stderr = match decode(raw, &mut log) {
                Some(stderr) => stderr,
                None => {
                    tracing::warn!(path = %self.path.display(), "a log line that is not json was skipped");
                    continue;
                }
            };
            match &mut chunk {
                Some((s, bytes)) if *s == stderr && bytes.len() < CHUNK => bytes.extend_from_slice(&log),
                _ => {
                    if let Some((s, bytes)) = chunk.take() {
                        self.ready.push_back((s, bytes.freeze()));
                    }
                    // Room for the chunk at once, not grown (and copied) as lines come: the
                    // messages of what is left to parse are no longer than its lines.
                    let room = (self.partial.len() - start).min(CHUNK) + log.len();
                    let mut bytes = BytesMut::with_capacity(room);
                    bytes.extend_from_slice(&log);
                    chunk = Some((stderr, bytes));
                }
            }
        }
        if let Some((s, bytes)) = chunk {
            self.ready.push_back((s, bytes.freeze()));
        }
        self.partial.drain(..start);
    }
}

/// One line's message into `log` and whether it is stderr's; `None` for a line that is not a
/// log line. The writers' own layout (`log` and `stream` first, in either order) is read
/// directly; any other goes through serde.
fn decode(raw: &[u8], log: &mut Vec<u8>) -> Option<bool> {
    log.clear();
    if let Some(stderr) = direct(raw, log) {
        return Some(stderr);
    }
    log.clear();
    let line = serde_json::from_slice::<Line>(raw).ok()?;
    log.extend_from_slice(line.log.as_bytes());
    Some(line.stream == "stderr")
}

/// `{"log":"…","stream":"…"` or `{"stream":"…","log":"…"`, the rest of the line unread.
fn direct(raw: &[u8], log: &mut Vec<u8>) -> Option<bool> {
    let mut at = raw.strip_prefix(b"{")?;
    let (mut stderr, mut got_log) = (None, false);
    loop {
        if let Some(rest) = at.strip_prefix(b"\"log\":\"") {
            at = unescape(rest, log)?;
            got_log = true;
        } else if let Some(rest) = at.strip_prefix(b"\"stream\":\"") {
            let end = rest.iter().position(|b| *b == b'"')?;
            stderr = Some(&rest[..end] == b"stderr");
            at = &rest[end + 1..];
        } else {
            return None;
        }
        if got_log && let Some(stderr) = stderr {
            return Some(stderr);
        }
        at = at.strip_prefix(b",")?;
    }
}

/// Appends the JSON string that `raw` begins with (its opening quote already taken) to
/// `out`, unescaped; what follows its closing quote.
fn unescape<'r>(raw: &'r [u8], out: &mut Vec<u8>) -> Option<&'r [u8]> {
    let hex = |at: usize| -> Option<u32> {
        let digits = std::str::from_utf8(raw.get(at..at + 4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let mut i = 0;
    loop {
        let j = i + raw[i..].iter().position(|b| *b == b'"' || *b == b'\\')?;
        out.extend_from_slice(&raw[i..j]);
        if raw[j] == b'"' {
            return Some(&raw[j + 1..]);
        }
        i = j + 2;
        let byte = match *raw.get(j + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let high = hex(i)?;
                i += 4;
                let code = if (0xd800..0xdc00).contains(&high) {
                    // A pair of surrogates, or not a string serde takes either.
                    if raw.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let low = hex(i + 2)?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return None;
                    }
                    i += 6;
                    0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                } else {
                    high
                };
                let c = char::from_u32(code)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(byte);
    }
}

/// Where [`follow`] is.
struct Following<'a> {
    reader: Reader,
    /// `None` when not following: the output ends at the end of the file.
    exited: Option<Exited<'a>>,
    /// Empty looks at the end of the file since the last new output.
    looks: u32,
    /// The container was seen to have exited: one more read ends the output.
    exit_seen: bool,
    done: bool,
}

/// The output kept in json-lines file `path`: what it holds, and with `exited`, what is
/// written to it until the container exits.
pub fn follow<'a>(path: PathBuf, exited: Option<Exited<'a>>) -> LogStream<'a> {
    let reader = Reader { path, file: None, inode: 0, offset: 0, partial: Vec::new(), ready: VecDeque::new() };
    let start = Following { reader, exited, looks: 0, exit_seen: false, done: false };
    Box::pin(futures::stream::unfold(start, |mut at| async move {
        loop {
            if let Some(chunk) = at.reader.ready.pop_front() {
                return Some((Ok(chunk), at));
            }
            if at.done {
                return None;
            }
            // The read (a system call that may wait for the disk) on the blocking pool, into
            // room made here; the parse here, so what it allocates is this thread's (memory a
            // pool thread allocated and another thread frees is slow to be reused).
            let mut reader = at.reader;
            reader.partial.reserve(READ);
            let (mut reader, got) = tokio::task::spawn_blocking(move || {
                let got = reader.read_more();
                (reader, got)
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            reader.parse();
            at.reader = reader;
            match got {
                Ok(0) => {}
                Ok(_) => {
                    at.looks = 0;
                    continue;
                }
                Err(e) => {
                    at.done = true;
                    let what = format!("reading {}: {e}", at.reader.path.display());
                    return Some((Err(RuntimeError::Inspect(what)), at));
                }
            }
            let Some(exited) = at.exited.as_mut() else {
                at.done = true;
                continue;
            };
            if at.exit_seen {
                at.done = true;
                continue;
            }
            at.looks += 1;
            if at.looks % LOOKS_PER_EXIT_CHECK == 0 && exited().await {
                at.exit_seen = true;
                continue;
            }
            tokio::time::sleep(POLL).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::StreamExt;

    use super::*;

    fn line(stream: &str, log: &str) -> String {
        format!("{}\n", serde_json::json!({ "log": log, "stream": stream, "time": "2026-12-02T07:00:00.000000001Z" }))
    }

    fn append(path: &std::path::Path, text: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
    }

    async fn all(stream: LogStream<'_>) -> Vec<(bool, String)> {
        let chunks: Vec<_> = stream.map(|c| c.unwrap()).collect().await;
        chunks.into_iter().map(|(e, b)| (e, String::from_utf8(b.to_vec()).unwrap())).collect()
    }

    fn exited_when(flag: &Arc<AtomicBool>) -> Exited<'static> {
        let flag = flag.clone();
        Box::new(move || Box::pin(std::future::ready(flag.load(Ordering::SeqCst))))
    }

    #[tokio::test]
    async fn lines_of_one_stream_come_as_one_chunk_and_streams_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let text = [line("stdout", "a\n"), line("stdout", "b\n"), line("stderr", "oops\n"), line("stdout", "c")];
        append(&path, &text.concat());
        append(&path, "{\"log\":\"half"); // a line not finished yet is not given
        let got = all(follow(path, None)).await;
        assert_eq!(got, vec![(false, "a\nb\n".to_string()), (true, "oops\n".to_string()), (false, "c".to_string())]);
    }

    /// The writers' layout read directly gives what serde gives, escapes and all.
    #[test]
    fn lines_read_directly_match_serde() {
        let messages =
            ["plain\n", "quote \" back \\ slash /\n", "tab\tcr\r\u{8}\u{c}", "<&> \u{1}", "é 中 😀\n", "", "\u{7f}"];
        for message in messages {
            for stream in ["stdout", "stderr"] {
                let docker =
                    format!("{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"t\"}}", serde_json::json!(message));
                let shim = serde_json::to_string(&super::super::oci::shim::LogLine {
                    stream: stream.into(),
                    log: message.into(),
                    time: 1.5,
                })
                .unwrap();
                // Go escapes <, > and & and writes some characters as \u escapes.
                let go = docker.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
                let go = go.replace("😀", "\\ud83d\\ude00").replace("é", "\\u00e9");
                for line in [docker, shim, go] {
                    let mut log = Vec::new();
                    assert_eq!(direct(line.as_bytes(), &mut log), Some(stream == "stderr"), "{line}");
                    assert_eq!(String::from_utf8(log).unwrap(), message, "{line}");
                }
            }
        }
        let mut log = Vec::new();
        for odd in [r#"{"time":"t","log":"x","stream":"stdout"}"#, r#"{ "log": "x", "stream": "stdout" }"#] {
            assert_eq!(direct(odd.as_bytes(), &mut log), None, "{odd}");
            assert_eq!(decode(odd.as_bytes(), &mut log), Some(false), "{odd}");
            assert_eq!(log, b"x");
        }
        for bad in [r#"{"log":"\ud800","stream":"stdout"}"#, r#"{"log":"\q","stream":"stdout"}"#, r#"{"log":"open"#] {
            assert_eq!(decode(bad.as_bytes(), &mut log), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_line_that_is_not_json_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        append(&path, &format!("{}not json\n{}", line("stdout", "1\n"), line("stdout", "2\n")));
        assert_eq!(all(follow(path, None)).await, vec![(false, "1\n2\n".to_string())]);
    }

    #[tokio::test]
    async fn following_reads_what_is_written_until_the_exit_and_then_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let exited = Arc::new(AtomicBool::new(false));
        let writer = {
            let (path, exited) = (path.clone(), exited.clone());
            std::thread::spawn(move || {
                for n in 0..200 {
                    append(&path, &line("stdout", &format!("{n}\n")));
                    if n % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(30));
                    }
                }
                exited.store(true, Ordering::SeqCst);
            })
        };
        let got: String = all(follow(path, Some(exited_when(&exited)))).await.into_iter().map(|(_, t)| t).collect();
        writer.join().unwrap();
        let want: String = (0..200).map(|n| format!("{n}\n")).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_file_replaced_under_the_reader_is_read_to_its_end_then_the_new_one_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let exited = Arc::new(AtomicBool::new(false));
        append(&path, &line("stdout", "old 1\n"));
        let mut output = follow(path.clone(), Some(exited_when(&exited)));
        let first = output.next().await.unwrap().unwrap();
        assert_eq!(&first.1[..], b"old 1\n");
        // The writer's last line in the old file, then its rotation to a new file.
        append(&path, &line("stdout", "old 2\n"));
        std::fs::rename(&path, dir.path().join("log.json.1")).unwrap();
        append(&path, &line("stdout", "new 1\n"));
        exited.store(true, Ordering::SeqCst);
        let rest: String = all(output).await.into_iter().map(|(_, t)| t).collect();
        assert_eq!(rest, "old 2\nnew 1\n");
    }

    #[tokio::test]
    async fn a_file_cut_short_under_the_reader_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let exited = Arc::new(AtomicBool::new(false));
        append(&path, &line("stdout", "before the cut, a long line\n"));
        let mut output = follow(path.clone(), Some(exited_when(&exited)));
        output.next().await.unwrap().unwrap();
        std::fs::write(&path, line("stdout", "after\n")).unwrap();
        exited.store(true, Ordering::SeqCst);
        let rest: String = all(output).await.into_iter().map(|(_, t)| t).collect();
        assert_eq!(rest, "after\n");
    }

    #[tokio::test]
    async fn a_file_not_there_yet_is_waited_for_while_following_and_is_empty_output_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        assert!(all(follow(path.clone(), None)).await.is_empty());
        let exited = Arc::new(AtomicBool::new(false));
        let output = follow(path.clone(), Some(exited_when(&exited)));
        let later = {
            let exited = exited.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                append(&path, &line("stderr", "late\n"));
                exited.store(true, Ordering::SeqCst);
            })
        };
        assert_eq!(all(output).await, vec![(true, "late\n".to_string())]);
        later.join().unwrap();
    }
}
