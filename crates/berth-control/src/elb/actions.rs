//! Rule actions: `forward` (to one target group, or to up to five by weight, with optional
//! group stickiness), `fixed-response` and `redirect`, with ELB's rules for each. A rule (and
//! a listener's default rule) has exactly one action: the authenticate and JWT actions that
//! ELB runs before it need HTTPS listeners, which Berth does not have. A network load
//! balancer's listener forwards to one group.
//!
//! Whether the groups named exist and fit the listener is the caller's to check (it needs
//! the store): [`Action::target_groups`] lists them.

use serde::{Deserialize, Serialize};

use super::ElbError;
use super::arns::{self, ArnKind, LbType};
use super::limits::TARGET_GROUPS_PER_ACTION;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedGroup {
    pub arn: String,
    pub weight: u32,
}

/// Group-level stickiness of a weighted forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStickiness {
    pub enabled: bool,
    pub duration: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectStatus {
    #[serde(rename = "HTTP_301")]
    Permanent,
    #[serde(rename = "HTTP_302")]
    Found,
}

impl RedirectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RedirectStatus::Permanent => "HTTP_301",
            RedirectStatus::Found => "HTTP_302",
        }
    }

    pub fn code(self) -> u16 {
        match self {
            RedirectStatus::Permanent => 301,
            RedirectStatus::Found => 302,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ActionKind {
    Forward {
        groups: Vec<WeightedGroup>,
        stickiness: GroupStickiness,
    },
    FixedResponse {
        /// Three digits, 2xx, 4xx or 5xx.
        status: String,
        content_type: Option<String>,
        body: Option<String>,
    },
    /// Each part as given or ELB's default (`#{protocol}`, `#{host}`, `#{port}`,
    /// `/#{path}`, `#{query}`).
    Redirect {
        protocol: String,
        host: String,
        port: String,
        path: String,
        query: String,
        status: RedirectStatus,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// The order as given (ELB's `Order`; with one action per rule it orders nothing).
    pub order: Option<u32>,
    pub kind: ActionKind,
}

impl Action {
    /// The ARNs of the target groups it forwards to.
    pub fn target_groups(&self) -> impl Iterator<Item = &str> {
        let groups = match &self.kind {
            ActionKind::Forward { groups, .. } => groups.as_slice(),
            _ => &[],
        };
        groups.iter().map(|g| g.arn.as_str())
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ActionKind::Forward { .. } => "forward",
            ActionKind::FixedResponse { .. } => "fixed-response",
            ActionKind::Redirect { .. } => "redirect",
        }
    }
}

/// One action as a request gives it.
#[derive(Debug, Clone, Default)]
pub struct ActionInput {
    pub action_type: String,
    pub order: Option<u32>,
    pub target_group_arn: Option<String>,
    pub forward: Option<ForwardInput>,
    pub fixed_response: Option<FixedResponseInput>,
    pub redirect: Option<RedirectInput>,
    /// The configurations given that Berth has no action for (`AuthenticateOidcConfig`, ...).
    pub other_configs: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ForwardInput {
    /// Each group's ARN and weight.
    pub groups: Vec<(Option<String>, Option<u32>)>,
    /// `TargetGroupStickinessConfig`: Enabled and DurationSeconds.
    pub stickiness: Option<(Option<bool>, Option<u32>)>,
}

#[derive(Debug, Clone, Default)]
pub struct FixedResponseInput {
    pub status: String,
    pub content_type: Option<String>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RedirectInput {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub status: String,
}

const CONTENT_TYPES: &[&str] = &["text/plain", "text/css", "text/html", "application/javascript", "application/json"];

fn invalid(message: impl Into<String>) -> ElbError {
    ElbError::validation(message)
}

/// The one action of a rule, checked for a load balancer of `lb_type`.
pub fn check(lb_type: LbType, inputs: &[ActionInput]) -> Result<Vec<Action>, ElbError> {
    let Some(input) = inputs.first() else {
        return Err(invalid("At least one action must be specified"));
    };
    if inputs.len() > 1 {
        return Err(ElbError::unsupported(
            "Berth runs one action per rule: forward, redirect or fixed-response (the authenticate actions that ELB runs before them need HTTPS listeners)",
        ));
    }
    let given: Vec<&str> = [
        input.forward.as_ref().map(|_| "ForwardConfig"),
        input.fixed_response.as_ref().map(|_| "FixedResponseConfig"),
        input.redirect.as_ref().map(|_| "RedirectConfig"),
        input.target_group_arn.as_ref().map(|_| "TargetGroupArn"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let allowed: &[&str] = match input.action_type.as_str() {
        "forward" => &["ForwardConfig", "TargetGroupArn"],
        "fixed-response" => &["FixedResponseConfig"],
        "redirect" => &["RedirectConfig"],
        "authenticate-oidc" | "authenticate-cognito" | "jwt-validation" => {
            return Err(ElbError::unsupported(format!(
                "Berth does not support the action type '{}': it needs an HTTPS listener",
                input.action_type
            )));
        }
        other => return Err(invalid(format!("'{other}' is not a valid action type"))),
    };
    if let Some(config) = input.other_configs.first() {
        return Err(ElbError::unsupported(format!("Berth does not support {config}: it needs an HTTPS listener")));
    }
    if let Some(stray) = given.iter().find(|g| !allowed.contains(g)) {
        return Err(invalid(format!("{stray} cannot be specified for an action of type '{}'", input.action_type)));
    }
    if lb_type == LbType::Network && input.action_type != "forward" {
        return Err(invalid(format!(
            "The action type '{}' is not supported for Network Load Balancers: their listeners forward",
            input.action_type
        )));
    }
    let kind = match input.action_type.as_str() {
        "forward" => forward(lb_type, input)?,
        "fixed-response" => fixed_response(input.fixed_response.as_ref())?,
        _ => redirect(input.redirect.as_ref())?,
    };
    Ok(vec![Action { order: input.order, kind }])
}

fn checked_arn(arn: &str) -> Result<String, ElbError> {
    match arns::parse(arn) {
        Some(a) if matches!(a.resource, arns::Resource::TargetGroup { .. }) => Ok(arn.to_string()),
        _ => Err(arns::invalid(ArnKind::TargetGroup, arn)),
    }
}

fn forward(lb_type: LbType, input: &ActionInput) -> Result<ActionKind, ElbError> {
    let mut groups: Vec<WeightedGroup> = Vec::new();
    let mut stickiness = GroupStickiness { enabled: false, duration: None };
    if let Some(config) = &input.forward {
        for (arn, weight) in &config.groups {
            let arn = arn.as_deref().ok_or_else(|| invalid("A target group ARN must be specified in ForwardConfig"))?;
            let arn = checked_arn(arn)?;
            if groups.iter().any(|g| g.arn == arn) {
                return Err(invalid(format!("Target group '{arn}' is specified more than once in the forward action")));
            }
            let weight = weight.unwrap_or(1);
            if weight > 999 {
                return Err(invalid(format!("Target group weight '{weight}' must be from 0 to 999")));
            }
            groups.push(WeightedGroup { arn, weight });
        }
        if let Some((enabled, duration)) = config.stickiness {
            stickiness = GroupStickiness { enabled: enabled.unwrap_or(false), duration };
        }
    }
    match (&input.target_group_arn, groups.len()) {
        (Some(arn), 0) => groups.push(WeightedGroup { arn: checked_arn(arn)?, weight: 1 }),
        (Some(arn), 1) if groups[0].arn == *arn => {}
        (Some(_), _) => {
            return Err(invalid(
                "With both TargetGroupArn and ForwardConfig, ForwardConfig must name that one target group",
            ));
        }
        (None, 0) => return Err(invalid("A forward action must specify a target group")),
        (None, _) => {}
    }
    let max = if lb_type == LbType::Network { 1 } else { TARGET_GROUPS_PER_ACTION };
    if groups.len() > max {
        return Err(ElbError::too_many(
            super::Limit::TargetGroupsPerAction,
            format!("A forward action of a {} can name at most {max} target groups", lb_type.title()),
        ));
    }
    if let Some(duration) = stickiness.duration
        && !(1..=604_800).contains(&duration)
    {
        return Err(invalid(format!("Target group stickiness duration '{duration}' must be from 1 to 604800 seconds")));
    }
    if stickiness.enabled {
        if lb_type == LbType::Network {
            return Err(invalid("Target group stickiness is not supported for Network Load Balancers"));
        }
        if stickiness.duration.is_none() {
            return Err(invalid("A duration must be specified to enable target group stickiness"));
        }
    }
    Ok(ActionKind::Forward { groups, stickiness })
}

fn fixed_response(input: Option<&FixedResponseInput>) -> Result<ActionKind, ElbError> {
    let input = input.ok_or_else(|| invalid("A fixed-response action must have a FixedResponseConfig"))?;
    let status_ok = input.status.len() == 3
        && input.status.bytes().all(|b| b.is_ascii_digit())
        && matches!(input.status.as_bytes()[0], b'2' | b'4' | b'5');
    if !status_ok {
        return Err(invalid(format!("Fixed response status code '{}' must be 2XX, 4XX or 5XX", input.status)));
    }
    if let Some(ct) = &input.content_type
        && !CONTENT_TYPES.contains(&ct.as_str())
    {
        return Err(invalid(format!(
            "Fixed response content type '{ct}' must be one of [{}]",
            CONTENT_TYPES.join(", ")
        )));
    }
    Ok(ActionKind::FixedResponse {
        status: input.status.clone(),
        content_type: input.content_type.clone(),
        body: input.body.clone(),
    })
}

fn redirect(input: Option<&RedirectInput>) -> Result<ActionKind, ElbError> {
    let input = input.ok_or_else(|| invalid("A redirect action must have a RedirectConfig"))?;
    let status = match input.status.as_str() {
        "HTTP_301" => RedirectStatus::Permanent,
        "HTTP_302" => RedirectStatus::Found,
        other => return Err(invalid(format!("Redirect status code '{other}' must be HTTP_301 or HTTP_302"))),
    };
    let protocol = input.protocol.clone().unwrap_or_else(|| "#{protocol}".into());
    if !["HTTP", "HTTPS", "#{protocol}"].contains(&protocol.as_str()) {
        return Err(invalid(format!("Redirect protocol '{protocol}' must be HTTP, HTTPS or #{{protocol}}")));
    }
    let port = input.port.clone().unwrap_or_else(|| "#{port}".into());
    if port != "#{port}" && !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err(invalid(format!("Redirect port '{port}' must be a port from 1 to 65535 or #{{port}}")));
    }
    let path = input.path.clone().unwrap_or_else(|| "/#{path}".into());
    if !path.starts_with('/') {
        return Err(invalid(format!("Redirect path '{path}' must begin with a '/' character")));
    }
    let host = input.host.clone().unwrap_or_else(|| "#{host}".into());
    let query = input.query.clone().unwrap_or_else(|| "#{query}".into());
    let unchanged = protocol == "#{protocol}" && host == "#{host}" && port == "#{port}" && path == "/#{path}";
    if unchanged {
        return Err(ElbError::InvalidLoadBalancerAction(
            "The redirect must change at least one of protocol, host, port or path: as given it loops".into(),
        ));
    }
    Ok(ActionKind::Redirect { protocol, host, port, path, query, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/a/0000000000000001";
    const TG2: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/b/0000000000000002";

    fn forward_to(arn: &str) -> ActionInput {
        ActionInput { action_type: "forward".into(), target_group_arn: Some(arn.into()), ..Default::default() }
    }

    fn weighted(groups: &[(&str, u32)], stickiness: Option<(Option<bool>, Option<u32>)>) -> ActionInput {
        let groups = groups.iter().map(|(a, w)| (Some(a.to_string()), Some(*w))).collect();
        ActionInput {
            action_type: "forward".into(),
            forward: Some(ForwardInput { groups, stickiness }),
            ..Default::default()
        }
    }

    #[test]
    fn forwards_name_their_groups() {
        let a = check(LbType::Application, &[forward_to(TG)]).unwrap();
        assert_eq!(a[0].target_groups().collect::<Vec<_>>(), [TG]);
        let w = check(LbType::Application, &[weighted(&[(TG, 80), (TG2, 20)], Some((Some(true), Some(60))))]).unwrap();
        assert!(
            matches!(&w[0].kind, ActionKind::Forward { groups, stickiness } if groups.len() == 2 && stickiness.enabled)
        );
        let both = ActionInput { target_group_arn: Some(TG.into()), ..weighted(&[(TG, 1)], None) };
        assert!(check(LbType::Application, &[both]).is_ok());
        let mismatch = ActionInput { target_group_arn: Some(TG.into()), ..weighted(&[(TG2, 1)], None) };
        assert!(check(LbType::Application, &[mismatch]).is_err());
        assert!(check(LbType::Network, &[weighted(&[(TG, 1), (TG2, 1)], None)]).is_err());
        assert!(check(LbType::Application, &[weighted(&[(TG, 1000)], None)]).is_err());
        assert!(check(LbType::Application, &[weighted(&[(TG, 1), (TG, 2)], None)]).is_err());
        assert!(check(LbType::Application, &[weighted(&[(TG, 1)], Some((Some(true), None)))]).is_err());
        assert!(check(LbType::Application, &[forward_to("web")]).is_err());
        assert!(check(LbType::Application, &[]).is_err());
        assert!(check(LbType::Application, &[forward_to(TG), forward_to(TG2)]).is_err());
    }

    #[test]
    fn fixed_responses_and_redirects() {
        let fixed = |status: &str, ct: Option<&str>| ActionInput {
            action_type: "fixed-response".into(),
            fixed_response: Some(FixedResponseInput {
                status: status.into(),
                content_type: ct.map(str::to_string),
                body: None,
            }),
            ..Default::default()
        };
        assert!(check(LbType::Application, &[fixed("503", Some("text/plain"))]).is_ok());
        for bad in [fixed("302", None), fixed("20", None), fixed("200", Some("image/png"))] {
            assert!(check(LbType::Application, &[bad]).is_err());
        }
        assert!(check(LbType::Network, &[fixed("200", None)]).is_err());
        let redirect = |protocol: Option<&str>, path: Option<&str>| ActionInput {
            action_type: "redirect".into(),
            redirect: Some(RedirectInput {
                protocol: protocol.map(str::to_string),
                path: path.map(str::to_string),
                status: "HTTP_301".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = check(LbType::Application, &[redirect(Some("HTTPS"), None)]).unwrap();
        assert!(
            matches!(&r[0].kind, ActionKind::Redirect { path, port, .. } if path == "/#{path}" && port == "#{port}")
        );
        assert_eq!(
            check(LbType::Application, &[redirect(None, None)]).unwrap_err().code(),
            "InvalidLoadBalancerAction"
        );
        assert!(check(LbType::Application, &[redirect(Some("FTP"), None)]).is_err());
        assert!(check(LbType::Application, &[redirect(None, Some("new"))]).is_err());
        let stray = ActionInput { target_group_arn: Some(TG.into()), ..redirect(Some("HTTPS"), None) };
        assert!(check(LbType::Application, &[stray]).is_err());
        let oidc = ActionInput { action_type: "authenticate-oidc".into(), ..Default::default() };
        assert!(matches!(check(LbType::Application, &[oidc]).unwrap_err(), ElbError::Unsupported(_)));
    }
}
