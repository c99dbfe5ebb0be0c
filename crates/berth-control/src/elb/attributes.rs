//! The attributes of load balancers, target groups and listeners: which keys each kind has,
//! ELB's default and valid values for each, and which values Berth acts on.
//!
//! A record keeps only the values set on it ([`Attributes`]); describing overlays them on
//! the defaults of its kind ([`describe`]). A key the kind does not have, or a value ELB
//! refuses, is a `ValidationError`; a valid value Berth cannot honour (access logs to S3, an
//! algorithm its data plane lacks, ...) is refused by name ([`ElbError::Unsupported`]), never
//! stored to no effect. A few attributes are stored and reported only, because they describe
//! something Berth's single-node load balancer always does one way; `docs/differences.md`
//! lists them.

use std::collections::BTreeMap;

use super::ElbError;
use super::arns::LbType;
use super::target_groups::{Protocol, TargetType};

/// The values set on a resource, by key (defaults are not stored).
pub type Attributes = BTreeMap<String, String>;

/// What values a key takes, as ELB checks them.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Bool,
    /// An integer in a range, inclusive.
    Int(i64, i64),
    /// `off` or an integer in a range.
    IntOrOff(i64, i64),
    OneOf(&'static [&'static str]),
    /// Any text up to this many characters.
    Text(usize),
    /// `slow_start.duration_seconds`: 0 (off) or 30 to 900.
    SlowStart,
}

