//! XML output, shared by the AWS query and EC2 query protocols: a small writer that escapes
//! what it writes, and the encoder that writes a handler's value tree through an output
//! shape — element names from the model's location names, lists as wrapped items
//! (`<member>`, EC2's `<item>`) or flattened, maps as `<entry><key/><value/></entry>`,
//! timestamps as ISO 8601, booleans as `true`/`false`. A member the shape does not have, or
//! a value of the wrong type, is a server error: the handler broke the contract.

use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

use super::shapes::{Model, Ref, Shape};
use crate::error::{ApiError, ApiResult};

/// An XML document being written.
pub struct Xml(String);

impl Xml {
    pub fn new() -> Self {
        Xml(String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"))
    }

    /// Opens `<name>`, with `xmlns` when given.
    pub fn open(&mut self, name: &str, namespace: Option<&str>) {
        self.0.push('<');
        self.0.push_str(name);
        if let Some(ns) = namespace {
            self.0.push_str(" xmlns=\"");
            self.escape(ns);
            self.0.push('"');
        }
        self.0.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.0.push_str("</");
        self.0.push_str(name);
        self.0.push('>');
    }

    /// `<name>text</name>`.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.open(name, None);
        self.escape(text);
        self.close(name);
    }

    /// Escaped text. Characters XML 1.0 cannot carry (most control characters) become U+FFFD.
    pub fn escape(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&apos;"),
                '\r' => self.0.push_str("&#xD;"),
                '\t' | '\n' => self.0.push(c),
                c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => self.0.push('\u{FFFD}'),
                c => self.0.push(c),
            }
        }
    }

    pub fn finish(self) -> String {
        self.0
    }
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

fn misfit(name: &str, shape: &str, value: &Value) -> ApiError {
    ApiError::server(format!(
        "the response member {name} does not fit the model's shape {shape}: {}",
        super::validate::kind(value)
    ))
}

/// ISO 8601 with milliseconds, as AWS writes timestamps in XML.
pub fn timestamp(seconds: f64) -> Option<String> {
    let millis = (seconds * 1000.0).round() as i128;
    let t = OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok()?;
    t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z")).ok()
}

/// Writes the members of `value`, a structure of shape `shape`, as child elements in the
/// order the handler gave them.
pub fn members(model: &Model, shape: &str, value: &Value, out: &mut Xml) -> ApiResult<()> {
    let Shape::Structure { members, .. } = model.shape_named(shape)? else {
        return Err(ApiError::server(format!("output shape {shape} is not a structure")));
    };
    let Value::Object(obj) = value else {
        return Err(misfit("(the output)", shape, value));
    };
    for (name, v) in obj {
        let r = members.get(name).ok_or_else(|| {
            ApiError::server(format!("the response member {name} is not in the model's shape {shape}"))
        })?;
        if v.is_null() {
            continue;
        }
        let mut element = r.location_name.clone().unwrap_or_else(|| name.clone());
        // A flattened list repeats its items' element name in place of its own.
        if r.flattened
            && let Shape::List { member, .. } = model.shape_named(&r.shape)?
            && let Some(item) = &member.location_name
        {
            element = item.clone();
        }
        write(model, r, &element, v, out)?;
    }
    Ok(())
}

fn write(model: &Model, r: &Ref, name: &str, value: &Value, out: &mut Xml) -> ApiResult<()> {
    let shape = model.shape_named(&r.shape)?;
    match shape {
        Shape::Structure { .. } => {
            out.open(name, None);
            members(model, &r.shape, value, out)?;
            out.close(name);
        }
        Shape::List { member, .. } => {
            let Value::Array(items) = value else {
                return Err(misfit(name, &r.shape, value));
            };
            let item = member.location_name.as_deref().unwrap_or("member");
            if r.flattened {
                for v in items {
                    write(model, member, name, v, out)?;
                }
            } else {
                out.open(name, None);
                for v in items {
                    write(model, member, item, v, out)?;
                }
                out.close(name);
            }
        }
        Shape::Map { key, value: value_ref, .. } => {
            let Value::Object(entries) = value else {
                return Err(misfit(name, &r.shape, value));
            };
            let key_name = key.location_name.as_deref().unwrap_or("key");
            let value_name = value_ref.location_name.as_deref().unwrap_or("value");
            if !r.flattened {
                out.open(name, None);
            }
            for (k, v) in entries {
                let entry = if r.flattened { name } else { "entry" };
                out.open(entry, None);
                out.leaf(key_name, k);
                write(model, value_ref, value_name, v, out)?;
                out.close(entry);
            }
            if !r.flattened {
                out.close(name);
            }
        }
        scalar => out.leaf(name, &scalar_text(scalar, value).ok_or_else(|| misfit(name, &r.shape, value))?),
    }
    Ok(())
}

