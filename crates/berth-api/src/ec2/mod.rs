//! EC2 (EC2 query protocol, signing name `ec2`): the subset of the API the Fargate work needs
//! (availability zones, VPCs, subnets, security groups and their rules, network interfaces,
//! tags; the embedded model holds only those operations) over the VPC model
//! (`berth_control::vpc`). The dispatch table, and helpers the handlers share. One module
//! per resource.

mod availability_zones;
pub mod filters;
mod network_interfaces;
mod security_group_rules;
mod security_groups;
mod subnets;
mod tags;
mod vpcs;

use berth_control::vpc::tags::Tag;
use berth_control::vpc::{IdKind, VpcError, check_id};
use serde_json::{Value, json};

use crate::ecs::{Ctx, Obj, strings, text};
use crate::error::{ApiError, ApiResult};
use crate::protocol::service::{Service, operations};
use crate::protocol::shapes;

/// Operations of the embedded subset not in the table answer `UnsupportedOperation`, one of
/// EC2's documented common errors (its model declares none); operations outside the subset
/// answer `InvalidAction`.
pub static SERVICE: Service = Service {
    name: "EC2",
    model: &shapes::EC2,
    operations: operations! {
        "AuthorizeSecurityGroupEgress" => |ctx, input| security_group_rules::authorize_egress(ctx, input).await,
        "AuthorizeSecurityGroupIngress" => |ctx, input| security_group_rules::authorize_ingress(ctx, input).await,
        "CreateSecurityGroup" => |ctx, input| security_groups::create(ctx, input).await,
        "CreateSubnet" => |ctx, input| subnets::create(ctx, input).await,
        "CreateTags" => |ctx, input| tags::create(ctx, input).await,
        "CreateVpc" => |ctx, input| vpcs::create(ctx, input).await,
        "DeleteSecurityGroup" => |ctx, input| security_groups::delete(ctx, input).await,
        "DeleteSubnet" => |ctx, input| subnets::delete(ctx, input).await,
        "DeleteTags" => |ctx, input| tags::delete(ctx, input).await,
        "DeleteVpc" => |ctx, input| vpcs::delete(ctx, input).await,
        "DescribeAvailabilityZones" => |ctx, input| availability_zones::describe(ctx, input),
        "DescribeNetworkInterfaces" => |ctx, input| network_interfaces::describe(ctx, input).await,
        "DescribeSecurityGroupRules" => |ctx, input| security_group_rules::describe(ctx, input).await,
        "DescribeSecurityGroups" => |ctx, input| security_groups::describe(ctx, input).await,
        "DescribeSubnets" => |ctx, input| subnets::describe(ctx, input).await,
        "DescribeTags" => |ctx, input| tags::describe(ctx, input).await,
        "DescribeVpcs" => |ctx, input| vpcs::describe(ctx, input).await,
        "RevokeSecurityGroupEgress" => |ctx, input| security_group_rules::revoke_egress(ctx, input).await,
        "RevokeSecurityGroupIngress" => |ctx, input| security_group_rules::revoke_ingress(ctx, input).await,
    },
    body_limit: 1024 * 1024,
    invalid_input: "InvalidParameterValue",
    unimplemented: "UnsupportedOperation",
    json_bodies: &[],
};

/// Before any VPC request: the region's default VPC, group and per-zone subnets exist
/// (made on a region's first use, and for a zone that appeared since).
pub(crate) async fn ready(ctx: &Ctx<'_>) -> ApiResult<()> {
    berth_control::vpc::defaults::ensure(&ctx.region).await?;
    Ok(())
}

/// Members of the model Berth does not act on are refused by name, never ignored.
pub(crate) fn refuse(input: &Obj, operation: &str, members: &[&str]) -> ApiResult<()> {
    match members.iter().find(|m| input.contains_key(**m)) {
        Some(member) => Err(ApiError::new(
            400,
            "UnsupportedOperation",
            format!("Berth does not support the parameter {member} of {operation}."),
        )),
        None => Ok(()),
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidParameterValue", message)
}

/// `arn:aws:ec2:REGION:ACCOUNT:KIND/ID`.
pub(crate) fn arn(ctx: &Ctx<'_>, kind: &str, id: &str) -> String {
    format!("arn:aws:ec2:{}:{}:{kind}/{id}", ctx.caller.region, ctx.config().account)
}

pub(crate) fn tags_out(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect())
}

/// `[{Key, Value}]` as a request gives it (a missing value is empty).
pub(crate) fn tags_in(list: Option<&Value>) -> Vec<Tag> {
    let items = list.and_then(Value::as_array).into_iter().flatten();
    items.map(|t| Tag::new(t["Key"].as_str().unwrap_or_default(), t["Value"].as_str().unwrap_or_default())).collect()
}

/// The tags `TagSpecifications` gives a new resource of `resource_type`; a specification
/// for any other type is refused.
pub(crate) fn tag_specifications(input: &Obj, resource_type: &str) -> ApiResult<Vec<Tag>> {
    let mut tags = Vec::new();
    for spec in input.get("TagSpecifications").and_then(Value::as_array).into_iter().flatten() {
        let given = spec["ResourceType"].as_str().unwrap_or_default();
        if given != resource_type {
            return Err(invalid(format!(
                "'{given}' is not a valid taggable resource type for this operation. This operation tags a {resource_type}."
            )));
        }
        tags.extend(tags_in(spec.get("Tags")));
    }
    Ok(tags)
}

