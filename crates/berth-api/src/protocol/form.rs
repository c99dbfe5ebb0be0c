//! Form-encoded input, shared by the AWS query and EC2 query protocols: the strict parser of
//! `application/x-www-form-urlencoded` text, and the reader that turns flat parameters
//! (`Filter.1.Value.2=x`) into the value tree a handler sees, walking the operation's input
//! shape. The two protocols differ only in how members and list items are named
//! ([`Style`]). A parameter no member of the model names is refused, not ignored.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::shapes::{Model, Ref, Shape};
use super::validate::{Invalid, Problem, Seg, Violation};

/// Parameters by name, each given once.
pub type Params = BTreeMap<String, String>;

/// How a protocol names parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// AWS query: members by location name; lists as `Name.member.N` (or `Name.N` when
    /// flattened); maps as `Name.entry.N.key` / `.value`; an empty list as `Name=`.
    Query,
    /// EC2 query: members by query name or capitalised location name; every list as `Name.N`.
    Ec2,
}

/// Why form text could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn unescape(raw: &str) -> Result<String, Malformed> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes.get(i + 1..i + 3).and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?));
                out.push(byte.ok_or_else(|| Malformed(format!("Invalid percent-encoding in '{raw}'.")))?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Malformed(format!("'{raw}' is not UTF-8 once decoded.")))
}

/// Adds the parameters of `text` (a form body or a URL query) to `params`. Bad
/// percent-encoding, text that is not UTF-8, and a parameter given twice are refused.
pub fn parse_into(params: &mut Params, text: &str) -> Result<(), Malformed> {
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = unescape(name)?;
        if params.contains_key(&name) {
            return Err(Malformed(format!("The parameter {name} is given more than once.")));
        }
        let value = unescape(value)?;
        params.insert(name, value);
    }
    Ok(())
}

impl Style {
    /// The parameter name of a structure member.
    pub fn member_name(self, member: &str, r: &Ref) -> String {
        match (self, &r.location_name) {
            (Style::Ec2, _) if r.query_name.is_some() => r.query_name.clone().unwrap_or_default(),
            (Style::Ec2, Some(l)) => {
                let mut chars = l.chars();
                chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
            }
            (Style::Query, Some(l)) => l.clone(),
            (_, None) => member.to_string(),
        }
    }

    /// The prefix list items are numbered under (`{prefix}.{N}`), for a list named `name`.
    pub fn list_items(self, name: &str, list: &Ref, member: &Ref) -> String {
        match self {
            Style::Ec2 => name.to_string(),
            Style::Query if list.flattened => match (&member.location_name, name.rsplit_once('.')) {
                (Some(l), Some((parent, _))) => format!("{parent}.{l}"),
                (Some(l), None) => l.clone(),
                (None, _) => name.to_string(),
            },
            Style::Query => format!("{name}.{}", member.location_name.as_deref().unwrap_or("member")),
        }
    }

    /// The prefix map entries are numbered under, for a map named `name`.
    pub fn map_entries(self, name: &str, map: &Ref) -> String {
        if map.flattened { name.to_string() } else { format!("{name}.entry") }
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// Reads the value tree of an operation's input from its parameters.
pub struct Reader<'m> {
    model: &'m Model,
    style: Style,
    params: Params,
    used: BTreeSet<String>,
}

impl<'m> Reader<'m> {
    /// The input of `operation` from `params` (without `Action` and `Version`). A parameter
    /// that names nothing in the input shape is a [`Problem::Unknown`] violation.
    pub fn input(model: &'m Model, style: Style, operation: &str, params: Params) -> Result<Value, Invalid> {
        let mut reader = Reader { model, style, params, used: BTreeSet::new() };
        let shape = model.operations.get(operation).and_then(|op| op.input.clone());
        let tree = match shape {
            Some(shape) => reader.structure(&shape, "", &mut Vec::new())?,
            None => None,
        };
        if let Some(unknown) = reader.params.keys().find(|k| !reader.used.contains(*k)) {
            return Err(Violation::at(&[], Problem::Unknown(unknown.clone())));
        }
        Ok(tree.unwrap_or_else(|| Value::Object(Map::new())))
    }

