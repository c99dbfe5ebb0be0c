//! A service's `serviceConnectConfiguration` (CreateService, UpdateService), checked as ECS
//! checks it and what Berth's proxy can do: the namespace (given by name or ARN, else the
//! cluster's `serviceConnectDefaults`), each `services` entry's `portName` naming a port
//! mapping of the task definition, `discoveryName` and client aliases (names, ports, one alias
//! per entry, none used twice in the namespace), `ingressPortOverride` and `timeout`. The
//! Cloud Map services it names are then made (`berth_control::service_connect`).
//!
//! What the service keeps: the configuration as deployments show it (namespace as an ARN,
//! defaults filled in), `serviceConnectResources`, and the membership the scheduler and the
//! agents' assignments read. DescribeServices shows the first two on each deployment, as ECS
//! does, and never on the service itself.

use berth_control::ControlError;
use berth_control::discovery::{self, records::NamespaceRecord};
use berth_control::service_connect::{self, ConnectEndpoint, Membership, Served};
use serde_json::{Value, json};

use super::{Ctx, Obj, text};
use crate::error::{ApiError, ApiResult};

/// The members a service object keeps (the first two shown on deployments).
pub const CONFIG: &str = "serviceConnectConfiguration";
pub const RESOURCES: &str = "serviceConnectResources";

/// Idle timeouts when none is given: ECS's, by the port's `appProtocol`.
const IDLE_TCP: u64 = 3600;
const IDLE_HTTP: u64 = 300;

/// A checked configuration, before its Cloud Map services are made.
#[derive(Debug, Clone)]
pub struct Plan {
    namespace: NamespaceRecord,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    port_name: String,
    discovery_name: String,
    /// `(dnsName, port)`.
    alias: Option<(String, u16)>,
    container_port: u16,
    ingress_override: Option<u16>,
    /// As given (to show it back).
    timeout: Option<Value>,
    idle_timeout_seconds: u64,
}

/// The configuration a service keeps once its Cloud Map services exist.
#[derive(Debug, Clone, PartialEq)]
pub struct Made {
    pub config: Value,
    pub resources: Value,
    pub member: Membership,
}

fn refused(what: &str) -> ApiError {
    ApiError::invalid(format!(
        "Berth does not support {what} for Service Connect: its proxy runs inside the node agent, not as a container."
    ))
}

/// `v` as an object of the members in `allowed`. The protocol layer has dropped members the
/// model lacks; this refuses the model's members Berth does not handle (a newer model's), so
/// none is silently ignored.
fn object<'a>(v: &'a Value, what: &str, allowed: &[&str]) -> ApiResult<&'a Obj> {
    let o = v.as_object().ok_or_else(|| ApiError::invalid(format!("{what} must be an object.")))?;
    if let Some(unknown) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("Unknown member of {what}: {unknown}.")));
    }
    Ok(o)
}

fn given(o: &Obj, key: &str) -> bool {
    o.get(key).is_some_and(|v| !v.is_null())
}

fn port(o: &Obj, key: &str, what: &str) -> ApiResult<Option<u16>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .filter(|p| (1..=65535).contains(p))
            .map(|p| Some(p as u16))
            .ok_or_else(|| ApiError::invalid(format!("{what} must be between 1 and 65535."))),
    }
}

/// `[a-z0-9_-]`, not starting with a hyphen, 1 to `max` characters (with `.` when `dots`).
fn check_name(name: &str, max: usize, dots: bool, what: &str) -> ApiResult<()> {
    let ok = (1..=max).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || (dots && b == b'.'));
    if !ok {
        let chars = if dots {
            "lowercase letters, numbers, underscores, hyphens and periods"
        } else {
            "lowercase letters, numbers, underscores and hyphens"
        };
        return Err(ApiError::invalid(format!(
            "The {what} '{name}' is not valid: use up to {max} {chars}, not starting with a hyphen."
        )));
    }
    Ok(())
}

