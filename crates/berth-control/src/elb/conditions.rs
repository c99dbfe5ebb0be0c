//! Rule conditions, with ELB's rules: `path-pattern` and `host-header` (given as `Values` or
//! their `*Config`), `http-header`, `http-request-method`, `query-string` and `source-ip`
//! (their `*Config` only). At most one each of host-header, path-pattern, http-request-method
//! and source-ip per rule; up to three values per condition and five per rule; ELB's
//! characters and lengths for each. Patterns use ELB's wildcards (`*`, `?`); the regular
//! expressions ELB has added since (`RegexValues`) are refused.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ElbError;
use super::limits::{CONDITION_VALUES, CONDITION_VALUES_EACH};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPair {
    pub key: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "field")]
pub enum Condition {
    PathPattern { values: Vec<String> },
    HostHeader { values: Vec<String> },
    HttpHeader { name: String, values: Vec<String> },
    HttpRequestMethod { values: Vec<String> },
    QueryString { values: Vec<QueryPair> },
    SourceIp { values: Vec<IpNet> },
}

impl Condition {
    /// ELB's name of its field.
    pub fn field(&self) -> &'static str {
        match self {
            Condition::PathPattern { .. } => "path-pattern",
            Condition::HostHeader { .. } => "host-header",
            Condition::HttpHeader { .. } => "http-header",
            Condition::HttpRequestMethod { .. } => "http-request-method",
            Condition::QueryString { .. } => "query-string",
            Condition::SourceIp { .. } => "source-ip",
        }
    }

    fn count(&self) -> usize {
        match self {
            Condition::PathPattern { values }
            | Condition::HostHeader { values }
            | Condition::HttpHeader { values, .. }
            | Condition::HttpRequestMethod { values } => values.len(),
            Condition::QueryString { values } => values.len(),
            Condition::SourceIp { values } => values.len(),
        }
    }
}

/// One condition as a request gives it: the field, the legacy `Values`, and each `*Config`.
#[derive(Debug, Clone, Default)]
pub struct ConditionInput {
    pub field: Option<String>,
    pub values: Option<Vec<String>>,
    /// Whether `RegexValues` were given anywhere in it.
    pub regex: bool,
    pub host_header: Option<Vec<String>>,
    pub path_pattern: Option<Vec<String>>,
    /// `HttpHeaderName` and `Values`.
    pub http_header: Option<(Option<String>, Vec<String>)>,
    pub http_request_method: Option<Vec<String>>,
    pub query_string: Option<Vec<(Option<String>, Option<String>)>>,
    pub source_ip: Option<Vec<String>>,
}

const FIELDS: &str = "[http-header, http-request-method, host-header, path-pattern, query-string, source-ip]";

fn invalid(message: impl Into<String>) -> ElbError {
    ElbError::validation(message)
}

fn check_chars(what: &str, value: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<(), ElbError> {
    if value.is_empty() || value.chars().count() > max {
        return Err(invalid(format!("The {what} '{value}' must have 1 to {max} characters")));
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(invalid(format!("The {what} '{value}' has a character it cannot have: '{bad}'")));
    }
    Ok(())
}

fn host(value: &str) -> Result<(), ElbError> {
    check_chars("host header", value, 128, |c| c.is_ascii_alphanumeric() || "-_.*?".contains(c))?;
    let tld = value.rsplit_once('.').map(|(_, t)| t);
    if !tld.is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic() || c == '*' || c == '?')) {
        return Err(invalid(format!(
            "The host header '{value}' must have a '.' and only letters (or wildcards) after the last one"
        )));
    }
    Ok(())
}

fn path(value: &str) -> Result<(), ElbError> {
    check_chars("path pattern", value, 128, |c| c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(c))
}

fn method(value: &str) -> Result<(), ElbError> {
    check_chars("HTTP request method", value, 40, |c| c.is_ascii_uppercase() || c == '-' || c == '_')
}