    fn structure(&mut self, shape: &str, prefix: &str, path: &mut Vec<Seg>) -> Result<Option<Value>, Invalid> {
        let Shape::Structure { members, .. } = self.model.shape_named(shape)? else {
            return Ok(None);
        };
        let mut out = Map::new();
        for (member, r) in members {
            let name = join(prefix, &self.style.member_name(member, r));
            path.push(Seg::Member(member.clone()));
            let value = self.value(r, &name, path)?;
            path.pop();
            if let Some(v) = value {
                out.insert(member.clone(), v);
            }
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }

    fn value(&mut self, r: &Ref, name: &str, path: &mut Vec<Seg>) -> Result<Option<Value>, Invalid> {
        match self.model.shape_named(&r.shape)? {
            Shape::Structure { .. } => self.structure(&r.shape, name, path),
            Shape::List { member, .. } => self.list(r, member, name, path),
            Shape::Map { key, value, .. } => self.map(r, key, value, name, path),
            scalar => match self.take(name) {
                Some(text) => scalar_value(scalar, text)
                    .map(Some)
                    .map_err(|expected| Violation::at(path, Problem::Type { expected, found: text.to_string() })),
                None => Ok(None),
            },
        }
    }

    fn take(&mut self, name: &str) -> Option<&str> {
        let text = self.params.get(name)?;
        self.used.insert(name.to_string());
        Some(text)
    }

    /// The item numbers given under `prefix` (`prefix.N...`), in order.
    fn numbers(&self, prefix: &str) -> Vec<usize> {
        let start = format!("{prefix}.");
        let mut found = BTreeSet::new();
        for key in self.params.range(start.clone()..).map(|(k, _)| k).take_while(|k| k.starts_with(&start)) {
            let segment = key[start.len()..].split('.').next().unwrap_or_default();
            if let Ok(n) = segment.parse::<usize>()
                && n >= 1
                && !segment.starts_with('0')
            {
                found.insert(n);
            }
        }
        found.into_iter().collect()
    }

    fn list(&mut self, list: &Ref, member: &Ref, name: &str, path: &mut Vec<Seg>) -> Result<Option<Value>, Invalid> {
        if self.style == Style::Query && self.params.get(name).is_some_and(String::is_empty) {
            self.used.insert(name.to_string());
            return Ok(Some(Value::Array(Vec::new())));
        }
        let prefix = self.style.list_items(name, list, member);
        let numbers = self.numbers(&prefix);
        let mut items = Vec::with_capacity(numbers.len());
        for (i, n) in numbers.iter().enumerate() {
            path.push(Seg::Index(i));
            let item = self.value(member, &format!("{prefix}.{n}"), path)?;
            path.pop();
            items.extend(item);
        }
        Ok((!numbers.is_empty()).then_some(Value::Array(items)))
    }

    fn map(
        &mut self,
        map: &Ref,
        key: &Ref,
        value: &Ref,
        name: &str,
        path: &mut Vec<Seg>,
    ) -> Result<Option<Value>, Invalid> {
        let prefix = self.style.map_entries(name, map);
        let numbers = self.numbers(&prefix);
        let key_name = key.location_name.as_deref().unwrap_or("key");
        let value_name = value.location_name.as_deref().unwrap_or("value");
        let mut out = Map::new();
        for n in &numbers {
            let entry = format!("{prefix}.{n}");
            let Some(k) = self.take(&format!("{entry}.{key_name}")).map(str::to_string) else {
                path.push(Seg::Key(format!("{entry}.{key_name}")));
                return Err(Violation::at(path, Problem::Missing));
            };
            path.push(Seg::Key(k.clone()));
            let v = self.value(value, &format!("{entry}.{value_name}"), path)?;
            path.pop();
            out.insert(k, v.unwrap_or(Value::Null));
        }
        Ok((!numbers.is_empty()).then_some(Value::Object(out)))
    }
}

/// The validated input of `operation` from its parameters (`Action` and `Version` taken).
pub fn read(model: &Model, style: Style, operation: &str, params: Params) -> Result<Map<String, Value>, Invalid> {
    Reader::input(model, style, operation, params).and_then(|tree| super::validate::input(model, operation, tree))
}

/// Takes `Action` and `Version` out of `params`: the operation asked for, in a service
/// whose API version the request names. Codes as the query protocols answer them.
pub fn operation(model: &Model, params: &mut Params) -> Result<String, crate::error::ApiError> {
    use crate::error::ApiError;
    let action = params.remove("Action").filter(|a| !a.is_empty());
    let version = params.remove("Version");
    let Some(action) = action else {
        return Err(ApiError::new(400, "MissingAction", "The request must contain the parameter Action."));
    };
    if !model.operations.contains_key(&action) {
        return Err(ApiError::new(
            400,
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
        ));
    }
    match version {
        Some(v) if v == model.api_version => Ok(action),
        Some(v) => Err(ApiError::new(
            400,
            "InvalidParameterValue",
            format!("Berth speaks version {} of this API, not {v}.", model.api_version),
        )),
        None => Err(ApiError::new(400, "MissingParameter", "The request must contain the parameter Version.")),
    }
}

/// A scalar parameter's text as the JSON value of its shape, or what was expected instead.
fn scalar_value(shape: &Shape, text: &str) -> Result<Value, &'static str> {
    match shape {
        Shape::Integer { .. } => text.parse::<i64>().map(Value::from).map_err(|_| "an integer"),
        Shape::Float { .. } => text.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::from).ok_or("a number"),
        Shape::Boolean => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("a boolean (true or false)"),
        },
        Shape::Timestamp => super::validate::epoch_seconds(text).map(Value::from).ok_or("an ISO 8601 timestamp"),
        _ => Ok(Value::String(text.to_string())),
    }
}