fn scalar_text(shape: &Shape, value: &Value) -> Option<String> {
    match (shape, value) {
        (Shape::String { .. } | Shape::Blob, Value::String(s)) => Some(s.clone()),
        (Shape::Integer { .. }, Value::Number(n)) => n
            .as_i64()
            .map(|i| i.to_string())
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| format!("{f:.0}"))),
        (Shape::Float { .. }, Value::Number(n)) => n.as_f64().map(|f| f.to_string()),
        (Shape::Boolean, Value::Bool(b)) => Some(b.to_string()),
        (Shape::Timestamp, Value::Number(n)) => timestamp(n.as_f64()?),
        (Shape::Timestamp, Value::String(s)) => super::validate::epoch_seconds(s).and_then(timestamp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::shapes::{EC2, ELBV2};
    use serde_json::json;

    fn body(model: &Model, shape: &str, value: Value) -> ApiResult<String> {
        let mut out = Xml(String::new());
        members(model, shape, &value, &mut out)?;
        Ok(out.finish())
    }

    #[test]
    fn ec2_lists_are_items_under_location_names() {
        let zone = json!({"ZoneName": "us-east-1a", "State": "available", "Messages": [], "OptInStatus": "opt-in-not-required"});
        let xml = body(&EC2, "DescribeAvailabilityZonesResult", json!({"AvailabilityZones": [zone]})).unwrap();
        assert_eq!(
            xml,
            "<availabilityZoneInfo><item><zoneName>us-east-1a</zoneName><zoneState>available</zoneState>\
             <messageSet></messageSet><optInStatus>opt-in-not-required</optInStatus></item></availabilityZoneInfo>"
        );
    }

    #[test]
    fn query_lists_are_members_and_timestamps_iso() {
        let lb =
            json!({"LoadBalancerName": "a&b", "CreatedTime": 1700000000.25, "AvailabilityZones": [{"ZoneName": "z"}]});
        let xml =
            body(&ELBV2, "DescribeLoadBalancersOutput", json!({"LoadBalancers": [lb], "NextMarker": null})).unwrap();
        assert_eq!(
            xml,
            "<LoadBalancers><member><LoadBalancerName>a&amp;b</LoadBalancerName>\
             <CreatedTime>2023-11-14T22:13:20.250Z</CreatedTime>\
             <AvailabilityZones><member><ZoneName>z</ZoneName></member></AvailabilityZones></member></LoadBalancers>"
        );
    }

    #[test]
    fn integers_booleans_and_maps() {
        let xml = body(&ELBV2, "DescribeAccountLimitsOutput", json!({"Limits": [{"Name": "x", "Max": "5"}]})).unwrap();
        assert_eq!(xml, "<Limits><member><Name>x</Name><Max>5</Max></member></Limits>");
        let xml = body(&EC2, "DeleteSecurityGroupResult", json!({"Return": true, "GroupId": "sg-1"})).unwrap();
        assert_eq!(xml, "<return>true</return><groupId>sg-1</groupId>");
    }

    #[test]
    fn maps_are_entries_of_keys_and_values() {
        let params = json!({"prompt": "login", "display": "page"});
        let listener = json!({"Port": 80, "DefaultActions": [{"AuthenticateOidcConfig": {"AuthenticationRequestExtraParams": params}}]});
        let xml = body(&ELBV2, "DescribeListenersOutput", json!({"Listeners": [listener]})).unwrap();
        assert_eq!(
            xml,
            "<Listeners><member><Port>80</Port><DefaultActions><member><AuthenticateOidcConfig>\
             <AuthenticationRequestExtraParams><entry><key>prompt</key><value>login</value></entry>\
             <entry><key>display</key><value>page</value></entry></AuthenticationRequestExtraParams>\
             </AuthenticateOidcConfig></member></DefaultActions></member></Listeners>"
        );
    }

    #[test]
    fn a_member_outside_the_shape_or_a_wrong_type_is_a_server_error() {
        let e = body(&EC2, "DescribeAvailabilityZonesResult", json!({"Zones": []})).unwrap_err();
        assert_eq!(e.code, "ServerException");
        let e =
            body(&EC2, "DescribeAvailabilityZonesResult", json!({"AvailabilityZones": [{"ZoneName": 3}]})).unwrap_err();
        assert!(e.message.contains("zoneName"), "{}", e.message);
    }

    #[test]
    fn text_is_escaped_and_control_characters_replaced() {
        let mut x = Xml(String::new());
        x.leaf("m", "<a> & \"b\" 'c'\u{1}");
        assert_eq!(x.finish(), "<m>&lt;a&gt; &amp; &quot;b&quot; &apos;c&apos;\u{FFFD}</m>");
    }
}