/// Checks a configuration against the task definition its tasks run; `None` when Service
/// Connect is off (not given, or `enabled` false).
pub fn check(ctx: &Ctx<'_>, given_config: Option<&Value>, cluster: &Obj, definition: &Obj) -> ApiResult<Option<Plan>> {
    let Some(v) = given_config.filter(|v| !v.is_null()) else { return Ok(None) };
    let what = "serviceConnectConfiguration";
    let o = object(
        v,
        what,
        &["enabled", "namespace", "services", "logConfiguration", "accessLogConfiguration", "containerConfigurations"],
    )?;
    let enabled = match o.get("enabled") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(ApiError::invalid("serviceConnectConfiguration.enabled is required and must be a boolean.")),
    };
    for (key, what) in [
        ("logConfiguration", "a logConfiguration"),
        ("accessLogConfiguration", "an accessLogConfiguration"),
        ("containerConfigurations", "containerConfigurations"),
    ] {
        if given(o, key) && !o[key].as_array().is_some_and(|a| a.is_empty()) {
            return Err(refused(what));
        }
    }
    let services = match o.get("services") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err(ApiError::invalid("serviceConnectConfiguration.services must be a list.")),
    };
    if !enabled {
        if !services.is_empty() || given(o, "namespace") {
            return Err(ApiError::invalid(
                "serviceConnectConfiguration names a namespace or services but is not enabled: set enabled to true.",
            ));
        }
        return Ok(None);
    }
    if definition.get("networkMode").and_then(Value::as_str) != Some("awsvpc") {
        return Err(ApiError::invalid(
            "Berth supports Service Connect for task definitions of the awsvpc network mode only.",
        ));
    }
    let namespace = namespace(ctx, text(o, "namespace"), cluster)?;
    let mut entries: Vec<Entry> = Vec::new();
    for s in &services {
        let e = entry(s, definition, &namespace.name)?;
        if entries.iter().any(|x| x.discovery_name == e.discovery_name) {
            return Err(ApiError::invalid(format!(
                "The discoveryName '{}' is used twice in serviceConnectConfiguration.",
                e.discovery_name
            )));
        }
        if e.alias.is_some() && entries.iter().any(|x| x.alias == e.alias) {
            let (name, port) = e.alias.clone().unwrap_or_default();
            return Err(ApiError::invalid(format!("The client alias {name}:{port} is used twice.")));
        }
        entries.push(e);
    }
    check_namespace_use(ctx, &namespace, &entries)?;
    Ok(Some(Plan { namespace, entries }))
}

fn namespace(ctx: &Ctx<'_>, given: Option<&str>, cluster: &Obj) -> ApiResult<NamespaceRecord> {
    let default = cluster.get("serviceConnectDefaults").and_then(|d| d.get("namespace")).and_then(Value::as_str);
    let Some(name) = given.or(default).filter(|n| !n.is_empty()) else {
        return Err(ApiError::invalid(
            "Service Connect needs a namespace: name one in serviceConnectConfiguration or set the cluster's \
             serviceConnectDefaults.",
        ));
    };
    let found = if name.starts_with("arn:") {
        discovery::namespaces::get(ctx, name)
    } else {
        discovery::namespaces::by_name(ctx, name)
    };
    match found {
        Ok(ns) => Ok(ns.record),
        Err(ControlError::Discovery(_)) => {
            Err(ApiError::new(400, "NamespaceNotFoundException", format!("The namespace {name} was not found.")))
        }
        Err(e) => Err(e.into()),
    }
}

