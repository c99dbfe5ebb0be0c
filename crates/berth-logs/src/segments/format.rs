//! The bytes of a segment: encoding records, replaying a segment, decoding one batch.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Event, LogError, LogResult, io_at};

const BATCH: u8 = 1;
const DELETED: u8 = 2;
const HEADER: usize = 8;

pub(crate) enum Record {
    Batch { seq: u64, stream: String, events: Vec<Event> },
    Deleted { seq: u64, stream: String },
}

fn frame(kind: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 1 + body.len());
    out.extend_from_slice(&((body.len() + 1) as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(&body);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&body);
    out
}

fn put_name(body: &mut Vec<u8>, stream: &str) -> LogResult<()> {
    let len = u16::try_from(stream.len()).map_err(|_| LogError::NameTooLong(stream.len()))?;
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(stream.as_bytes());
    Ok(())
}

pub(crate) fn batch(seq: u64, stream: &str, events: &[Event]) -> LogResult<Vec<u8>> {
    let size: usize = events.iter().map(|e| 20 + e.message.len()).sum();
    let mut body = Vec::with_capacity(16 + stream.len() + size);
    body.extend_from_slice(&seq.to_le_bytes());
    put_name(&mut body, stream)?;
    body.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for e in events {
        let len = u32::try_from(e.message.len()).map_err(|_| LogError::TooLarge(e.message.len()))?;
        body.extend_from_slice(&e.timestamp.to_le_bytes());
        body.extend_from_slice(&e.ingestion_time.to_le_bytes());
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(e.message.as_bytes());
    }
    Ok(frame(BATCH, body))
}

pub(crate) fn deletion(seq: u64, stream: &str) -> LogResult<Vec<u8>> {
    let mut body = Vec::with_capacity(10 + stream.len());
    body.extend_from_slice(&seq.to_le_bytes());
    put_name(&mut body, stream)?;
    Ok(frame(DELETED, body))
}

/// A cursor over a record's body.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("a record ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn str(&mut self, n: usize) -> Result<&'a str, String> {
        std::str::from_utf8(self.take(n)?).map_err(|_| "text that is not UTF-8".to_string())
    }
    fn name(&mut self) -> Result<&'a str, String> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        self.str(n)
    }
}

/// One event of a batch as it lies in the record: timestamp, ingestion time, message bytes
/// (UTF-8, as they were put).
pub(crate) type Borrowed<'a> = (i64, i64, &'a [u8]);

/// A batch record's body read in place: its number, stream and events.
pub(crate) fn parse_batch(body: &[u8]) -> Result<(u64, &str, Vec<Borrowed<'_>>), String> {
    let mut b = Body(body);
    let seq = b.u64()?;
    let stream = b.name()?;
    let count = b.u32()? as usize;
    let mut events = Vec::with_capacity(count.min(10_000));
    for _ in 0..count {
        let timestamp = b.i64()?;
        let ingestion_time = b.i64()?;
        let len = b.u32()? as usize;
        events.push((timestamp, ingestion_time, b.take(len)?));
    }
    Ok((seq, stream, events))
}

/// Decodes a record's kind and body (checksum already verified).
pub(crate) fn decode(kind: u8, body: &[u8]) -> Result<Record, String> {
    match kind {
        BATCH => {
            let (seq, stream, events) = parse_batch(body)?;
            let mut out = Vec::with_capacity(events.len());
            for (timestamp, ingestion_time, m) in events {
                let message = String::from_utf8(m.to_vec()).map_err(|_| "a message that is not UTF-8".to_string())?;
                out.push(Event { timestamp, ingestion_time, message });
            }
            Ok(Record::Batch { seq, stream: stream.to_string(), events: out })
        }
        DELETED => {
            let mut b = Body(body);
            let seq = b.u64()?;
            Ok(Record::Deleted { seq, stream: b.name()?.to_string() })
        }
        other => Err(format!("unknown record kind {other}")),
    }
}

pub(crate) const KIND_BATCH: u8 = BATCH;

/// How a replay ended: at the clean end of the file (its length), or at a record that is
/// torn or damaged (its offset).
pub(crate) enum End {
    Clean(u64),
    Torn { offset: u64, why: String },
}

/// Reads one framed record from `r`: Ok(None) at a clean end of file; Err(why) when torn.
pub(crate) fn next_record(r: &mut impl Read, scratch: &mut Vec<u8>) -> io::Result<Result<Option<(u8, usize)>, String>> {
    let mut header = [0u8; HEADER];
    match read_full(r, &mut header)? {
        0 => return Ok(Ok(None)),
        n if n < HEADER => return Ok(Err("a record header ends early".into())),
        _ => {}
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len == 0 {
        return Ok(Err("an empty record".into()));
    }
    scratch.resize(len, 0);
    if read_full(r, scratch)? < len {
        return Ok(Err("a record ends early".into()));
    }
    if crc32fast::hash(scratch) != crc {
        return Ok(Err("a record's checksum does not match".into()));
    }
    Ok(Ok(Some((scratch[0], HEADER + len))))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Replays every record of a segment in order, giving each with its offset.
pub(crate) fn replay(path: &Path, mut each: impl FnMut(u64, Record)) -> LogResult<End> {
    let file = File::open(path).map_err(io_at(path))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut scratch = Vec::new();
    let mut offset = 0u64;
    loop {
        match next_record(&mut r, &mut scratch).map_err(io_at(path))? {
            Ok(None) => return Ok(End::Clean(offset)),
            Ok(Some((kind, len))) => match decode(kind, &scratch[1..]) {
                Ok(record) => {
                    each(offset, record);
                    offset += len as u64;
                }
                Err(why) => return Ok(End::Torn { offset, why }),
            },
            Err(why) => return Ok(End::Torn { offset, why }),
        }
    }
}

/// Reads the batch record at `offset` of a segment.
pub(crate) fn read_batch(path: &Path, offset: u64) -> LogResult<(u64, Vec<Event>)> {
    let file = File::open(path).map_err(io_at(path))?;
    let damaged = |why: String| LogError::Damaged { path: path.to_path_buf(), offset, why };
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, offset).map_err(io_at(path))?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if len == 0 {
        return Err(damaged("an empty record".into()));
    }
    let mut body = vec![0u8; len];
    file.read_exact_at(&mut body, offset + HEADER as u64).map_err(io_at(path))?;
    match decode(body[0], &body[1..]).map_err(damaged)? {
        Record::Batch { seq, events, .. } => Ok((seq, events)),
        Record::Deleted { .. } => Err(damaged("a deletion record where a batch was indexed".into())),
    }
}