fn header_name(value: &str) -> Result<(), ElbError> {
    check_chars("HTTP header name", value, 40, |c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

fn printable(what: &str, value: &str) -> Result<(), ElbError> {
    check_chars(what, value, 128, |c| !c.is_control())
}

fn query_part(value: &str) -> Result<(), ElbError> {
    check_chars("query string part", value, 128, |c| c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&()!,;=*?%".contains(c))
}

fn source(value: &str) -> Result<IpNet, ElbError> {
    let net: IpNet = value.parse().map_err(|_| {
        invalid(format!("The source IP '{value}' must be an IPv4 or IPv6 address block in CIDR notation"))
    })?;
    if net.trunc() != net {
        return Err(invalid(format!("The source IP block '{value}' has bits set past its prefix length")));
    }
    Ok(net)
}

/// The values of a condition whose field is `field`: from the legacy `Values` (allowed for
/// path-pattern and host-header only) or its own configuration, never both.
fn values_of(
    field: &str,
    legacy: Option<&Vec<String>>,
    config: Option<Vec<String>>,
    config_name: &str,
) -> Result<Vec<String>, ElbError> {
    let legacy_allowed = matches!(field, "path-pattern" | "host-header");
    match (legacy, config) {
        (Some(_), Some(_)) => {
            Err(invalid(format!("You cannot specify both Values and {config_name} in a {field} condition")))
        }
        (Some(_), None) if !legacy_allowed => {
            Err(invalid(format!("A {field} condition takes its values in {config_name}, not Values")))
        }
        (Some(v), None) => Ok(v.clone()),
        (None, Some(v)) => Ok(v),
        (None, None) => Err(invalid(format!("A {field} condition must have values ({config_name})"))),
    }
}

fn one(input: &ConditionInput) -> Result<Condition, ElbError> {
    if input.regex {
        return Err(ElbError::unsupported(
            "Berth does not support RegexValues: conditions match ELB's wildcard patterns",
        ));
    }
    let field = input.field.as_deref().ok_or_else(|| invalid("A condition must specify its Field"))?;
    let configs = [
        ("host-header", "HostHeaderConfig", input.host_header.is_some()),
        ("path-pattern", "PathPatternConfig", input.path_pattern.is_some()),
        ("http-header", "HttpHeaderConfig", input.http_header.is_some()),
        ("http-request-method", "HttpRequestMethodConfig", input.http_request_method.is_some()),
        ("query-string", "QueryStringConfig", input.query_string.is_some()),
        ("source-ip", "SourceIpConfig", input.source_ip.is_some()),
    ];
    let own = configs
        .iter()
        .find(|(f, ..)| *f == field)
        .ok_or_else(|| invalid(format!("Condition field '{field}' must be one of '{FIELDS}'")))?;
    if let Some((_, stray, _)) = configs.iter().find(|(f, _, given)| *given && *f != field) {
        return Err(invalid(format!("{stray} cannot be specified in a {field} condition")));
    }
    let legacy = input.values.as_ref();
    let config_name = own.1;
    let condition = match field {
        "path-pattern" => {
            let values = values_of(field, legacy, input.path_pattern.clone(), config_name)?;
            values.iter().try_for_each(|v| path(v))?;
            Condition::PathPattern { values }
        }
        "host-header" => {
            let values = values_of(field, legacy, input.host_header.clone(), config_name)?;
            values.iter().try_for_each(|v| host(v))?;
            Condition::HostHeader { values }
        }
        "http-request-method" => {
            let values = values_of(field, legacy, input.http_request_method.clone(), config_name)?;
            values.iter().try_for_each(|v| method(v))?;
            Condition::HttpRequestMethod { values }
        }
        "http-header" => {
            let (name, values) = input.http_header.clone().unwrap_or_default();
            values_of(field, legacy, input.http_header.as_ref().map(|(_, v)| v.clone()), config_name)?;
            let name = name.ok_or_else(|| invalid("An http-header condition must specify HttpHeaderName"))?;
            header_name(&name)?;
            values.iter().try_for_each(|v| printable("HTTP header value", v))?;
            Condition::HttpHeader { name, values }
        }
        "query-string" => {
            let pairs = input.query_string.clone();
            values_of(field, legacy, pairs.as_ref().map(|p| p.iter().map(|_| String::new()).collect()), config_name)?;
            let mut values = Vec::new();
            for (key, value) in pairs.unwrap_or_default() {
                let value = value.ok_or_else(|| invalid("Each query-string pair must have a Value"))?;
                query_part(&value)?;
                if let Some(k) = &key {
                    query_part(k)?;
                }
                values.push(QueryPair { key, value });
            }
            Condition::QueryString { values }
        }
        _ => {
            let values = values_of(field, legacy, input.source_ip.clone(), config_name)?;
            Condition::SourceIp { values: values.iter().map(|v| source(v)).collect::<Result<_, _>>()? }
        }
    };
    match condition.count() {
        0 => Err(invalid(format!("A {field} condition must have at least one value"))),
        n if n > CONDITION_VALUES_EACH => Err(invalid(format!(
            "A condition can have at most {CONDITION_VALUES_EACH} values; this {field} condition has {n}"
        ))),
        _ => Ok(condition),
    }
}

/// The conditions of a rule: each valid, the fields that may appear once appearing once,
/// at most five values in all.
pub fn check(inputs: &[ConditionInput]) -> Result<Vec<Condition>, ElbError> {
    if inputs.is_empty() {
        return Err(invalid("A rule must have at least one condition"));
    }
    let conditions: Vec<Condition> = inputs.iter().map(one).collect::<Result<_, _>>()?;
    for once in ["host-header", "path-pattern", "http-request-method", "source-ip"] {
        if conditions.iter().filter(|c| c.field() == once).count() > 1 {
            return Err(invalid(format!("A rule can have only one {once} condition")));
        }
    }
    let total: usize = conditions.iter().map(Condition::count).sum();
    if total > CONDITION_VALUES {
        return Err(invalid(format!(
            "A rule can have at most {CONDITION_VALUES} condition values; this one has {total}"
        )));
    }
    Ok(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(field: &str, values: &[&str]) -> ConditionInput {
        ConditionInput {
            field: Some(field.into()),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn both_forms_give_the_same_condition() {
        let a = check(&[legacy("path-pattern", &["/img/*"])]).unwrap();
        let b = check(&[ConditionInput {
            field: Some("path-pattern".into()),
            path_pattern: Some(vec!["/img/*".into()]),
            ..Default::default()
        }])
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a, [Condition::PathPattern { values: vec!["/img/*".into()] }]);
    }

    #[test]
    fn elb_rules_for_conditions() {
        let ok = [
            legacy("host-header", &["api.example.com", "*.localhost"]),
            ConditionInput {
                field: Some("http-header".into()),
                http_header: Some((Some("X-Env".into()), vec!["blue".into()])),
                ..Default::default()
            },
            ConditionInput {
                field: Some("query-string".into()),
                query_string: Some(vec![(Some("v".into()), Some("2".into())), (None, Some("x*".into()))]),
                ..Default::default()
            },
        ];
        assert_eq!(check(&ok).unwrap().len(), 3);
        let bad: Vec<Vec<ConditionInput>> = vec![
            vec![],
            vec![legacy("cookie", &["a"])],
            vec![legacy("http-request-method", &["GET"])],
            vec![legacy("host-header", &["localhost"])],
            vec![legacy("host-header", &["a.b:80"])],
            vec![legacy("path-pattern", &["/a", "/b", "/c", "/d"])],
            vec![legacy("path-pattern", &["/a"]), legacy("path-pattern", &["/b"])],
            vec![legacy("path-pattern", &["/a b"])],
            vec![legacy("path-pattern", &["/a", "/b", "/c"]), legacy("host-header", &["a.com", "b.com", "c.com"])],
            vec![ConditionInput {
                field: Some("source-ip".into()),
                source_ip: Some(vec!["10.0.0.1/8".into()]),
                ..Default::default()
            }],
            vec![ConditionInput {
                field: Some("http-request-method".into()),
                http_request_method: Some(vec!["get".into()]),
                ..Default::default()
            }],
            vec![ConditionInput {
                field: Some("path-pattern".into()),
                host_header: Some(vec!["a.com".into()]),
                ..Default::default()
            }],
            vec![ConditionInput { regex: true, ..legacy("path-pattern", &["/a"]) }],
            vec![ConditionInput { path_pattern: Some(vec!["/a".into()]), ..legacy("path-pattern", &["/a"]) }],
            vec![ConditionInput {
                field: Some("http-header".into()),
                http_header: Some((None, vec!["x".into()])),
                ..Default::default()
            }],
        ];
        for b in bad {
            assert!(check(&b).is_err(), "{b:?}");
        }
        let ips = check(&[ConditionInput {
            field: Some("source-ip".into()),
            source_ip: Some(vec!["10.0.0.0/8".into(), "2001:db8::/32".into()]),
            ..Default::default()
        }])
        .unwrap();
        assert!(matches!(&ips[0], Condition::SourceIp { values } if values.len() == 2));
    }
}