fn entry(s: &Value, definition: &Obj, namespace: &str) -> ApiResult<Entry> {
    let what = "a Service Connect service";
    let o = object(s, what, &["portName", "discoveryName", "clientAliases", "ingressPortOverride", "timeout", "tls"])?;
    if given(o, "tls") {
        return Err(ApiError::invalid("Berth does not support TLS between Service Connect proxies yet."));
    }
    let port_name = text(o, "portName")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("portName is required in each Service Connect service."))?;
    let mapping = definition
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| c.get("portMappings").and_then(Value::as_array).into_iter().flatten())
        .find(|m| m.get("name").and_then(Value::as_str) == Some(port_name))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "The portName '{port_name}' does not match the name of any port mapping of the task definition."
            ))
        })?;
    let container_port = mapping
        .get("containerPort")
        .and_then(Value::as_i64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::invalid(format!("The port mapping '{port_name}' has no containerPort.")))?;
    let http = mapping.get("appProtocol").and_then(Value::as_str).is_some();
    let discovery_name = text(o, "discoveryName").unwrap_or(port_name).to_string();
    check_name(&discovery_name, 64, false, "discoveryName")?;
    let aliases = match o.get("clientAliases") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(ApiError::invalid("clientAliases must be a list.")),
    };
    if aliases.len() > 1 {
        return Err(ApiError::invalid("A Service Connect service can have at most 1 client alias."));
    }
    let alias = match aliases.first() {
        None => None,
        Some(a) => {
            let a = object(a, "a client alias", &["port", "dnsName", "testTrafficRules"])?;
            if given(a, "testTrafficRules") {
                return Err(ApiError::invalid("Berth does not support testTrafficRules for client aliases yet."));
            }
            let port = port(a, "port", "A client alias's port")?
                .ok_or_else(|| ApiError::invalid("A client alias needs a port."))?;
            let dns_name = match text(a, "dnsName") {
                Some(n) => n.to_string(),
                None => format!("{discovery_name}.{namespace}"),
            };
            check_name(&dns_name, 127, true, "client alias dnsName")?;
            Some((dns_name, port))
        }
    };
    let ingress_override = port(o, "ingressPortOverride", "ingressPortOverride")?;
    if ingress_override == Some(container_port) {
        return Err(ApiError::invalid(format!(
            "ingressPortOverride {container_port} is the container port of '{port_name}': the proxy listens on a port \
             of its own."
        )));
    }
    let timeout = o.get("timeout").filter(|t| !t.is_null()).cloned();
    let mut idle = if http { IDLE_HTTP } else { IDLE_TCP };
    if let Some(t) = &timeout {
        let t = object(t, "timeout", &["idleTimeoutSeconds", "perRequestTimeoutSeconds"])?;
        let seconds = |key: &str| match t.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|s| (0..=2_147_483_647).contains(s))
                .map(|s| Some(s as u64))
                .ok_or_else(|| ApiError::invalid(format!("{key} must be between 0 and 2147483647."))),
        };
        if let Some(s) = seconds("idleTimeoutSeconds")? {
            idle = s;
        }
        if seconds("perRequestTimeoutSeconds")?.is_some() {
            return Err(if http {
                ApiError::invalid("Berth does not support perRequestTimeoutSeconds yet: its proxy relays connections.")
            } else {
                ApiError::invalid(format!(
                    "perRequestTimeoutSeconds can only be set when the port mapping '{port_name}' has an appProtocol."
                ))
            });
        }
    }
    Ok(Entry {
        port_name: port_name.to_string(),
        discovery_name,
        alias,
        container_port,
        ingress_override,
        timeout,
        idle_timeout_seconds: idle,
    })
}

