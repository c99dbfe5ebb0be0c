//! How a service is declared, once: its embedded model (which names its protocols, target
//! prefix or signing name, and API version), its one dispatch table (operation name →
//! handler), its request body cap, and the error names it answers bad parameters and
//! operations Berth does not implement with. [`SERVICES`] lists every service the port
//! serves; routing, coverage docs and tests all read that list.

use std::sync::LazyLock;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::Value;

use super::Wire;
use super::shapes::Model;
use crate::ecs::{Ctx, Obj};
use crate::error::{ApiError, ApiResult};

/// A handler, whatever its protocol: the validated input in, the output tree out.
pub type Handler = for<'c, 'a> fn(&'c Ctx<'a>, Obj) -> BoxFuture<'c, ApiResult<Value>>;

/// A handler that decodes its JSON body itself, typed, through [`super::json::bulk`] (which
/// leaves every refusal to the model's checks): for operations whose input is bulk data, such
/// as PutLogEvents' 10,000 events, where building and checking a value tree would cost more
/// than the work. Other protocols and in-process calls still reach the operation's [`Handler`].
pub type BodyHandler = for<'c, 'a> fn(&'c Ctx<'a>, Bytes) -> BoxFuture<'c, ApiResult<Value>>;

pub struct Service {
    /// The section of `docs/api-coverage.md` that lists the model's operations.
    pub name: &'static str,
    pub model: &'static LazyLock<Model>,
    /// Every operation Berth answers; other operations of the model answer `unimplemented`.
    pub operations: &'static [(&'static str, Handler)],
    /// Operations of `operations` whose JSON requests go to a [`BodyHandler`] instead.
    pub json_bodies: &'static [(&'static str, BodyHandler)],
    /// The largest request body read at all.
    pub body_limit: usize,
    /// The error the service answers a parameter the model refuses with (a missing member,
    /// an unknown enum value, a value out of range).
    pub invalid_input: &'static str,
    /// The error an operation of the model Berth does not implement answers: a name the
    /// model (or the protocol's documented common errors) has.
    pub unimplemented: &'static str,
}

/// Every service served on the one port.
pub static SERVICES: &[&Service] = &[
    &crate::ecs::SERVICE,
    &crate::ecr::SERVICE,
    &crate::ec2::SERVICE,
    &crate::elbv2::SERVICE,
    &crate::logs::SERVICE,
    &crate::cloudwatch::SERVICE,
    &crate::application_autoscaling::SERVICE,
    &crate::servicediscovery::SERVICE,
];

impl Service {
    pub fn model(&self) -> &Model {
        self.model
    }

    /// The wire protocols of the service's model that Berth speaks, in the model's order.
    pub fn wires(&self) -> impl Iterator<Item = Wire> + '_ {
        let model = self.model();
        model.protocols.iter().filter_map(|p| Wire::named(p, model.json_version.as_deref()))
    }

    /// The JSON protocol the service is reached by with `X-Amz-Target`, if any.
    pub fn json_wire(&self) -> Option<Wire> {
        self.wires().find(|w| w.is_json())
    }

    /// The form protocol (AWS query or EC2 query) the service is reached by, if any.
    pub fn form_wire(&self) -> Option<Wire> {
        self.wires().find(|w| w.is_form())
    }

    pub fn handler(&self, operation: &str) -> Option<Handler> {
        self.operations.iter().find(|(name, _)| *name == operation).map(|(_, h)| *h)
    }

    pub fn body_handler(&self, operation: &str) -> Option<BodyHandler> {
        self.json_bodies.iter().find(|(name, _)| *name == operation).map(|(_, h)| *h)
    }

    /// The error an operation of the model Berth does not implement answers.
    pub fn unimplemented_error(&self, operation: &str) -> ApiError {
        ApiError::new(400, self.unimplemented, format!("Berth does not implement {operation} yet."))
    }

    /// Runs `operation` in-process (the server's own calls, tests): no protocol, no checks.
    pub async fn call(&self, ctx: &Ctx<'_>, operation: &str, input: Obj) -> ApiResult<Value> {
        match self.handler(operation) {
            Some(handler) => handler(ctx, input).await,
            None => Err(self.unimplemented_error(operation)),
        }
    }
}

/// The service a JSON request's `X-Amz-Target` prefix names.
pub fn by_target(prefix: &str) -> Option<&'static Service> {
    SERVICES.iter().copied().find(|s| s.json_wire().is_some() && s.model().target_prefix == prefix)
}

/// The service a Smithy RPC v2 CBOR path names (its Smithy service name, which is its JSON
/// target prefix).
pub fn by_cbor_name(name: &str) -> Option<&'static Service> {
    SERVICES.iter().copied().find(|s| s.wires().any(|w| w == Wire::Cbor) && s.model().target_prefix == name)
}

/// The form-protocol (query, EC2) services that sign as `signing_name`.
pub fn form_services(signing_name: Option<&str>) -> impl Iterator<Item = &'static Service> {
    SERVICES
        .iter()
        .copied()
        .filter(move |s| s.form_wire().is_some() && signing_name.is_none_or(|n| s.model().signing_name == n))
}