/// The parameter name of the value at `path` in the input of `operation` (for messages).
pub fn parameter_name(model: &Model, style: Style, operation: &str, path: &[Seg]) -> String {
    let mut shape = model.operations.get(operation).and_then(|op| op.input.clone()).unwrap_or_default();
    let mut name = String::new();
    let mut list: Option<Ref> = None;
    for seg in path {
        match (seg, model.shapes.get(&shape)) {
            (Seg::Member(m), Some(Shape::Structure { members, .. })) => {
                let Some(r) = members.get(m) else { break };
                name = join(&name, &style.member_name(m, r));
                list = Some(r.clone());
                shape = r.shape.clone();
            }
            (Seg::Index(i), Some(Shape::List { member, .. })) => {
                let list_ref = list.clone().unwrap_or_else(|| member.clone());
                name = format!("{}.{}", style.list_items(&name, &list_ref, member), i + 1);
                list = Some(member.clone());
                shape = member.shape.clone();
            }
            (Seg::Key(k), Some(Shape::Map { value, .. })) => {
                name = join(&name, k);
                list = Some(value.clone());
                shape = value.shape.clone();
            }
            _ => break,
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::shapes::{EC2, ELBV2};
    use serde_json::json;

    fn params(text: &str) -> Params {
        let mut p = Params::new();
        parse_into(&mut p, text).unwrap();
        p
    }

    #[test]
    fn parses_strictly() {
        assert_eq!(
            params("a=1&b=x+y%2Bz&c="),
            Params::from([("a".into(), "1".into()), ("b".into(), "x y+z".into()), ("c".into(), "".into())])
        );
        assert!(parse_into(&mut Params::new(), "a=%zz").is_err());
        assert!(parse_into(&mut Params::new(), "a=%ff").is_err());
        assert!(parse_into(&mut Params::new(), "a=1&a=2").is_err());
        assert!(parse_into(&mut Params::new(), "a=%4").is_err());
    }

    #[test]
    fn ec2_lists_filters_and_booleans() {
        let p = params(
            "ZoneName.1=us-east-1a&ZoneName.2=us-east-1b&Filter.1.Name=state&Filter.1.Value.1=available&DryRun=true&AllAvailabilityZones=false",
        );
        let v = Reader::input(&EC2, Style::Ec2, "DescribeAvailabilityZones", p).unwrap();
        assert_eq!(
            v,
            json!({
                "ZoneNames": ["us-east-1a", "us-east-1b"],
                "Filters": [{"Name": "state", "Values": ["available"]}],
                "DryRun": true,
                "AllAvailabilityZones": false,
            })
        );
    }

    #[test]
    fn query_lists_use_member_and_empty_lists() {
        let p = params("Names.member.1=a&Names.member.2=b&PageSize=5&LoadBalancerArns=");
        let v = Reader::input(&ELBV2, Style::Query, "DescribeLoadBalancers", p).unwrap();
        assert_eq!(v, json!({"Names": ["a", "b"], "PageSize": 5, "LoadBalancerArns": []}));
    }

    #[test]
    fn query_maps_and_nested_structures() {
        // ModifyLoadBalancerAttributes: a list of key/value structures.
        let p = params(
            "LoadBalancerArn=arn&Attributes.member.1.Key=idle_timeout.timeout_seconds&Attributes.member.1.Value=60",
        );
        let v = Reader::input(&ELBV2, Style::Query, "ModifyLoadBalancerAttributes", p).unwrap();
        assert_eq!(
            v,
            json!({"LoadBalancerArn": "arn", "Attributes": [{"Key": "idle_timeout.timeout_seconds", "Value": "60"}]})
        );
    }

    #[test]
    fn query_maps_are_numbered_entries() {
        let base = "DefaultActions.member.1.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry";
        let text = format!(
            "LoadBalancerArn=a&DefaultActions.member.1.Type=authenticate-oidc&{base}.1.key=prompt&{base}.1.value=login\
             &{base}.2.key=display&{base}.2.value=page"
        );
        let v = Reader::input(&ELBV2, Style::Query, "CreateListener", params(&text)).unwrap();
        assert_eq!(
            v["DefaultActions"][0]["AuthenticateOidcConfig"]["AuthenticationRequestExtraParams"],
            json!({"prompt": "login", "display": "page"})
        );
        let missing_key = format!("LoadBalancerArn=a&{base}.1.value=login");
        let e = Reader::input(&ELBV2, Style::Query, "CreateListener", params(&missing_key)).unwrap_err();
        assert!(matches!(e, Invalid::Violation(Violation { problem: Problem::Missing, .. })), "{e:?}");
    }

    #[test]
    fn scalars_follow_their_shapes() {
        let ts = scalar_value(&Shape::Timestamp, "2024-01-02T03:04:05Z").unwrap();
        assert_eq!(ts, json!(1704164645.0));
        assert_eq!(scalar_value(&Shape::Timestamp, "yesterday"), Err("an ISO 8601 timestamp"));
        assert_eq!(scalar_value(&Shape::Float { min: None, max: None }, "1.5").unwrap(), json!(1.5));
        assert_eq!(scalar_value(&Shape::Float { min: None, max: None }, "NaN"), Err("a number"));
        assert_eq!(scalar_value(&Shape::Integer { min: None, max: None }, "-3").unwrap(), json!(-3));
        assert_eq!(scalar_value(&Shape::Blob, "aGk=").unwrap(), json!("aGk="));
    }

    #[test]
    fn item_numbers_keep_their_order_and_gaps_close() {
        let p = params("ZoneName.10=c&ZoneName.2=b&ZoneName.1=a");
        let v = Reader::input(&EC2, Style::Ec2, "DescribeAvailabilityZones", p).unwrap();
        assert_eq!(v, json!({"ZoneNames": ["a", "b", "c"]}));
    }

    #[test]
    fn unknown_parameters_and_bad_scalars_are_violations() {
        let unknown = |text: &str, style, op| match Reader::input(
            if style == Style::Ec2 { &EC2 } else { &ELBV2 },
            style,
            op,
            params(text),
        ) {
            Err(Invalid::Violation(v)) => v.problem,
            other => panic!("{other:?}"),
        };
        assert_eq!(unknown("Bogus=1", Style::Ec2, "DescribeAvailabilityZones"), Problem::Unknown("Bogus".into()));
        // EC2 never numbers a list under `.member.`
        assert_eq!(
            unknown("ZoneName.member.1=a", Style::Ec2, "DescribeAvailabilityZones"),
            Problem::Unknown("ZoneName.member.1".into())
        );
        assert_eq!(
            unknown("Names.member.0=a", Style::Query, "DescribeLoadBalancers"),
            Problem::Unknown("Names.member.0".into())
        );
        assert_eq!(
            unknown("PageSize=ten", Style::Query, "DescribeLoadBalancers"),
            Problem::Type { expected: "an integer", found: "ten".into() }
        );
        assert_eq!(
            unknown("DryRun=yes", Style::Ec2, "DescribeAvailabilityZones"),
            Problem::Type { expected: "a boolean (true or false)", found: "yes".into() }
        );
    }

    #[test]
    fn parameter_names_follow_the_style() {
        let path = [Seg::Member("Filters".into()), Seg::Index(0), Seg::Member("Values".into()), Seg::Index(1)];
        assert_eq!(parameter_name(&EC2, Style::Ec2, "DescribeAvailabilityZones", &path), "Filter.1.Value.2");
        let path = [Seg::Member("Names".into()), Seg::Index(2)];
        assert_eq!(parameter_name(&ELBV2, Style::Query, "DescribeLoadBalancers", &path), "Names.member.3");
        assert_eq!(
            parameter_name(&EC2, Style::Ec2, "DescribeAvailabilityZones", &[Seg::Member("DryRun".into())]),
            "DryRun"
        );
    }
}