/// Which valid values Berth acts on.
#[derive(Debug, Clone, Copy)]
enum Support {
    All,
    /// Only these, and why not the others.
    Only(&'static [&'static str], &'static str),
    /// Only the default, and why.
    Default(&'static str),
}

#[derive(Debug, Clone, Copy)]
struct Spec {
    key: &'static str,
    default: &'static str,
    rule: Rule,
    support: Support,
}

const fn spec(key: &'static str, default: &'static str, rule: Rule, support: Support) -> Spec {
    Spec { key, default, rule, support }
}

const NO_S3: &str = "Berth has no S3 to write logs to";
const BOOL: Rule = Rule::Bool;

const ALB: &[Spec] = &[
    spec("access_logs.s3.enabled", "false", BOOL, Support::Default(NO_S3)),
    spec("access_logs.s3.bucket", "", Rule::Text(1024), Support::Default(NO_S3)),
    spec("access_logs.s3.prefix", "", Rule::Text(1024), Support::Default(NO_S3)),
    spec(
        "client_keep_alive.seconds",
        "3600",
        Rule::Int(60, 604_800),
        Support::Default("Berth keeps a client connection open for as long as it is in use"),
    ),
    spec("connection_logs.s3.enabled", "false", BOOL, Support::Default(NO_S3)),
    spec("connection_logs.s3.bucket", "", Rule::Text(1024), Support::Default(NO_S3)),
    spec("connection_logs.s3.prefix", "", Rule::Text(1024), Support::Default(NO_S3)),
    spec("deletion_protection.enabled", "false", BOOL, Support::All),
    spec("idle_timeout.timeout_seconds", "60", Rule::Int(1, 4000), Support::All),
    spec("load_balancing.cross_zone.enabled", "true", Rule::OneOf(&["true"]), Support::All),
    spec(
        "routing.http.desync_mitigation_mode",
        "defensive",
        Rule::OneOf(&["monitor", "defensive", "strictest"]),
        Support::Default("Berth's load balancer has one way of handling ambiguous requests"),
    ),
    spec(
        "routing.http.drop_invalid_header_fields.enabled",
        "false",
        BOOL,
        Support::Default("Berth forwards the header fields it accepts"),
    ),
    spec(
        "routing.http.preserve_host_header.enabled",
        "false",
        BOOL,
        Support::Default("Berth forwards the Host header as ELB does by default"),
    ),
    // Both only concern HTTPS listeners, which Berth has none of: any value is true to ELB.
    spec("routing.http.x_amzn_tls_version_and_cipher_suite.enabled", "false", BOOL, Support::All),
    spec(
        "routing.http.xff_client_port.enabled",
        "false",
        BOOL,
        Support::Default("Berth adds the client's address to X-Forwarded-For without its port"),
    ),
    spec(
        "routing.http.xff_header_processing.mode",
        "append",
        Rule::OneOf(&["append", "preserve", "remove"]),
        Support::Default("Berth appends the client's address to X-Forwarded-For"),
    ),
    spec("routing.http2.enabled", "true", BOOL, Support::All),
    spec("waf.fail_open.enabled", "false", BOOL, Support::Default("Berth has no web application firewall")),
    spec("zonal_shift.config.enabled", "false", BOOL, Support::Default("Berth has no zonal shift")),
];

const NLB: &[Spec] = &[
    spec("access_logs.s3.enabled", "false", BOOL, Support::Default(NO_S3)),
    spec("access_logs.s3.bucket", "", Rule::Text(1024), Support::Default(NO_S3)),
    spec("access_logs.s3.prefix", "", Rule::Text(1024), Support::Default(NO_S3)),
    spec("deletion_protection.enabled", "false", BOOL, Support::All),
    spec(
        "dns_record.client_routing_policy",
        "any_availability_zone",
        Rule::OneOf(&["any_availability_zone", "availability_zone_affinity", "partial_availability_zone_affinity"]),
        Support::Default("Berth's DNS names resolve to the one listener address"),
    ),
    // Stored and reported: Berth's load balancer is one node that reaches every zone.
    spec("load_balancing.cross_zone.enabled", "false", BOOL, Support::All),
    spec("zonal_shift.config.enabled", "false", BOOL, Support::Default("Berth has no zonal shift")),
];

const TARGET_GROUP_HEALTH: [Spec; 4] = [
    spec(
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
        Rule::IntOrOff(1, 1000),
        Support::Default("Berth has no DNS failover"),
    ),
    spec(
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
        Rule::IntOrOff(1, 100),
        Support::Default("Berth has no DNS failover"),
    ),
    spec(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
        Rule::Int(1, 1000),
        Support::Default("Berth routes to every target when none is healthy"),
    ),
    spec(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
        Rule::IntOrOff(1, 100),
        Support::Default("Berth routes to every target when none is healthy"),
    ),
];

const HTTP_GROUP: &[Spec] = &[
    spec("deregistration_delay.timeout_seconds", "300", Rule::Int(0, 3600), Support::All),
    spec(
        "load_balancing.algorithm.anomaly_mitigation",
        "off",
        Rule::OneOf(&["on", "off"]),
        Support::Default("Berth has no weighted_random algorithm"),
    ),
    spec(
        "load_balancing.algorithm.type",
        "round_robin",
        Rule::OneOf(&["round_robin", "least_outstanding_requests", "weighted_random"]),
        Support::Only(
            &["round_robin", "least_outstanding_requests"],
            "Berth balances by round_robin or least_outstanding_requests",
        ),
    ),
    // Stored and reported: Berth's load balancer is one node that reaches every zone.
    spec(
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
        Rule::OneOf(&["true", "false", "use_load_balancer_configuration"]),
        Support::All,
    ),
    spec("slow_start.duration_seconds", "0", Rule::SlowStart, Support::All),
    spec(
        "stickiness.app_cookie.cookie_name",
        "",
        Rule::Text(256),
        Support::Default("Berth has no app_cookie stickiness"),
    ),
    spec(
        "stickiness.app_cookie.duration_seconds",
        "86400",
        Rule::Int(1, 604_800),
        Support::Default("Berth has no app_cookie stickiness"),
    ),
    spec("stickiness.enabled", "false", BOOL, Support::All),
    spec("stickiness.lb_cookie.duration_seconds", "86400", Rule::Int(1, 604_800), Support::All),
    spec(
        "stickiness.type",
        "lb_cookie",
        Rule::OneOf(&["lb_cookie", "app_cookie"]),
        Support::Only(&["lb_cookie"], "Berth has lb_cookie stickiness only"),
    ),
];

const TCP_GROUP: &[Spec] = &[
    spec(
        "deregistration_delay.connection_termination.enabled",
        "false",
        BOOL,
        Support::Default("Berth lets a draining target's connections run until the deregistration delay"),
    ),
    spec("deregistration_delay.timeout_seconds", "300", Rule::Int(0, 3600), Support::All),
    spec(
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
        Rule::OneOf(&["true", "false", "use_load_balancer_configuration"]),
        Support::All,
    ),
    spec(
        "preserve_client_ip.enabled",
        "false",
        BOOL,
        Support::Default("Berth's TCP proxy connects to targets from its own address"),
    ),
    spec("proxy_protocol_v2.enabled", "false", BOOL, Support::Default("Berth does not send the proxy protocol header")),
    spec("stickiness.enabled", "false", BOOL, Support::All),
    spec("stickiness.type", "source_ip", Rule::OneOf(&["source_ip"]), Support::All),
];

const NO_HEADERS: &str = "Berth does not add response headers yet";

/// A response header an HTTP listener could add (none by default).
const fn header(key: &'static str) -> Spec {
    spec(key, "", Rule::Text(1024), Support::Default(NO_HEADERS))
}

const HTTP_LISTENER: &[Spec] = &[
    header("routing.http.response.access_control_allow_credentials.header_value"),
    header("routing.http.response.access_control_allow_headers.header_value"),
    header("routing.http.response.access_control_allow_methods.header_value"),
    header("routing.http.response.access_control_allow_origin.header_value"),
    header("routing.http.response.access_control_expose_headers.header_value"),
    header("routing.http.response.access_control_max_age.header_value"),
    header("routing.http.response.content_security_policy.header_value"),
    spec(
        "routing.http.response.server.enabled",
        "true",
        BOOL,
        Support::Default("Berth's own responses name their server"),
    ),
    header("routing.http.response.x_content_type_options.header_value"),
    header("routing.http.response.x_frame_options.header_value"),
];

const TCP_LISTENER: &[Spec] = &[spec("tcp.idle_timeout.seconds", "350", Rule::Int(60, 6000), Support::All)];

/// Whose attributes: the kind decides the keys, defaults and rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    LoadBalancer(LbType),
    TargetGroup(Protocol, TargetType),
    Listener(Protocol),
}

