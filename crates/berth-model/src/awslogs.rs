//! The `awslogs` log driver's options, as a container definition's `logConfiguration`
//! gives them: read once, the same way at registration (which refuses what is wrong) and on
//! the agent (which ships the container's output by them).

use regex::Regex;
use serde_json::{Map, Value};

use crate::members::parse_size;

/// How output reaches the driver (`mode`): Berth's agent reads it from the kept container
/// log either way, so a container never waits for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Blocking,
    NonBlocking,
}

#[derive(Debug, Clone)]
pub struct AwsLogs {
    pub group: String,
    pub region: String,
    pub stream_prefix: Option<String>,
    pub create_group: bool,
    /// A line matching this starts a new event; other lines continue the one before
    /// (`awslogs-multiline-pattern`, or `awslogs-datetime-format` made a pattern).
    pub event_start: Option<Regex>,
    pub mode: Mode,
    /// `max-buffer-size` in bytes (non-blocking mode).
    pub max_buffer: Option<u64>,
}

/// The options the driver takes.
pub const OPTIONS: &[&str] = &[
    "awslogs-group",
    "awslogs-region",
    "awslogs-stream-prefix",
    "awslogs-create-group",
    "awslogs-datetime-format",
    "awslogs-multiline-pattern",
    "mode",
    "max-buffer-size",
];

/// `strftime` directives Docker's awslogs driver turns into patterns, as regex fragments.
fn directive(c: char) -> Option<&'static str> {
    Some(match c {
        'a' => r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
        'A' => r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
        'b' => r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
        'B' => r"(?:January|February|March|April|May|June|July|August|September|October|November|December)",
        'd' => r"(?:0[1-9]|[1,2][0-9]|3[0,1])",
        'f' => r"(?:\d{6})",
        'H' => r"(?:[0,1][0-9]|2[0-3])",
        'I' => r"(?:0[0-9]|1[0-2])",
        'j' => r"(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
        'L' => r"(?:\d{3})",
        'm' => r"(?:0[1-9]|1[0-2])",
        'M' => r"(?:[0-5][0-9])",
        'p' => r"(?:AM|PM)",
        'S' => r"(?:[0-5][0-9]|60)",
        'y' => r"(?:\d{2})",
        'Y' => r"(?:\d{4})",
        'z' => r"(?:[+-]\d{4})",
        'Z' => r"(?:[A-Z]{1,5})",
        _ => return None,
    })
}

/// `awslogs-datetime-format` as the pattern a new event's first line starts with.
pub fn datetime_pattern(format: &str) -> Result<String, String> {
    let mut out = String::from("^");
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(d) => out.push_str(directive(d).ok_or_else(|| format!("'%{d}' is not a supported date directive"))?),
            None => return Err("it ends with a lone %".into()),
        }
    }
    Ok(out)
}

fn flag(options: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match options.get(key).and_then(Value::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("{key} is \"true\" or \"false\", not \"{other}\"")),
    }
}

