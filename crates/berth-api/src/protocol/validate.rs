//! The one validator every protocol runs on the decoded request: the value tree (member names
//! as in the model) is checked against the operation's input shape — types, required
//! members, enum values, lengths, item counts and numeric ranges. Timestamps come out as
//! seconds since the epoch whatever form they came in. Unknown members and nulls are dropped
//! (the JSON protocols: AWS ignores them there; the form protocols refuse unknown
//! parameters before this runs), so a handler only ever sees members the model defines.
//!
//! A failure is a [`Violation`]: where (a path of members, indexes and map keys) and what.
//! Each protocol words it in its own error names.

use serde_json::{Map, Value};

use super::shapes::{Model, Shape};
use crate::error::ApiError;

/// One step of the path to a value in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Member(String),
    Index(usize),
    Key(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The value has the wrong type: `found` describes it ("a string", or the text given).
    Type {
        expected: &'static str,
        found: String,
    },
    Missing,
    Enum {
        value: String,
        allowed: Vec<String>,
    },
    Length {
        length: i64,
        min: Option<i64>,
        max: Option<i64>,
    },
    Count {
        count: i64,
        min: Option<i64>,
        max: Option<i64>,
    },
    Range {
        value: String,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// A parameter the model does not have (form protocols; the text is the parameter).
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: Vec<Seg>,
    pub problem: Problem,
}

/// Why a request could not be checked: it breaks the model, or the model itself is broken.
#[derive(Debug)]
pub enum Invalid {
    Violation(Violation),
    Server(ApiError),
}

impl Invalid {
    /// The client's error: a violation worded by `word`, or the server's own failure.
    pub fn into_api(self, word: impl FnOnce(Violation) -> ApiError) -> ApiError {
        match self {
            Invalid::Violation(v) => word(v),
            Invalid::Server(e) => e,
        }
    }
}

impl From<ApiError> for Invalid {
    fn from(e: ApiError) -> Self {
        Invalid::Server(e)
    }
}

impl Violation {
    /// The violation at `path`, as a reason to refuse the request.
    pub fn at(path: &[Seg], problem: Problem) -> Invalid {
        Invalid::Violation(Violation { path: path.to_vec(), problem })
    }
}

/// What a JSON value is, in words.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a structure",
        Value::Null => "null",
    }
}

/// Checks `value` against the input shape of `operation`; returns the cleaned object.
pub fn input(model: &Model, operation: &str, value: Value) -> Result<Map<String, Value>, Invalid> {
    let Some(shape) = model.operations.get(operation).and_then(|op| op.input.as_deref()) else {
        return Ok(Map::new());
    };
    match check(model, shape, value, &mut Vec::new())? {
        Some(Value::Object(m)) => Ok(m),
        _ => Ok(Map::new()),
    }
}

fn outside<T: PartialOrd>(n: T, min: Option<T>, max: Option<T>) -> bool {
    min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m)
}