impl Owner {
    fn specs(self) -> Vec<Spec> {
        match self {
            Owner::LoadBalancer(LbType::Application) => ALB.to_vec(),
            Owner::LoadBalancer(LbType::Network) => NLB.to_vec(),
            Owner::TargetGroup(protocol, _) => {
                let own = if protocol == Protocol::Http { HTTP_GROUP } else { TCP_GROUP };
                let mut all = own.to_vec();
                all.extend(TARGET_GROUP_HEALTH);
                all.sort_by_key(|s| s.key);
                all
            }
            Owner::Listener(Protocol::Http) => HTTP_LISTENER.to_vec(),
            Owner::Listener(Protocol::Tcp) => TCP_LISTENER.to_vec(),
        }
    }

    fn words(self) -> &'static str {
        match self {
            Owner::LoadBalancer(_) => "Load balancer",
            Owner::TargetGroup(..) => "Target group",
            Owner::Listener(_) => "Listener",
        }
    }
}

/// Every attribute of `owner`, in key order: the value set, else the default.
pub fn describe(owner: Owner, set: &Attributes) -> Vec<(String, String)> {
    owner.specs().iter().map(|s| (s.key.to_string(), value(s, set).to_string())).collect()
}

fn value<'a>(spec: &Spec, set: &'a Attributes) -> &'a str {
    set.get(spec.key).map_or(spec.default, String::as_str)
}

