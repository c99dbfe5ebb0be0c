//! The embedded AWS service models, distilled from botocore by `scripts/gen-models.py`: each
//! service's metadata (API version, protocols, signing name, target prefix, XML namespace),
//! its operations, and every shape with its constraints and the names its members take on
//! the wire. Every protocol module reads requests and writes responses from these.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde_json::Value;

pub static ECS: LazyLock<Model> = LazyLock::new(|| Model::load(include_str!("../../models/ecs.json")));
pub static ECR: LazyLock<Model> = LazyLock::new(|| Model::load(include_str!("../../models/ecr.json")));
pub static EC2: LazyLock<Model> = LazyLock::new(|| Model::load(include_str!("../../models/ec2.json")));
pub static ELBV2: LazyLock<Model> = LazyLock::new(|| Model::load(include_str!("../../models/elbv2.json")));
pub static LOGS: LazyLock<Model> = LazyLock::new(|| Model::load(include_str!("../../models/logs.json")));
pub static CLOUDWATCH: LazyLock<Model> = LazyLock::new(|| Model::load(include_str!("../../models/cloudwatch.json")));
pub static APPLICATION_AUTOSCALING: LazyLock<Model> =
    LazyLock::new(|| Model::load(include_str!("../../models/application-autoscaling.json")));
pub static SERVICEDISCOVERY: LazyLock<Model> =
    LazyLock::new(|| Model::load(include_str!("../../models/servicediscovery.json")));

/// A use of a shape: as a structure member, a list member, or a map key or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub shape: String,
    /// The XML element or query parameter name, when it is not the member name.
    pub location_name: Option<String>,
    /// The EC2 query parameter name, when it is not the capitalised location name.
    pub query_name: Option<String>,
    /// A list or map whose entries repeat without a wrapping element (query and XML).
    pub flattened: bool,
}

#[derive(Debug)]
pub enum Shape {
    Structure { members: BTreeMap<String, Ref>, required: Vec<String> },
    List { member: Ref, min: Option<i64>, max: Option<i64> },
    Map { key: Ref, value: Ref, min: Option<i64>, max: Option<i64> },
    String { values: Option<Vec<String>>, min: Option<i64>, max: Option<i64> },
    Integer { min: Option<i64>, max: Option<i64> },
    Float { min: Option<f64>, max: Option<f64> },
    Boolean,
    Timestamp,
    Blob,
}

#[derive(Debug)]
pub struct Operation {
    pub input: Option<String>,
    pub output: Option<String>,
    /// The element the AWS query protocol wraps the output in (`DescribeLoadBalancersResult`).
    pub result_wrapper: Option<String>,
}

#[derive(Debug)]
pub struct Model {
    pub api_version: String,
    /// The wire protocols the service speaks, in botocore's order of preference.
    pub protocols: Vec<String>,
    /// The service name in a SigV4 credential scope.
    pub signing_name: String,
    /// The `X-Amz-Target` prefix (JSON protocols).
    pub target_prefix: String,
    pub json_version: Option<String>,
    pub xml_namespace: Option<String>,
    pub operations: BTreeMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
    /// The error codes the model declares (the `error.code` of each exception shape, else
    /// its name).
    pub error_codes: Vec<String>,
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_f64).map(|f| f as i64)
}

