//! ELB's identifiers: the ARNs of load balancers, target groups, listeners and rules (each
//! carries the ids of the resources it belongs to, which is how its record is found), the
//! 16-hex-digit ids inside them, names, and a load balancer's DNS name and hosted zone.
//!
//! `arn:aws:elasticloadbalancing:REGION:ACCOUNT:` then
//! `loadbalancer/app|net/NAME/ID`, `targetgroup/NAME/ID`, `listener/app|net/LB-NAME/LB-ID/ID`
//! or `listener-rule/app|net/LB-NAME/LB-ID/LISTENER-ID/ID`.

use serde::{Deserialize, Serialize};

use super::ElbError;
use crate::Region;

/// The kinds of load balancer Berth runs (ELB's gateway load balancers are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LbType {
    Application,
    Network,
}

impl LbType {
    pub fn as_str(self) -> &'static str {
        match self {
            LbType::Application => "application",
            LbType::Network => "network",
        }
    }

    /// The kind as ARNs write it.
    pub fn arn_kind(self) -> &'static str {
        match self {
            LbType::Application => "app",
            LbType::Network => "net",
        }
    }

    fn from_arn_kind(kind: &str) -> Option<LbType> {
        match kind {
            "app" => Some(LbType::Application),
            "net" => Some(LbType::Network),
            _ => None,
        }
    }

    /// What ELB calls it in messages.
    pub fn title(self) -> &'static str {
        match self {
            LbType::Application => "Application Load Balancer",
            LbType::Network => "Network Load Balancer",
        }
    }
}

/// The load balancer part of an ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbRef {
    pub lb_type: LbType,
    pub name: String,
    pub id: String,
}

/// What an ELB ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    LoadBalancer(LbRef),
    TargetGroup { name: String, id: String },
    Listener { lb: LbRef, id: String },
    Rule { lb: LbRef, listener: String, id: String },
}

/// A parsed ELB ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub region: String,
    pub account: String,
    pub resource: Resource,
}

const PREFIX: &str = "arn:aws:elasticloadbalancing:";

fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn lb_ref(kind: &str, name: &str, id: &str) -> Option<LbRef> {
    let lb_type = LbType::from_arn_kind(kind)?;
    (!name.is_empty() && is_id(id)).then(|| LbRef { lb_type, name: name.to_string(), id: id.to_string() })
}

/// An ELB ARN, or `None` when `text` is not one.
pub fn parse(text: &str) -> Option<Arn> {
    let rest = text.strip_prefix(PREFIX)?;
    let mut parts = rest.splitn(3, ':');
    let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    if region.is_empty() || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let segments: Vec<&str> = resource.split('/').collect();
    let resource = match segments.as_slice() {
        ["loadbalancer", kind, name, id] => Resource::LoadBalancer(lb_ref(kind, name, id)?),
        ["targetgroup", name, id] if !name.is_empty() && is_id(id) => {
            Resource::TargetGroup { name: name.to_string(), id: id.to_string() }
        }
        ["listener", kind, name, lb, id] if is_id(id) => {
            Resource::Listener { lb: lb_ref(kind, name, lb)?, id: id.to_string() }
        }
        ["listener-rule", kind, name, lb, listener, id] if is_id(listener) && is_id(id) => {
            Resource::Rule { lb: lb_ref(kind, name, lb)?, listener: listener.to_string(), id: id.to_string() }
        }
        _ => return None,
    };
    Some(Arn { region: region.to_string(), account: account.to_string(), resource })
}

/// The kinds of ARN a request names, for their "not a valid ARN" errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArnKind {
    LoadBalancer,
    TargetGroup,
    Listener,
    Rule,
}

impl ArnKind {
    fn words(self) -> &'static str {
        match self {
            ArnKind::LoadBalancer => "load balancer",
            ArnKind::TargetGroup => "target group",
            ArnKind::Listener => "listener",
            ArnKind::Rule => "listener rule",
        }
    }

    fn of(resource: &Resource) -> ArnKind {
        match resource {
            Resource::LoadBalancer(_) => ArnKind::LoadBalancer,
            Resource::TargetGroup { .. } => ArnKind::TargetGroup,
            Resource::Listener { .. } => ArnKind::Listener,
            Resource::Rule { .. } => ArnKind::Rule,
        }
    }
}

/// `'{text}' is not a valid {kind} ARN`.
pub fn invalid(kind: ArnKind, text: &str) -> ElbError {
    ElbError::validation(format!("'{text}' is not a valid {} ARN", kind.words()))
}

/// An ARN of `kind`, else `ValidationError`. `Ok(None)`: well formed, but of another region
/// or account, so it names nothing here (the caller answers its not-found error).
pub fn expect(region: &Region<'_>, kind: ArnKind, text: &str) -> Result<Option<Resource>, ElbError> {
    let arn = parse(text).filter(|a| ArnKind::of(&a.resource) == kind).ok_or_else(|| invalid(kind, text))?;
    let here = arn.region == region.name && arn.account == region.config().account;
    Ok(here.then_some(arn.resource))
}