/// The value of `key` for `owner`: set, else default. Panics on a key the kind lacks (a bug).
pub fn get<'a>(owner: Owner, set: &'a Attributes, key: &str) -> &'a str {
    let specs = owner.specs();
    let spec = specs.iter().find(|s| s.key == key).unwrap_or_else(|| panic!("{key} is not an attribute of {owner:?}"));
    match set.get(key) {
        Some(v) => v,
        None => spec.default,
    }
}

/// `get` as a number (the rules made sure it is one).
pub fn number(owner: Owner, set: &Attributes, key: &str) -> u64 {
    get(owner, set, key).parse().unwrap_or(0)
}

pub fn flag(owner: Owner, set: &Attributes, key: &str) -> bool {
    get(owner, set, key) == "true"
}

fn check_value(owner: Owner, spec: &Spec, value: &str) -> Result<(), ElbError> {
    let int = |text: &str| text.parse::<i64>().ok();
    let valid = match spec.rule {
        Rule::Bool => matches!(value, "true" | "false"),
        Rule::Int(min, max) => int(value).is_some_and(|n| (min..=max).contains(&n)),
        Rule::IntOrOff(min, max) => value == "off" || int(value).is_some_and(|n| (min..=max).contains(&n)),
        Rule::OneOf(values) => values.contains(&value),
        Rule::Text(max) => value.chars().count() <= max,
        Rule::SlowStart => int(value).is_some_and(|n| n == 0 || (30..=900).contains(&n)),
    };
    if !valid {
        let expected = match spec.rule {
            Rule::Bool => "'true' or 'false'".to_string(),
            Rule::Int(min, max) => format!("an integer from {min} to {max}"),
            Rule::IntOrOff(min, max) => format!("'off' or an integer from {min} to {max}"),
            Rule::OneOf(values) => format!("one of [{}]", values.join(", ")),
            Rule::Text(max) => format!("at most {max} characters"),
            Rule::SlowStart => "0 (off) or an integer from 30 to 900".to_string(),
        };
        return Err(ElbError::validation(format!(
            "{} attribute '{}' value '{value}' is not valid: it must be {expected}",
            owner.words(),
            spec.key
        )));
    }
    let supported = match spec.support {
        Support::All => return Ok(()),
        Support::Only(values, why) => (values.contains(&value), why),
        Support::Default(why) => (value == spec.default, why),
    };
    match supported {
        (true, _) => Ok(()),
        (false, why) => Err(ElbError::unsupported(format!(
            "Berth does not support {} attribute '{}' = '{value}': {why}",
            owner.words().to_lowercase(),
            spec.key
        ))),
    }
}