impl AwsLogs {
    /// Reads and checks the options; the error says which option is wrong and why.
    pub fn parse(options: &Map<String, Value>) -> Result<AwsLogs, String> {
        for (key, value) in options {
            if !OPTIONS.contains(&key.as_str()) {
                return Err(format!(
                    "the awslogs option '{key}' is not supported; the supported ones are {}",
                    OPTIONS.join(", ")
                ));
            }
            if !value.is_string() {
                return Err(format!("the awslogs option '{key}' takes a string"));
            }
        }
        let text = |k: &str| options.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string);
        let group = text("awslogs-group").ok_or("awslogs-group is required")?;
        if !crate::names::valid_log_group_name(&group) {
            return Err(format!("awslogs-group '{group}' is not a valid log group name"));
        }
        let region = text("awslogs-region").ok_or("awslogs-region is required")?;
        let stream_prefix = text("awslogs-stream-prefix");
        if stream_prefix.as_deref().is_some_and(|p| p.contains([':', '*'])) {
            return Err("awslogs-stream-prefix may not contain ':' or '*'".into());
        }
        let event_start = match (text("awslogs-multiline-pattern"), text("awslogs-datetime-format")) {
            (Some(_), Some(_)) => {
                return Err("awslogs-multiline-pattern and awslogs-datetime-format exclude each other".into());
            }
            (Some(p), None) => {
                Some(Regex::new(&p).map_err(|e| format!("awslogs-multiline-pattern is not a valid pattern: {e}"))?)
            }
            (None, Some(f)) => {
                let p = datetime_pattern(&f).map_err(|e| format!("awslogs-datetime-format: {e}"))?;
                Some(Regex::new(&p).map_err(|e| format!("awslogs-datetime-format: {e}"))?)
            }
            (None, None) => None,
        };
        let mode = match text("mode").as_deref() {
            None | Some("blocking") => Mode::Blocking,
            Some("non-blocking") => Mode::NonBlocking,
            Some(other) => return Err(format!("mode is blocking or non-blocking, not '{other}'")),
        };
        let max_buffer = match text("max-buffer-size") {
            None => None,
            Some(_) if mode == Mode::Blocking => return Err("max-buffer-size applies to mode non-blocking only".into()),
            Some(s) => Some(parse_size(&s).ok_or_else(|| format!("max-buffer-size '{s}' is not a size such as 4m"))?),
        };
        Ok(AwsLogs {
            group,
            region,
            stream_prefix,
            create_group: flag(options, "awslogs-create-group")?,
            event_start,
            mode,
            max_buffer,
        })
    }

    /// The stream a container's output goes to: `PREFIX/CONTAINER/TASK_ID` with a prefix, as
    /// ECS names it, else the container's runtime id.
    pub fn stream_name(&self, container: &str, task_id: &str, runtime_id: &str) -> String {
        match &self.stream_prefix {
            Some(p) => format!("{p}/{container}/{task_id}"),
            None => runtime_id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(options: Value) -> Result<AwsLogs, String> {
        AwsLogs::parse(options.as_object().unwrap())
    }

    #[test]
    fn options_are_read_and_streams_named_as_ecs_names_them() {
        let a = parse(json!({"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web", "awslogs-create-group": "true"})).unwrap();
        assert_eq!(
            (a.group.as_str(), a.region.as_str(), a.create_group, a.mode),
            ("/ecs/web", "us-east-1", true, Mode::Blocking)
        );
        assert_eq!(a.stream_name("app", "0123abcd", "c0ffee"), "web/app/0123abcd");
        let b = parse(
            json!({"awslogs-group": "g", "awslogs-region": "r", "mode": "non-blocking", "max-buffer-size": "4m"}),
        )
        .unwrap();
        assert_eq!((b.mode, b.max_buffer), (Mode::NonBlocking, Some(4 << 20)));
        assert_eq!(b.stream_name("app", "0123abcd", "c0ffee"), "c0ffee");
    }

    #[test]
    fn event_starts_from_a_pattern_or_a_date_format() {
        let a =
            parse(json!({"awslogs-group": "g", "awslogs-region": "r", "awslogs-multiline-pattern": "^INFO|^ERROR"}))
                .unwrap();
        assert!(a.event_start.as_ref().unwrap().is_match("ERROR boom"));
        let b = parse(
            json!({"awslogs-group": "g", "awslogs-region": "r", "awslogs-datetime-format": "[%Y-%m-%d %H:%M:%S]"}),
        )
        .unwrap();
        let start = b.event_start.unwrap();
        assert!(start.is_match("[2026-11-30 12:00:01] started"));
        assert!(!start.is_match("  at Foo.bar(Foo.java:10)"));
        assert!(!start.is_match("x [2026-11-30 12:00:01]"));
        assert_eq!(
            datetime_pattern("%b %d").unwrap(),
            format!("^{} {}", directive('b').unwrap(), directive('d').unwrap())
        );
    }

    #[test]
    fn bad_options_say_which_and_why() {
        for (options, fragment) in [
            (json!({"awslogs-region": "r"}), "awslogs-group is required"),
            (json!({"awslogs-group": "g"}), "awslogs-region is required"),
            (json!({"awslogs-group": "bad name", "awslogs-region": "r"}), "not a valid log group name"),
            (
                json!({"awslogs-group": "g", "awslogs-region": "r", "awslogs-endpoint": "http://x"}),
                "'awslogs-endpoint' is not supported",
            ),
            (
                json!({"awslogs-group": "g", "awslogs-region": "r", "awslogs-create-group": "yes"}),
                "\"true\" or \"false\"",
            ),
            (
                json!({"awslogs-group": "g", "awslogs-region": "r", "awslogs-multiline-pattern": "("}),
                "not a valid pattern",
            ),
            (json!({"awslogs-group": "g", "awslogs-region": "r", "awslogs-datetime-format": "%Q"}), "'%Q'"),
            (
                json!({"awslogs-group": "g", "awslogs-region": "r", "awslogs-datetime-format": "%Y", "awslogs-multiline-pattern": "x"}),
                "exclude each other",
            ),
            (json!({"awslogs-group": "g", "awslogs-region": "r", "mode": "fast"}), "blocking or non-blocking"),
            (json!({"awslogs-group": "g", "awslogs-region": "r", "max-buffer-size": "4m"}), "non-blocking only"),
            (
                json!({"awslogs-group": "g", "awslogs-region": "r", "mode": "non-blocking", "max-buffer-size": "lots"}),
                "not a size",
            ),
            (json!({"awslogs-group": "g", "awslogs-region": "r", "awslogs-stream-prefix": "a:b"}), "':' or '*'"),
        ] {
            let e = parse(options.clone()).expect_err(&options.to_string());
            assert!(e.contains(fragment), "{options}: {e}");
        }
    }
}
