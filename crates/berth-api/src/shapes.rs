//! The AWS service models (distilled from botocore by `scripts/gen-models.py`) and the one
//! validator that checks every request body against its operation's input shape.
//!
//! Wrong JSON types are `SerializationException`, as AWS's JSON protocol front end answers.
//! Missing required members, unknown enum values and out-of-range values are
//! `InvalidParameterException`. Unknown members and nulls are dropped, as AWS ignores them,
//! so a handler only ever sees members the model defines.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Debug)]
pub enum Shape {
    Structure { members: HashMap<String, String>, required: Vec<String> },
    List { member: String, min: Option<i64>, max: Option<i64> },
    Map { value: String },
    String { values: Option<Vec<String>>, min: Option<i64>, max: Option<i64> },
    Integer { min: Option<i64>, max: Option<i64> },
    Float,
    Boolean,
    Timestamp,
    Blob,
}

#[derive(Debug)]
pub struct Operation {
    pub input: Option<String>,
    pub output: Option<String>,
}

#[derive(Debug)]
pub struct Model {
    pub target_prefix: String,
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
}

pub static ECS: LazyLock<Model> = LazyLock::new(|| Model::load(include_str!("../models/ecs.json")));
pub static ECR: LazyLock<Model> = LazyLock::new(|| Model::load(include_str!("../models/ecr.json")));

impl Model {
    fn load(raw: &str) -> Model {
        let doc: Value = serde_json::from_str(raw).expect("embedded model is valid JSON");
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).map(|f| f as i64);
        let target = |v: &Value, k: &str| v.get(k).and_then(|m| text(m, "shape")).unwrap_or_default();
        let operations = doc["operations"]
            .as_object()
            .expect("operations")
            .iter()
            .map(|(name, op)| (name.clone(), Operation { input: text(op, "input"), output: text(op, "output") }))
            .collect();
        let shapes = doc["shapes"]
            .as_object()
            .expect("shapes")
            .iter()
            .map(|(name, s)| {
                let shape = match s["type"].as_str().unwrap_or_default() {
                    "structure" => Shape::Structure {
                        members: s["members"]
                            .as_object()
                            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v, "shape").unwrap_or_default())).collect())
                            .unwrap_or_default(),
                        required: s["required"]
                            .as_array()
                            .map(|r| r.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                            .unwrap_or_default(),
                    },
                    "list" => Shape::List { member: target(s, "member"), min: num(s, "min"), max: num(s, "max") },
                    "map" => Shape::Map { value: target(s, "value") },
                    "string" => Shape::String {
                        values: s["enum"]
                            .as_array()
                            .map(|e| e.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()),
                        min: num(s, "min"),
                        max: num(s, "max"),
                    },
                    "integer" | "long" => Shape::Integer { min: num(s, "min"), max: num(s, "max") },
                    "double" | "float" => Shape::Float,
                    "boolean" => Shape::Boolean,
                    "timestamp" => Shape::Timestamp,
                    _ => Shape::Blob,
                };
                (name.clone(), shape)
            })
            .collect();
        Model { target_prefix: text(&doc, "targetPrefix").unwrap_or_default(), operations, shapes }
    }

    /// Checks `body` against the input shape of `operation`; returns the cleaned object.
    pub fn validate_input(&self, operation: &str, body: Value) -> Result<Map<String, Value>, ApiError> {
        let Some(shape) = self.operations.get(operation).and_then(|op| op.input.as_deref()) else {
            return Ok(Map::new());
        };
        match self.check(shape, body, "")? {
            Some(Value::Object(m)) => Ok(m),
            _ => Ok(Map::new()),
        }
    }

    fn check(&self, shape_name: &str, value: Value, path: &str) -> Result<Option<Value>, ApiError> {
        if value.is_null() {
            return Ok(None);
        }
        let shape =
            self.shapes.get(shape_name).ok_or_else(|| ApiError::server(format!("model has no shape {shape_name}")))?;
        let mismatch = |expected: &str| {
            let found = match &value {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "a structure",
                Value::Null => "null",
            };
            let at = if path.is_empty() { "the request body".to_string() } else { format!("'{path}'") };
            ApiError::serialization(format!("Expected {expected} at {at} but found {found}."))
        };
        let join = |name: &str| {
            if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
        };
        let out = match shape {
            Shape::Structure { members, required } => {
                let Value::Object(obj) = value else {
                    return Err(mismatch("a structure"));
                };
                let mut out = Map::new();
                for (k, v) in obj {
                    if let Some(member_shape) = members.get(&k)
                        && let Some(v) = self.check(member_shape, v, &join(&k))?
                    {
                        out.insert(k, v);
                    }
                }
                if let Some(missing) = required.iter().find(|r| !out.contains_key(*r)) {
                    return Err(ApiError::invalid(format!("Missing required parameter '{}'.", join(missing))));
                }
                Value::Object(out)
            }
            Shape::List { member, min, max } => {
                let Value::Array(items) = value else {
                    return Err(mismatch("a list"));
                };
                let n = items.len() as i64;
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    return Err(ApiError::invalid(format!("'{path}' has {n} items, outside the allowed range.")));
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    if let Some(v) = self.check(member, item, &format!("{path}[{i}]"))? {
                        out.push(v);
                    }
                }
                Value::Array(out)
            }
            Shape::Map { value: value_shape } => {
                let Value::Object(obj) = value else {
                    return Err(mismatch("a map"));
                };
                let mut out = Map::new();
                for (k, v) in obj {
                    if let Some(v) = self.check(value_shape, v, &join(&k))? {
                        out.insert(k, v);
                    }
                }
                Value::Object(out)
            }
            Shape::String { values, min, max } => {
                let Value::String(s) = &value else {
                    return Err(mismatch("a string"));
                };
                if let Some(allowed) = values
                    && !allowed.iter().any(|a| a == s)
                {
                    return Err(ApiError::invalid(format!(
                        "Invalid value '{s}' for '{path}'. Valid values: {}.",
                        allowed.join(", ")
                    )));
                }
                let n = s.chars().count() as i64;
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    return Err(ApiError::invalid(format!("'{path}' has length {n}, outside the allowed range.")));
                }
                value
            }
            Shape::Integer { min, max } => {
                let Some(n) = value.as_i64() else {
                    return Err(mismatch("an integer"));
                };
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    return Err(ApiError::invalid(format!("'{path}' is {n}, outside the allowed range.")));
                }
                value
            }
            Shape::Float => {
                if !value.is_number() {
                    return Err(mismatch("a number"));
                }
                value
            }
            Shape::Boolean => {
                if !value.is_boolean() {
                    return Err(mismatch("a boolean"));
                }
                value
            }
            Shape::Timestamp => {
                if !value.is_number() && !value.is_string() {
                    return Err(mismatch("a timestamp"));
                }
                value
            }
            Shape::Blob => {
                if !value.is_string() {
                    return Err(mismatch("base64 text"));
                }
                value
            }
        };
        Ok(Some(out))
    }
}