impl Model {
    pub fn load(raw: &str) -> Model {
        let doc: Value = serde_json::from_str(raw).expect("embedded model is valid JSON");
        let raw_shapes = doc["shapes"].as_object().expect("shapes");
        // A reference inherits the naming traits its target shape declares itself.
        let flattened = |s: &Value| s.get("flattened").and_then(Value::as_bool) == Some(true);
        let reference = |spec: &Value| {
            let shape = text(spec, "shape").unwrap_or_default();
            let target = raw_shapes.get(&shape);
            Ref {
                location_name: text(spec, "locationName").or_else(|| target.and_then(|t| text(t, "locationName"))),
                query_name: text(spec, "queryName"),
                flattened: flattened(spec) || target.is_some_and(flattened),
                shape,
            }
        };
        let operations = doc["operations"]
            .as_object()
            .expect("operations")
            .iter()
            .map(|(name, op)| {
                let op = Operation {
                    input: text(op, "input"),
                    output: text(op, "output"),
                    result_wrapper: text(op, "resultWrapper"),
                };
                (name.clone(), op)
            })
            .collect();
        let mut error_codes = Vec::new();
        let shapes = raw_shapes
            .iter()
            .map(|(name, s)| {
                if s.get("exception").and_then(Value::as_bool) == Some(true) {
                    error_codes.push(s.get("error").and_then(|e| text(e, "code")).unwrap_or_else(|| name.clone()));
                }
                (name.clone(), Self::shape(s, &reference))
            })
            .collect();
        Model {
            api_version: text(&doc, "apiVersion").unwrap_or_default(),
            protocols: doc["protocols"]
                .as_array()
                .map(|p| p.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            signing_name: text(&doc, "signingName").unwrap_or_default(),
            target_prefix: text(&doc, "targetPrefix").unwrap_or_default(),
            json_version: text(&doc, "jsonVersion"),
            xml_namespace: text(&doc, "xmlNamespace"),
            operations,
            shapes,
            error_codes,
        }
    }

    fn shape(s: &Value, reference: &impl Fn(&Value) -> Ref) -> Shape {
        match s["type"].as_str().unwrap_or_default() {
            "structure" => Shape::Structure {
                members: s["members"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), reference(v))).collect())
                    .unwrap_or_default(),
                required: s["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            },
            "list" => Shape::List { member: reference(&s["member"]), min: int(s, "min"), max: int(s, "max") },
            "map" => Shape::Map {
                key: reference(&s["key"]),
                value: reference(&s["value"]),
                min: int(s, "min"),
                max: int(s, "max"),
            },
            "string" => Shape::String {
                values: s["enum"].as_array().map(|e| e.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()),
                min: int(s, "min"),
                max: int(s, "max"),
            },
            "integer" | "long" => Shape::Integer { min: int(s, "min"), max: int(s, "max") },
            "double" | "float" => {
                Shape::Float { min: s.get("min").and_then(Value::as_f64), max: s.get("max").and_then(Value::as_f64) }
            }
            "boolean" => Shape::Boolean,
            "timestamp" => Shape::Timestamp,
            _ => Shape::Blob,
        }
    }

    /// The shape named `name`; a model that names a shape it lacks is a bug of the embedding.
    pub fn shape_named(&self, name: &str) -> Result<&Shape, crate::error::ApiError> {
        self.shapes.get(name).ok_or_else(|| crate::error::ApiError::server(format!("model has no shape {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_loads_with_its_metadata() {
        assert_eq!(ECS.target_prefix, "AmazonEC2ContainerServiceV20141113");
        assert_eq!((ECS.signing_name.as_str(), ECS.json_version.as_deref()), ("ecs", Some("1.1")));
        assert_eq!(ECR.signing_name, "ecr");
        assert_eq!((EC2.signing_name.as_str(), EC2.api_version.as_str()), ("ec2", "2016-11-15"));
        assert_eq!(EC2.protocols, ["ec2"]);
        assert_eq!((ELBV2.signing_name.as_str(), ELBV2.api_version.as_str()), ("elasticloadbalancing", "2015-12-01"));
        assert_eq!(ELBV2.protocols, ["query"]);
        for op in ["RegisterTaskDefinition", "RunTask", "CreateCluster", "SubmitTaskStateChange"] {
            assert!(ECS.operations.contains_key(op), "{op}");
        }
        assert!(ELBV2.error_codes.iter().any(|c| c == "LoadBalancerNotFound"));
        assert_eq!(
            ELBV2.operations["DescribeLoadBalancers"].result_wrapper.as_deref(),
            Some("DescribeLoadBalancersResult")
        );
    }

    #[test]
    fn references_carry_wire_names() {
        let Shape::Structure { members, .. } = &EC2.shapes["DescribeAvailabilityZonesRequest"] else { panic!() };
        assert_eq!(members["ZoneNames"].location_name.as_deref(), Some("ZoneName"));
        assert_eq!(members["DryRun"].location_name.as_deref(), Some("dryRun"));
        let Shape::List { member, .. } = &EC2.shapes["AvailabilityZoneList"] else { panic!() };
        assert_eq!(member.location_name.as_deref(), Some("item"));
    }

    #[test]
    fn the_ec2_subset_reaches_every_shape_it_names() {
        for op in EC2.operations.values() {
            for shape in op.input.iter().chain(&op.output) {
                assert!(EC2.shapes.contains_key(shape), "{shape}");
            }
        }
        for shape in EC2.shapes.values() {
            let refs: Vec<&Ref> = match shape {
                Shape::Structure { members, .. } => members.values().collect(),
                Shape::List { member, .. } => vec![member],
                Shape::Map { key, value, .. } => vec![key, value],
                _ => vec![],
            };
            for r in refs {
                assert!(EC2.shapes.contains_key(&r.shape), "{}", r.shape);
            }
        }
    }
}