/// Seconds since the epoch of an ISO 8601 (RFC 3339) timestamp.
pub fn epoch_seconds(text: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

fn check(model: &Model, shape_name: &str, value: Value, path: &mut Vec<Seg>) -> Result<Option<Value>, Invalid> {
    if value.is_null() {
        return Ok(None);
    }
    let shape = model.shape_named(shape_name)?;
    let mismatch = |expected: &'static str, path: &[Seg]| {
        Violation::at(path, Problem::Type { expected, found: kind(&value).to_string() })
    };
    let out = match shape {
        Shape::Structure { members, required } => {
            let Value::Object(obj) = value else {
                return Err(mismatch("a structure", path));
            };
            let mut out = Map::new();
            for (k, v) in obj {
                if let Some(member) = members.get(&k) {
                    path.push(Seg::Member(k.clone()));
                    let checked = check(model, &member.shape, v, path)?;
                    path.pop();
                    if let Some(v) = checked {
                        out.insert(k, v);
                    }
                }
            }
            if let Some(missing) = required.iter().find(|r| !out.contains_key(*r)) {
                path.push(Seg::Member(missing.clone()));
                return Err(Violation::at(path, Problem::Missing));
            }
            Value::Object(out)
        }
        Shape::List { member, min, max } => {
            let Value::Array(items) = value else {
                return Err(mismatch("a list", path));
            };
            let count = items.len() as i64;
            if outside(count, *min, *max) {
                return Err(Violation::at(path, Problem::Count { count, min: *min, max: *max }));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                path.push(Seg::Index(i));
                let checked = check(model, &member.shape, item, path)?;
                path.pop();
                out.extend(checked);
            }
            Value::Array(out)
        }
        Shape::Map { value: value_ref, min, max, .. } => {
            let Value::Object(obj) = value else {
                return Err(mismatch("a map", path));
            };
            let count = obj.len() as i64;
            if outside(count, *min, *max) {
                return Err(Violation::at(path, Problem::Count { count, min: *min, max: *max }));
            }
            let mut out = Map::new();
            for (k, v) in obj {
                path.push(Seg::Key(k.clone()));
                let checked = check(model, &value_ref.shape, v, path)?;
                path.pop();
                if let Some(v) = checked {
                    out.insert(k, v);
                }
            }
            Value::Object(out)
        }
        Shape::String { values, min, max } => {
            let Value::String(s) = &value else {
                return Err(mismatch("a string", path));
            };
            if let Some(allowed) = values
                && !allowed.iter().any(|a| a == s)
            {
                return Err(Violation::at(path, Problem::Enum { value: s.clone(), allowed: allowed.clone() }));
            }
            let length = s.chars().count() as i64;
            if outside(length, *min, *max) {
                return Err(Violation::at(path, Problem::Length { length, min: *min, max: *max }));
            }
            value
        }
        Shape::Integer { min, max } => {
            let Some(n) = value.as_i64() else {
                return Err(mismatch("an integer", path));
            };
            if outside(n, *min, *max) {
                let (min, max) = (min.map(|m| m as f64), max.map(|m| m as f64));
                return Err(Violation::at(path, Problem::Range { value: n.to_string(), min, max }));
            }
            value
        }
        Shape::Float { min, max } => {
            let Some(n) = value.as_f64() else {
                return Err(mismatch("a number", path));
            };
            if outside(n, *min, *max) {
                return Err(Violation::at(path, Problem::Range { value: n.to_string(), min: *min, max: *max }));
            }
            value
        }
        Shape::Boolean => {
            if !value.is_boolean() {
                return Err(mismatch("a boolean", path));
            }
            value
        }
        Shape::Timestamp => match &value {
            Value::Number(_) => value,
            Value::String(s) => match epoch_seconds(s) {
                Some(t) => Value::from(t),
                None => return Err(mismatch("a timestamp", path)),
            },
            _ => return Err(mismatch("a timestamp", path)),
        },
        Shape::Blob => {
            if !value.is_string() {
                return Err(mismatch("base64 text", path));
            }
            value
        }
    };
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::shapes::{EC2, ECS, ELBV2};
    use serde_json::json;

    fn violation(r: Result<Map<String, Value>, Invalid>) -> Violation {
        match r {
            Err(Invalid::Violation(v)) => v,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn drops_unknown_members_and_nulls() {
        let out = input(&ECS, "CreateCluster", json!({"clusterName": "a", "bogus": 1, "tags": null})).unwrap();
        assert_eq!(Value::Object(out), json!({"clusterName": "a"}));
    }

    #[test]
    fn wrong_types_name_the_path() {
        let v = violation(input(
            &ECS,
            "RegisterTaskDefinition",
            json!({"family": "f", "containerDefinitions": [{"name": "a", "memory": "lots"}]}),
        ));
        let path = vec![Seg::Member("containerDefinitions".into()), Seg::Index(0), Seg::Member("memory".into())];
        assert_eq!(v.path, path);
        assert_eq!(v.problem, Problem::Type { expected: "an integer", found: "a string".into() });
        assert!(matches!(violation(input(&ECS, "CreateCluster", json!([1]))).problem, Problem::Type { .. }));
    }

    #[test]
    fn required_enums_lengths_counts_and_ranges() {
        let v = violation(input(&ECS, "RegisterTaskDefinition", json!({"family": "f"})));
        assert_eq!((v.path, v.problem), (vec![Seg::Member("containerDefinitions".into())], Problem::Missing));
        let v = violation(input(
            &ECS,
            "RegisterTaskDefinition",
            json!({"family": "f", "containerDefinitions": [], "networkMode": "warp"}),
        ));
        assert!(matches!(v.problem, Problem::Enum { ref value, .. } if value == "warp"));
        let v = violation(input(&ELBV2, "DescribeLoadBalancers", json!({"PageSize": 0})));
        assert_eq!(v.problem, Problem::Range { value: "0".into(), min: Some(1.0), max: Some(400.0) });
        let tags: Vec<Value> = (0..51).map(|i| json!({"key": format!("k{i}")})).collect();
        let v = violation(input(&ECS, "CreateCluster", json!({"tags": tags})));
        assert_eq!(v.problem, Problem::Count { count: 51, min: Some(0), max: Some(50) });
        let v = violation(input(&ECS, "CreateCluster", json!({"tags": [{"key": ""}]})));
        assert_eq!(v.problem, Problem::Length { length: 0, min: Some(1), max: Some(128) });
        let path = vec![Seg::Member("tags".into()), Seg::Index(0), Seg::Member("key".into())];
        assert_eq!(v.path, path);
    }

    #[test]
    fn timestamps_become_epoch_seconds() {
        let out = input(
            &ECS,
            "ListServiceDeployments",
            json!({"service": "s", "createdAt": {"after": "2024-01-02T03:04:05.5Z", "before": 1700000000}}),
        )
        .unwrap();
        assert_eq!(out["createdAt"]["after"], json!(1704164645.5));
        assert_eq!(out["createdAt"]["before"], json!(1700000000));
        let v =
            violation(input(&ECS, "ListServiceDeployments", json!({"service": "s", "createdAt": {"after": "soon"}})));
        assert!(matches!(v.problem, Problem::Type { expected: "a timestamp", .. }));
    }

    #[test]
    fn nested_structures_in_lists_are_checked() {
        let v = violation(input(&EC2, "DescribeAvailabilityZones", json!({"Filters": [{"Name": "a", "Values": [1]}]})));
        let path = vec![Seg::Member("Filters".into()), Seg::Index(0), Seg::Member("Values".into()), Seg::Index(0)];
        assert_eq!(v.path, path);
    }
}