/// Test helper: docs/api-coverage.md's `## {section}` table lists every operation of `model`,
/// and its implemented and partial rows are exactly `implemented` (what dispatch answers).
#[cfg(test)]
pub(crate) fn assert_coverage(section: &str, model: &Model, implemented: &[&str]) {
    use std::collections::{BTreeMap, BTreeSet};
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api-coverage.md")).unwrap();
    let table = doc.split(&format!("## {section}\n")).nth(1).unwrap().split("\n## ").next().unwrap();
    let mut listed = BTreeMap::new();
    for row in table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| operation")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        listed.insert(cells[1].to_string(), cells[2].to_string());
    }
    let ops: BTreeSet<_> = model.operations.keys().cloned().collect();
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), ops);
    for (op, status) in &listed {
        let served = implemented.contains(&op.as_str());
        assert_eq!(served, status != "not yet", "{op} is marked {status}");
    }
    for op in implemented {
        assert!(ops.contains(*op), "{op} is not in the model");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_loads_with_every_ecs_operation() {
        assert_eq!(ECS.target_prefix, "AmazonEC2ContainerServiceV20141113");
        for op in ["RegisterTaskDefinition", "RunTask", "CreateCluster", "SubmitTaskStateChange"] {
            assert!(ECS.operations.contains_key(op), "{op}");
        }
    }

    #[test]
    fn drops_unknown_members_and_nulls() {
        let out = ECS.validate_input("CreateCluster", json!({"clusterName": "a", "bogus": 1, "tags": null})).unwrap();
        assert_eq!(Value::Object(out), json!({"clusterName": "a"}));
    }

    #[test]
    fn wrong_types_are_serialization_errors_with_a_path() {
        let e = ECS
            .validate_input(
                "RegisterTaskDefinition",
                json!({"family": "f", "containerDefinitions": [{"name": "a", "memory": "lots"}]}),
            )
            .unwrap_err();
        assert_eq!(e.code, "SerializationException");
        assert!(e.message.contains("containerDefinitions[0].memory"), "{}", e.message);
        assert_eq!(ECS.validate_input("CreateCluster", json!([1])).unwrap_err().code, "SerializationException");
        assert_eq!(
            ECS.validate_input("CreateCluster", json!({"clusterName": 5})).unwrap_err().code,
            "SerializationException"
        );
    }

    #[test]
    fn missing_required_and_bad_enums_are_invalid_parameters() {
        let e = ECS.validate_input("RegisterTaskDefinition", json!({"family": "f"})).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("InvalidParameterException", "Missing required parameter 'containerDefinitions'.")
        );
        let e = ECS
            .validate_input(
                "RegisterTaskDefinition",
                json!({"family": "f", "containerDefinitions": [], "networkMode": "warp"}),
            )
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("'networkMode'"));
    }
}
