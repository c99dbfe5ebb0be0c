//! Actions and conditions on the wire: read from a request into the model's inputs (which
//! check them), and written back as DescribeListeners and DescribeRules show them — a
//! single-group forward with both `TargetGroupArn` and `ForwardConfig`, path-pattern and
//! host-header conditions with both `Values` and their `*Config`, as ELB answers.

use berth_control::elb::actions::{Action, ActionInput, ActionKind, FixedResponseInput, ForwardInput, RedirectInput};
use berth_control::elb::conditions::{Condition, ConditionInput};
use serde_json::{Value, json};

use super::u32_of;
use crate::ecs::Obj;

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
}

/// The configurations of ELB actions Berth has no action for.
const OTHER_CONFIGS: &[&str] = &["AuthenticateCognitoConfig", "AuthenticateOidcConfig", "JwtValidationConfig"];

fn action_in(a: &Value) -> ActionInput {
    let forward = a.get("ForwardConfig").map(|f| ForwardInput {
        groups: f["TargetGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| (string(g, "TargetGroupArn"), u32_of(g.get("Weight"))))
            .collect(),
        stickiness: f
            .get("TargetGroupStickinessConfig")
            .map(|s| (s.get("Enabled").and_then(Value::as_bool), u32_of(s.get("DurationSeconds")))),
    });
    let fixed_response = a.get("FixedResponseConfig").map(|f| FixedResponseInput {
        status: string(f, "StatusCode").unwrap_or_default(),
        content_type: string(f, "ContentType"),
        body: string(f, "MessageBody"),
    });
    let redirect = a.get("RedirectConfig").map(|r| RedirectInput {
        protocol: string(r, "Protocol"),
        host: string(r, "Host"),
        port: string(r, "Port"),
        path: string(r, "Path"),
        query: string(r, "Query"),
        status: string(r, "StatusCode").unwrap_or_default(),
    });
    ActionInput {
        action_type: string(a, "Type").unwrap_or_default(),
        order: u32_of(a.get("Order")),
        target_group_arn: string(a, "TargetGroupArn"),
        forward,
        fixed_response,
        redirect,
        other_configs: OTHER_CONFIGS.iter().filter(|c| a.get(**c).is_some()).map(|c| c.to_string()).collect(),
    }
}

/// The actions under `member` of a request.
pub fn actions_in(input: &Obj, member: &str) -> Vec<ActionInput> {
    input.get(member).and_then(Value::as_array).into_iter().flatten().map(action_in).collect()
}

pub fn actions_out(actions: &[Action]) -> Value {
    Value::Array(actions.iter().enumerate().map(|(i, a)| action_out(a, i)).collect())
}

fn action_out(a: &Action, index: usize) -> Value {
    let order = a.order.unwrap_or(index as u32 + 1);
    match &a.kind {
        ActionKind::Forward { groups, stickiness } => {
            let mut sticky = json!({"Enabled": stickiness.enabled});
            if let Some(d) = stickiness.duration {
                sticky["DurationSeconds"] = json!(d);
            }
            let tuples: Vec<Value> =
                groups.iter().map(|g| json!({"TargetGroupArn": g.arn, "Weight": g.weight})).collect();
            let mut out = json!({
                "Type": "forward",
                "Order": order,
                "ForwardConfig": {"TargetGroups": tuples, "TargetGroupStickinessConfig": sticky},
            });
            if let [only] = groups.as_slice() {
                out["TargetGroupArn"] = json!(only.arn);
            }
            out
        }
        ActionKind::FixedResponse { status, content_type, body } => {
            let mut config = json!({"StatusCode": status});
            if let Some(ct) = content_type {
                config["ContentType"] = json!(ct);
            }
            if let Some(b) = body {
                config["MessageBody"] = json!(b);
            }
            json!({"Type": "fixed-response", "Order": order, "FixedResponseConfig": config})
        }
        ActionKind::Redirect { protocol, host, port, path, query, status } => json!({
            "Type": "redirect",
            "Order": order,
            "RedirectConfig": {
                "Protocol": protocol, "Host": host, "Port": port, "Path": path, "Query": query,
                "StatusCode": status.as_str(),
            },
        }),
    }
}

fn has_regex(c: &Value) -> bool {
    let configs = ["HostHeaderConfig", "PathPatternConfig", "HttpHeaderConfig"];
    c.get("RegexValues").is_some() || configs.iter().any(|k| c.get(*k).and_then(|v| v.get("RegexValues")).is_some())
}

fn condition_in(c: &Value) -> ConditionInput {
    let values_of = |config: &str| c.get(config).map(|v| strings(v.get("Values")).unwrap_or_default());
    ConditionInput {
        field: string(c, "Field"),
        values: strings(c.get("Values")),
        regex: has_regex(c),
        host_header: values_of("HostHeaderConfig"),
        path_pattern: values_of("PathPatternConfig"),
        http_header: c
            .get("HttpHeaderConfig")
            .map(|h| (string(h, "HttpHeaderName"), strings(h.get("Values")).unwrap_or_default())),
        http_request_method: values_of("HttpRequestMethodConfig"),
        query_string: c.get("QueryStringConfig").map(|q| {
            let pairs = q.get("Values").and_then(Value::as_array).into_iter().flatten();
            pairs.map(|p| (string(p, "Key"), string(p, "Value"))).collect()
        }),
        source_ip: values_of("SourceIpConfig"),
    }
}

pub fn conditions_in(input: &Obj) -> Vec<ConditionInput> {
    input.get("Conditions").and_then(Value::as_array).into_iter().flatten().map(condition_in).collect()
}

pub fn conditions_out(conditions: &[Condition]) -> Value {
    Value::Array(conditions.iter().map(condition_out).collect())
}

fn condition_out(c: &Condition) -> Value {
    let field = c.field();
    match c {
        Condition::PathPattern { values } => {
            json!({"Field": field, "Values": values, "PathPatternConfig": {"Values": values}})
        }
        Condition::HostHeader { values } => {
            json!({"Field": field, "Values": values, "HostHeaderConfig": {"Values": values}})
        }
        Condition::HttpHeader { name, values } => {
            json!({"Field": field, "HttpHeaderConfig": {"HttpHeaderName": name, "Values": values}})
        }
        Condition::HttpRequestMethod { values } => {
            json!({"Field": field, "HttpRequestMethodConfig": {"Values": values}})
        }
        Condition::QueryString { values } => {
            let pairs: Vec<Value> = values
                .iter()
                .map(|p| match &p.key {
                    Some(k) => json!({"Key": k, "Value": p.value}),
                    None => json!({"Value": p.value}),
                })
                .collect();
            json!({"Field": field, "QueryStringConfig": {"Values": pairs}})
        }
        Condition::SourceIp { values } => {
            let cidrs: Vec<String> = values.iter().map(ToString::to_string).collect();
            json!({"Field": field, "SourceIpConfig": {"Values": cidrs}})
        }
    }
}