/// No Cloud Map service of the namespace that Service Connect did not make takes a discovery
/// name, and no other service of the namespace has one of the client aliases.
fn check_namespace_use(ctx: &Ctx<'_>, ns: &NamespaceRecord, entries: &[Entry]) -> ApiResult<()> {
    let theirs: Vec<_> = discovery::services::list(ctx)?.into_iter().filter(|s| s.namespace_id == ns.id).collect();
    for e in entries {
        if let Some(s) = theirs.iter().find(|s| s.name.eq_ignore_ascii_case(&e.discovery_name))
            && !service_connect::managed(s)
        {
            return Err(ApiError::invalid(format!(
                "The namespace {} has a Cloud Map service named {} that Service Connect did not make: give this \
                 Service Connect service another discoveryName.",
                ns.name, s.name
            )));
        }
        let Some(alias) = &e.alias else { continue };
        let taken = theirs.iter().find(|s| {
            !s.name.eq_ignore_ascii_case(&e.discovery_name)
                && s.connect.as_ref().is_some_and(|c| c.aliases.contains(alias))
        });
        if let Some(s) = taken {
            return Err(ApiError::invalid(format!(
                "The client alias {}:{} is already used in namespace {} (by {}).",
                alias.0, alias.1, ns.name, s.name
            )));
        }
    }
    Ok(())
}

/// Makes (or brings up to date) the plan's Cloud Map services; what the service keeps.
pub async fn make(ctx: &Ctx<'_>, plan: &Plan) -> ApiResult<Made> {
    let ns = &plan.namespace;
    let mut services = Vec::new();
    let mut resources = Vec::new();
    let mut served = Vec::new();
    for e in &plan.entries {
        let endpoint = ConnectEndpoint {
            aliases: e.alias.iter().cloned().collect(),
            idle_timeout_seconds: e.idle_timeout_seconds,
        };
        let made = service_connect::discovery_service(ctx, &ns.id, &e.discovery_name, &endpoint).await.map_err(
            |e| match e {
                ControlError::Discovery(d) => ApiError::invalid(d.to_string()),
                other => other.into(),
            },
        )?;
        let mut shown = json!({"portName": e.port_name, "discoveryName": e.discovery_name});
        if let Some((dns_name, port)) = &e.alias {
            shown["clientAliases"] = json!([{"port": port, "dnsName": dns_name}]);
        }
        if let Some(p) = e.ingress_override {
            shown["ingressPortOverride"] = json!(p);
        }
        if let Some(t) = &e.timeout {
            shown["timeout"] = t.clone();
        }
        services.push(shown);
        resources.push(json!({"discoveryName": e.discovery_name, "discoveryArn": made.arn}));
        served.push(Served {
            discovery_name: e.discovery_name.clone(),
            discovery_arn: made.arn,
            port: e.ingress_override.unwrap_or(e.container_port),
            ingress_target: e.ingress_override.map(|_| e.container_port),
            idle_timeout_seconds: e.idle_timeout_seconds,
        });
    }
    let mut config = json!({"enabled": true, "namespace": ns.arn});
    if !services.is_empty() {
        config["services"] = Value::Array(services);
    }
    Ok(Made {
        config,
        resources: Value::Array(resources),
        member: Membership { namespace_id: ns.id.clone(), namespace_name: ns.name.clone(), services: served },
    })
}

/// Puts what a service keeps on its object (`None`: Service Connect off); whether it changed.
pub fn keep(service: &mut Obj, made: Option<&Made>) -> bool {
    let before = service.get(service_connect::MEMBER).cloned();
    match made {
        Some(m) => {
            service.insert(CONFIG.into(), m.config.clone());
            service.insert(RESOURCES.into(), m.resources.clone());
            service.insert(service_connect::MEMBER.into(), service_connect::to_member(&m.member));
        }
        None => {
            for k in [CONFIG, RESOURCES, service_connect::MEMBER] {
                service.remove(k);
            }
        }
    }
    service.get(service_connect::MEMBER).cloned() != before
}

/// Takes what the service keeps off its object as DescribeServices shows it; the
/// configuration and resources each deployment shows.
pub fn shown(service: &mut Obj) -> Option<(Value, Value)> {
    service.remove(service_connect::MEMBER);
    let config = service.remove(CONFIG)?;
    let resources = service.remove(RESOURCES).unwrap_or_else(|| json!([]));
    Some((config, resources))
}
