//! ECS ARNs: built from an account and region, and read back from what callers pass (a
//! full ARN or a short name).

/// The partition, region and account every ARN of one request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account: String,
}

impl ArnScope {
    pub fn new(region: &str, account: &str) -> Self {
        ArnScope { region: region.to_string(), account: account.to_string() }
    }

    fn ecs(&self, resource: &str) -> String {
        format!("arn:aws:ecs:{}:{}:{}", self.region, self.account, resource)
    }

    pub fn cluster(&self, name: &str) -> String {
        self.ecs(&format!("cluster/{name}"))
    }

    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        self.ecs(&format!("task-definition/{family}:{revision}"))
    }

    pub fn task(&self, cluster: &str, id: &str) -> String {
        self.ecs(&format!("task/{cluster}/{id}"))
    }

    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        self.ecs(&format!("container-instance/{cluster}/{id}"))
    }

    pub fn container(&self, cluster: &str, task_id: &str, container_id: &str) -> String {
        self.ecs(&format!("container/{cluster}/{task_id}/{container_id}"))
    }

    pub fn service(&self, cluster: &str, name: &str) -> String {
        self.ecs(&format!("service/{cluster}/{name}"))
    }

    /// A task set of a service; `id` is its whole id (`ecs-svc/...`).
    pub fn task_set(&self, cluster: &str, service: &str, id: &str) -> String {
        self.ecs(&format!("task-set/{cluster}/{service}/{id}"))
    }

    pub fn capacity_provider(&self, name: &str) -> String {
        self.ecs(&format!("capacity-provider/{name}"))
    }

    /// A service deployment; `deployment` is its id without the `ecs-svc/` prefix.
    pub fn service_deployment(&self, cluster: &str, service: &str, deployment: &str) -> String {
        self.ecs(&format!("service-deployment/{cluster}/{service}/{deployment}"))
    }
}

/// The parts of an `arn:aws:ecs:REGION:ACCOUNT:TYPE/REST` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub kind: &'a str,
    pub rest: &'a str,
}

pub fn parse(arn: &str) -> Option<ParsedArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("ecs"), Some(region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let (kind, rest) = resource.split_once('/')?;
    Some(ParsedArn { region, account, kind, rest })
}

/// A cluster given as a name or a cluster ARN, reduced to its name.
pub fn cluster_name(given: &str) -> Option<&str> {
    if given.starts_with("arn:") {
        match parse(given)? {
            ParsedArn { kind: "cluster", rest, .. } if !rest.contains('/') => Some(rest),
            _ => None,
        }
    } else {
        Some(given)
    }
}

/// A task, container instance or service given by id/name or ARN (`TYPE/CLUSTER/ID` or the
/// older `TYPE/ID`): the cluster the ARN names, if any, and the id.
pub fn scoped_id<'a>(given: &'a str, kind: &str) -> Option<(Option<&'a str>, &'a str)> {
    if !given.starts_with("arn:") {
        return Some((None, given));
    }
    let parsed = parse(given)?;
    if parsed.kind != kind {
        return None;
    }
    match parsed.rest.split_once('/') {
        Some((cluster, id)) if !id.contains('/') => Some((Some(cluster), id)),
        Some(_) => None,
        None => Some((None, parsed.rest)),
    }
}

/// A task definition given as `family`, `family:revision` or an ARN of either.
pub fn task_definition_ref(given: &str) -> Option<(&str, Option<u32>)> {
    let short = if given.starts_with("arn:") {
        match parse(given)? {
            ParsedArn { kind: "task-definition", rest, .. } => rest,
            _ => return None,
        }
    } else {
        given
    };
    match short.split_once(':') {
        Some((family, rev)) => Some((family, Some(rev.parse().ok().filter(|r| *r > 0)?))),
        None => Some((short, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_reads_arns() {
        let s = ArnScope::new("us-east-1", "000000000000");
        assert_eq!(s.cluster("default"), "arn:aws:ecs:us-east-1:000000000000:cluster/default");
        assert_eq!(s.task_definition("web", 3), "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3");
        assert_eq!(cluster_name(&s.cluster("prod")), Some("prod"));
        assert_eq!(cluster_name("prod"), Some("prod"));
        assert_eq!(cluster_name("arn:aws:ecs:r:a:task/x/y"), None);
        assert_eq!(scoped_id(&s.task("c", "abc"), "task"), Some((Some("c"), "abc")));
        assert_eq!(scoped_id("arn:aws:ecs:r:a:task/abc", "task"), Some((None, "abc")));
        assert_eq!(scoped_id("abc", "task"), Some((None, "abc")));
        assert_eq!(scoped_id(&s.cluster("c"), "task"), None);
        assert_eq!(task_definition_ref("web:2"), Some(("web", Some(2))));
        assert_eq!(task_definition_ref(&s.task_definition("web", 7)), Some(("web", Some(7))));
        assert_eq!(task_definition_ref("web"), Some(("web", None)));
        assert_eq!(task_definition_ref("web:x"), None);
        assert_eq!(task_definition_ref("web:0"), None);
    }
}