/// Declares a dispatch table: `"Operation" => |ctx, input| expression`, where the expression
/// may `.await` and gives `ApiResult<Value>` (or, with `finish: f;` first, what `f(ctx, it)`
/// turns into one).
macro_rules! operations {
    (finish: $finish:path; $($name:literal => |$ctx:ident, $input:ident| $body:expr),* $(,)?) => {
        &[$((
            $name,
            {
                fn handler<'c>(
                    $ctx: &'c $crate::ecs::Ctx<'_>,
                    $input: $crate::ecs::Obj,
                ) -> ::futures::future::BoxFuture<'c, $crate::error::ApiResult<::serde_json::Value>> {
                    Box::pin(async move { $finish($ctx, $body) })
                }
                handler as $crate::protocol::service::Handler
            },
        )),*]
    };
    ($($name:literal => |$ctx:ident, $input:ident| $body:expr),* $(,)?) => {
        $crate::protocol::service::operations!(finish: $crate::protocol::service::as_is; $($name => |$ctx, $input| $body),*)
    };
}
pub(crate) use operations;

/// The `finish` of a table whose handlers already answer `ApiResult<Value>`.
pub fn as_is(_: &Ctx<'_>, result: ApiResult<Value>) -> ApiResult<Value> {
    result
}

/// `docs/api-coverage.md`'s `## {name}` table lists every operation of the service's model,
/// and its implemented and partial rows are exactly the dispatch table.
#[cfg(test)]
fn assert_coverage(service: &Service) {
    use std::collections::{BTreeMap, BTreeSet};
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api-coverage.md")).unwrap();
    let table = doc
        .split(&format!("## {}\n", service.name))
        .nth(1)
        .unwrap_or_else(|| panic!("docs/api-coverage.md has no ## {} section", service.name))
        .split("\n## ")
        .next()
        .unwrap();
    let mut listed = BTreeMap::new();
    for row in table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| operation")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        listed.insert(cells[1].to_string(), cells[2].to_string());
    }
    let ops: BTreeSet<_> = service.model().operations.keys().cloned().collect();
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), ops, "{} table vs model", service.name);
    for (op, status) in &listed {
        let served = service.handler(op).is_some();
        assert_eq!(served, status != "not yet", "{op} is marked {status}");
    }
    for (op, _) in service.operations {
        assert!(ops.contains(*op), "{op} is not in the {} model", service.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every service's coverage table is true to its model and its dispatch table.
    #[test]
    fn coverage_tables_are_true() {
        for service in SERVICES {
            assert_coverage(service);
        }
    }

    /// Each service is reached by a protocol Berth speaks, answers with error names its
    /// model or protocols have, and its table names each operation once.
    #[test]
    fn services_are_declared_consistently() {
        let mut targets = std::collections::BTreeSet::new();
        for service in SERVICES {
            let model = service.model();
            let wires: Vec<Wire> = service.wires().collect();
            assert!(!wires.is_empty(), "{} speaks no protocol Berth speaks", service.name);
            let known = |code: &str| {
                model.error_codes.iter().any(|c| c == code) || wires.iter().any(|w| w.common_errors().contains(&code))
            };
            assert!(known(service.unimplemented), "{}: {}", service.name, service.unimplemented);
            assert!(known(service.invalid_input), "{}: {}", service.name, service.invalid_input);
            let names: std::collections::BTreeSet<_> = service.operations.iter().map(|(n, _)| n).collect();
            assert_eq!(names.len(), service.operations.len(), "{} names an operation twice", service.name);
            for (op, _) in service.json_bodies {
                assert!(names.contains(op), "{}: {op} has a body handler and no handler", service.name);
                assert!(service.json_wire().is_some(), "{}: a body handler without JSON", service.name);
            }
            assert!(targets.insert((model.signing_name.clone(), model.target_prefix.clone())));
        }
    }

    #[test]
    fn routes_find_their_services() {
        assert_eq!(by_target("AmazonEC2ContainerServiceV20141113").map(|s| s.name), Some("ECS"));
        assert_eq!(by_target("AmazonEC2ContainerRegistry_V20150921").map(|s| s.name), Some("ECR"));
        assert_eq!(by_target("Logs_20140328").map(|s| s.name), Some("CloudWatch Logs"));
        assert!(by_target("DynamoDB_20120810").is_none());
        assert_eq!(form_services(Some("ec2")).map(|s| s.name).collect::<Vec<_>>(), ["EC2"]);
        assert_eq!(form_services(Some("elasticloadbalancing")).map(|s| s.name).collect::<Vec<_>>(), ["ELBv2"]);
        assert_eq!(form_services(Some("ecs")).count(), 0);
        assert_eq!(form_services(Some("monitoring")).map(|s| s.name).collect::<Vec<_>>(), ["CloudWatch"]);
        assert_eq!(form_services(None).count(), 3);
        assert_eq!(by_cbor_name("GraniteServiceVersion20100801").map(|s| s.name), Some("CloudWatch"));
        assert!(by_cbor_name("Logs_20140328").is_none());
        assert_eq!(
            by_target("AnyScaleFrontendService").map(|s| s.name),
            Some("Application Auto Scaling (application-autoscaling)")
        );
        assert_eq!(
            by_target("AnyScaleFrontendService").map(|s| s.model().signing_name.as_str()),
            Some("application-autoscaling")
        );
    }
}