/// `changes` applied to `set`: every key known to `owner`, every value valid and acted on
/// (a value equal to the default is not stored), and the combination consistent.
pub fn apply(owner: Owner, set: &Attributes, changes: &[(String, String)]) -> Result<Attributes, ElbError> {
    let specs = owner.specs();
    let mut out = set.clone();
    for (key, value) in changes {
        let spec = specs.iter().find(|s| s.key == key.as_str()).ok_or_else(|| {
            ElbError::validation(format!("{} attribute key '{key}' is not recognized", owner.words()))
        })?;
        check_value(owner, spec, value)?;
        if value == spec.default {
            out.remove(key);
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    check_combination(owner, &out)?;
    Ok(out)
}

/// A record with attributes.
pub trait Attributed {
    fn owner(&self) -> Owner;
    fn attributes_mut(&mut self) -> &mut Attributes;
}

/// `changes` applied to a record's attributes (see [`apply`]).
pub fn change<T: Attributed>(record: &mut T, changes: &[(String, String)]) -> crate::ControlResult<()> {
    let owner = record.owner();
    let set = record.attributes_mut();
    *set = apply(owner, set, changes)?;
    Ok(())
}

/// Rules across keys.
fn check_combination(owner: Owner, set: &Attributes) -> Result<(), ElbError> {
    if let Owner::TargetGroup(Protocol::Http, _) = owner {
        let lor = get(owner, set, "load_balancing.algorithm.type") == "least_outstanding_requests";
        if lor && get(owner, set, "slow_start.duration_seconds") != "0" {
            return Err(ElbError::InvalidConfigurationRequest(
                "Slow start mode is not supported with the least_outstanding_requests algorithm".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALB_OWNER: Owner = Owner::LoadBalancer(LbType::Application);
    const HTTP_TG: Owner = Owner::TargetGroup(Protocol::Http, TargetType::Ip);

    fn change(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_string(), v.to_string())]
    }

    #[test]
    fn defaults_are_elbs_and_only_changes_are_stored() {
        let all = describe(ALB_OWNER, &Attributes::new());
        assert!(all.contains(&("idle_timeout.timeout_seconds".into(), "60".into())));
        assert!(all.contains(&("routing.http2.enabled".into(), "true".into())));
        let set = apply(ALB_OWNER, &Attributes::new(), &change("idle_timeout.timeout_seconds", "120")).unwrap();
        assert_eq!(get(ALB_OWNER, &set, "idle_timeout.timeout_seconds"), "120");
        let back = apply(ALB_OWNER, &set, &change("idle_timeout.timeout_seconds", "60")).unwrap();
        assert!(back.is_empty(), "a default is not stored");
        let tg = describe(HTTP_TG, &Attributes::new());
        assert!(tg.contains(&("deregistration_delay.timeout_seconds".into(), "300".into())));
        assert!(tg.contains(&("stickiness.type".into(), "lb_cookie".into())));
        let keys: Vec<_> = tg.iter().map(|(k, _)| k.clone()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let nlb_tg = describe(Owner::TargetGroup(Protocol::Tcp, TargetType::Instance), &Attributes::new());
        assert!(nlb_tg.contains(&("stickiness.type".into(), "source_ip".into())));
    }

    #[test]
    fn bad_keys_values_and_unsupported_values_are_refused() {
        let none = Attributes::new();
        let e = apply(ALB_OWNER, &none, &change("bogus", "1")).unwrap_err();
        assert_eq!(e.to_string(), "Load balancer attribute key 'bogus' is not recognized");
        for (k, v) in [
            ("idle_timeout.timeout_seconds", "0"),
            ("idle_timeout.timeout_seconds", "4001"),
            ("idle_timeout.timeout_seconds", "ten"),
            ("deletion_protection.enabled", "yes"),
            ("load_balancing.cross_zone.enabled", "false"),
        ] {
            let e = apply(ALB_OWNER, &none, &change(k, v)).unwrap_err();
            assert!(matches!(e, ElbError::Validation(_)), "{k}={v}: {e}");
        }
        let e = apply(ALB_OWNER, &none, &change("access_logs.s3.enabled", "true")).unwrap_err();
        assert!(matches!(e, ElbError::Unsupported(_)), "{e}");
        for v in ["1", "29", "901"] {
            assert!(apply(HTTP_TG, &none, &change("slow_start.duration_seconds", v)).is_err(), "{v}");
        }
        for v in ["0", "30", "900"] {
            assert!(apply(HTTP_TG, &none, &change("slow_start.duration_seconds", v)).is_ok(), "{v}");
        }
        assert!(matches!(
            apply(HTTP_TG, &none, &change("load_balancing.algorithm.type", "weighted_random")).unwrap_err(),
            ElbError::Unsupported(_)
        ));
        let both = vec![
            ("load_balancing.algorithm.type".to_string(), "least_outstanding_requests".to_string()),
            ("slow_start.duration_seconds".to_string(), "30".to_string()),
        ];
        assert_eq!(apply(HTTP_TG, &none, &both).unwrap_err().code(), "InvalidConfigurationRequest");
        let e = apply(Owner::Listener(Protocol::Tcp), &none, &change("tcp.idle_timeout.seconds", "59")).unwrap_err();
        assert!(e.to_string().contains("an integer from 60 to 6000"), "{e}");
    }
}