/// A resource's values for the tag filters (`tag:KEY`, `tag-key`, `tag-value`); `None` for
/// other filter names.
pub(crate) fn tag_field(tags: &[Tag], filter: &str) -> Option<Vec<String>> {
    if let Some(key) = filter.strip_prefix("tag:") {
        return Some(tags.iter().filter(|t| t.key == key).map(|t| t.value.clone()).collect());
    }
    match filter {
        "tag-key" => Some(tags.iter().map(|t| t.key.clone()).collect()),
        "tag-value" => Some(tags.iter().map(|t| t.value.clone()).collect()),
        _ => None,
    }
}

pub(crate) fn flag(b: bool) -> String {
    b.to_string()
}

/// One page of `items` (sorted by their unique ids) under `member`, after the position
/// `NextToken` names, at most `MaxResults` (the model bounds it) or every item.
pub(crate) fn page(input: &Obj, mut items: Vec<(String, Value)>, member: &str) -> ApiResult<Value> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match text(input, "NextToken") {
        None => 0,
        Some(token) => {
            let after = hex::decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
                ApiError::new(400, "InvalidPaginationToken", format!("Invalid pagination token: {token}"))
            })?;
            items.iter().position(|(id, _)| *id > after).unwrap_or(items.len())
        }
    };
    let limit = input.get("MaxResults").and_then(Value::as_u64).map_or(usize::MAX, |n| n as usize);
    let total = items.len();
    let taken: Vec<(String, Value)> = items.into_iter().skip(start).take(limit).collect();
    let mut out = Obj::new();
    if start + taken.len() < total
        && let Some((last, _)) = taken.last()
    {
        out.insert("NextToken".into(), Value::String(hex::encode(last)));
    }
    out.insert(member.into(), Value::Array(taken.into_iter().map(|(_, v)| v).collect()));
    Ok(Value::Object(out))
}

/// Ids given with `MaxResults` are refused, as EC2 does.
pub(crate) fn no_paging_with_ids(input: &Obj, ids_member: &str) -> ApiResult<()> {
    if input.contains_key("MaxResults")
        && input.get(ids_member).and_then(Value::as_array).is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::new(
            400,
            "InvalidParameterCombination",
            format!("The parameter {ids_member} cannot be used with the parameter maxResults"),
        ));
    }
    Ok(())
}

/// What a Describe action of a resource kind reads and answers with.
pub(crate) struct Listing {
    pub kind: IdKind,
    /// The member naming resources by id (`SubnetIds`).
    pub ids: &'static str,
    pub filters: &'static [&'static str],
    /// The output member listing them (`Subnets`).
    pub member: &'static str,
}

/// A Describe action over `all`: the ids asked for (each well-formed and existing, else
/// EC2's error for the kind), the filters (`field` gives a resource's values for one), then
/// one page of `output`s.
pub(crate) fn describe_listed<T>(
    input: &Obj,
    listing: &Listing,
    all: &[T],
    id: impl Fn(&T) -> &str,
    field: impl Fn(&T, &str) -> Vec<String>,
    output: impl Fn(&T) -> Value,
) -> ApiResult<Value> {
    let filters = filters::parse(input, listing.filters)?;
    no_paging_with_ids(input, listing.ids)?;
    let ids = strings(input, listing.ids);
    for wanted in &ids {
        check_id(listing.kind, wanted)?;
    }
    if let Some(missing) = ids.iter().find(|w| !all.iter().any(|r| id(r) == w.as_str())) {
        return Err(VpcError::not_found(listing.kind, missing).into());
    }
    let listed = all
        .iter()
        .filter(|r| ids.is_empty() || ids.iter().any(|w| w == id(r)))
        .filter(|r| filters::matches(&filters, |f| field(r, f)))
        .map(|r| (id(r).to_string(), output(r)))
        .collect();
    page(input, listed, listing.member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_ids_and_tokens() {
        let items = |n: usize| (0..n).map(|i| (format!("id-{i}"), json!(i))).collect::<Vec<_>>();
        let input = |v: Value| v.as_object().unwrap().clone();
        let first = page(&input(json!({"MaxResults": 2})), items(3), "X").unwrap();
        assert_eq!(first["X"], json!([0, 1]));
        let token = first["NextToken"].as_str().unwrap().to_string();
        let second = page(&input(json!({"MaxResults": 2, "NextToken": token})), items(3), "X").unwrap();
        assert_eq!(second, json!({"X": [2]}));
        assert_eq!(page(&input(json!({})), items(3), "X").unwrap(), json!({"X": [0, 1, 2]}));
        let e = page(&input(json!({"NextToken": "zz"})), items(3), "X").unwrap_err();
        assert_eq!(e.code, "InvalidPaginationToken");
    }

    #[test]
    fn tag_filters_and_specifications() {
        let tags = [Tag::new("Name", "web"), Tag::new("team", "a")];
        assert_eq!(tag_field(&tags, "tag:Name"), Some(vec!["web".to_string()]));
        assert_eq!(tag_field(&tags, "tag-key"), Some(vec!["Name".to_string(), "team".to_string()]));
        assert_eq!(tag_field(&tags, "vpc-id"), None);
        let input = json!({"TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "a", "Value": "b"}]}]});
        let input = input.as_object().unwrap();
        assert_eq!(tag_specifications(input, "vpc").unwrap(), [Tag::new("a", "b")]);
        assert_eq!(tag_specifications(input, "subnet").unwrap_err().code, "InvalidParameterValue");
    }
}