/// A new resource id: 16 lowercase hex digits.
pub fn new_id(region: &Region<'_>) -> String {
    let hex = region.control.ids.uuid().replace('-', "");
    hex[hex.len() - 16..].to_string()
}

fn base(region: &Region<'_>) -> String {
    format!("{PREFIX}{}:{}:", region.name, region.config().account)
}

impl LbRef {
    pub fn arn(&self, region: &Region<'_>) -> String {
        format!("{}loadbalancer/{}/{}/{}", base(region), self.lb_type.arn_kind(), self.name, self.id)
    }

    pub fn listener_arn(&self, region: &Region<'_>, listener: &str) -> String {
        format!("{}listener/{}/{}/{}/{listener}", base(region), self.lb_type.arn_kind(), self.name, self.id)
    }

    pub fn rule_arn(&self, region: &Region<'_>, listener: &str, rule: &str) -> String {
        let kind = self.lb_type.arn_kind();
        format!("{}listener-rule/{kind}/{}/{}/{listener}/{rule}", base(region), self.name, self.id)
    }
}

pub fn target_group_arn(region: &Region<'_>, name: &str, id: &str) -> String {
    format!("{}targetgroup/{name}/{id}", base(region))
}

/// ELB's rule for load balancer and target group names: 1 to 32 alphanumerics or hyphens,
/// not beginning or ending with a hyphen. `what` is "Load balancer" or "Target group".
pub fn check_name(what: &str, name: &str) -> Result<(), ElbError> {
    if name.is_empty() {
        return Err(ElbError::validation(format!("{what} name cannot be empty")));
    }
    if name.chars().count() > 32 {
        return Err(ElbError::validation(format!("{what} name '{name}' cannot be longer than '32' characters")));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ElbError::validation(format!(
            "{what} name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(ElbError::validation(format!("{what} name '{name}' cannot begin or end with a hyphen")));
    }
    Ok(())
}

/// `{name}-{id}.{region}.elb.localhost` (`internal-` first for an internal load balancer):
/// every `*.localhost` name resolves to the loopback address, where Berth's load balancers
/// listen by default.
pub fn dns_name(region: &str, name: &str, id: &str, internal: bool) -> String {
    let prefix = if internal { "internal-" } else { "" };
    format!("{prefix}{name}-{id}.{region}.elb.localhost").to_ascii_lowercase()
}

/// The id of the (notional) hosted zone a load balancer's DNS name lives in: Berth's own,
/// stable per region and load balancer type, shaped like a Route 53 zone id.
pub fn hosted_zone_id(region: &str, lb_type: LbType) -> String {
    // FNV-1a over the region and type: stable across versions and machines.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in region.bytes().chain(lb_type.as_str().bytes()) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..12).map(|i| ALPHABET[((hash >> (i * 5)) & 31) as usize] as char).collect();
    format!("Z{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_parse_to_the_resources_they_name() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188";
        let a = parse(lb).unwrap();
        assert_eq!(a.region, "us-east-1");
        let web = LbRef { lb_type: LbType::Application, name: "web".into(), id: "50dc6c495c0c9188".into() };
        assert_eq!(a.resource, Resource::LoadBalancer(web.clone()));
        let l =
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
        assert_eq!(parse(l).unwrap().resource, Resource::Listener { lb: web.clone(), id: "f2f7dc8efc522ab2".into() });
        let r = "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/net/n/1/2/3";
        assert!(matches!(parse(r).unwrap().resource, Resource::Rule { ref listener, .. } if listener == "2"));
        let t = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/73e2d6bc24d8a067";
        assert!(matches!(parse(t).unwrap().resource, Resource::TargetGroup { ref name, .. } if name == "tg"));
        for bad in [
            "web",
            "arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/app/web/1",
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/gwy/web/1",
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/xyz",
            "arn:aws:ecs:us-east-1:000000000000:loadbalancer/app/web/1",
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_follow_elb_rules() {
        assert!(check_name("Target group", "web-1").is_ok());
        assert!(check_name("Target group", &"a".repeat(32)).is_ok());
        for bad in ["", "-web", "web-", "web_1", "wéb", &"a".repeat(33)] {
            assert!(check_name("Target group", bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_name("Target group", "tf_tg").unwrap_err().to_string(),
            "Target group name 'tf_tg' can only contain characters that are alphanumeric characters or hyphens(-)"
        );
    }

    #[test]
    fn dns_names_and_zones() {
        assert_eq!(dns_name("us-east-1", "Web", "0a1b", false), "web-0a1b.us-east-1.elb.localhost");
        assert_eq!(dns_name("us-east-1", "web", "0a1b", true), "internal-web-0a1b.us-east-1.elb.localhost");
        let zone = hosted_zone_id("us-east-1", LbType::Application);
        assert_eq!(zone.len(), 13);
        assert_eq!(zone, hosted_zone_id("us-east-1", LbType::Application));
        assert_ne!(zone, hosted_zone_id("us-east-1", LbType::Network));
    }
}
