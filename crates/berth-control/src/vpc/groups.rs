//! Security groups: a named set of ingress and egress rules in one VPC (names are unique per
//! VPC, kept by a name key). Every VPC has a `default` group — ingress from its own members,
//! egress anywhere — that cannot be deleted; a new group may send anywhere and receive
//! nothing. A group in use by a network interface, or named as the peer of another group's
//! rule, cannot be deleted either. Rules themselves are `permissions.rs`.

use berth_store::{Compare, Op, Txn};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::enis::EniRecord;
use super::permissions::{Peer, Protocol};
use super::tags::{self, Tag};
use super::vpcs::VpcRecord;
use super::{IdKind, Stored, VpcError, check_id, read, read_all};
use crate::Region;
use crate::error::ControlResult;
use crate::store::{encode, retry};

pub const DEFAULT_NAME: &str = "default";
const DEFAULT_DESCRIPTION: &str = "default VPC security group";
/// Rules a group may have in each direction.
pub const MAX_RULES: usize = 60;
const MAX_TEXT: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    Ingress,
    Egress,
}

/// One rule of a group: traffic of a protocol (and port range, or ICMP type and code) from
/// (ingress) or to (egress) one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SgRule {
    /// `sgr-` and 17 hex digits.
    pub id: String,
    pub protocol: Protocol,
    /// TCP/UDP: the first port; ICMP: the type (-1: all). None for other protocols.
    pub from_port: Option<i32>,
    /// TCP/UDP: the last port; ICMP: the code (-1: all). None for other protocols.
    pub to_port: Option<i32>,
    pub peer: Peer,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRecord {
    /// `sg-` and 17 hex digits.
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl SecurityGroupRecord {
    /// The VPC's `default` group (names are unique per VPC, and every VPC has one).
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NAME
    }

    pub fn rules(&self, direction: Direction) -> &Vec<SgRule> {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    pub fn rules_mut(&mut self, direction: Direction) -> &mut Vec<SgRule> {
        match direction {
            Direction::Ingress => &mut self.ingress,
            Direction::Egress => &mut self.egress,
        }
    }

    /// Whether any rule names `group` as its peer.
    pub fn references(&self, group: &str) -> bool {
        self.ingress
            .iter()
            .chain(&self.egress)
            .any(|r| matches!(&r.peer, Peer::Group { group_id, .. } if group_id == group))
    }
}

/// Egress to every IPv4 address over every protocol: what a new group starts with.
fn egress_anywhere(region: &Region<'_>) -> SgRule {
    SgRule {
        id: region.control.ids.ec2_id("sgr"),
        protocol: Protocol::All,
        from_port: None,
        to_port: None,
        peer: Peer::Ipv4(Ipv4Net::default()),
        description: None,
        tags: Vec::new(),
    }
}

/// A VPC's `default` group: ingress from its own members, egress anywhere.
pub(crate) fn default_group(region: &Region<'_>, vpc_id: &str) -> SecurityGroupRecord {
    let id = region.control.ids.ec2_id("sg");
    let from_members = SgRule {
        id: region.control.ids.ec2_id("sgr"),
        protocol: Protocol::All,
        from_port: None,
        to_port: None,
        peer: Peer::Group { group_id: id.clone(), user_id: region.config().account.clone() },
        description: None,
        tags: Vec::new(),
    };
    SecurityGroupRecord {
        id,
        name: DEFAULT_NAME.into(),
        description: DEFAULT_DESCRIPTION.into(),
        vpc_id: vpc_id.into(),
        ingress: vec![from_members],
        egress: vec![egress_anywhere(region)],
        tags: Vec::new(),
    }
}

/// The compares and writes that create `group`: its record and its name in its VPC.
pub(crate) fn insert_ops(region: &Region<'_>, group: &SecurityGroupRecord) -> (Vec<Compare>, Vec<Op>) {
    let key = region.keys.security_group(&group.id);
    let name = region.keys.group_name(&group.vpc_id, &group.name);
    let compares = vec![Compare::absent(&key), Compare::absent(&name)];
    let ops = vec![Op::put(&key, encode(group)), Op::put(&name, group.id.clone().into_bytes())];
    (compares, ops)
}

/// A group by id: `InvalidGroup.NotFound` when there is none.
pub fn get(region: &Region<'_>, id: &str) -> ControlResult<Stored<SecurityGroupRecord>> {
    check_id(IdKind::SecurityGroup, id)?;
    read(region, &region.keys.security_group(id))?.ok_or_else(|| VpcError::GroupNotFound(id.to_string()).into())
}

/// A group of the default VPC by name, as EC2 looks names up.
pub fn get_by_name(region: &Region<'_>, name: &str) -> ControlResult<Stored<SecurityGroupRecord>> {
    let vpc = super::defaults::default_vpc(region)?.ok_or(VpcError::NoDefaultVpc)?;
    let not_found = || VpcError::GroupNameNotFound { name: name.to_string(), vpc: vpc.id.clone() };
    let id = region.store().get(&region.keys.group_name(&vpc.id, name))?.ok_or_else(not_found)?;
    let id = String::from_utf8_lossy(&id.value).into_owned();
    read(region, &region.keys.security_group(&id))?.ok_or_else(|| not_found().into())
}

/// A group named by id or, failing that, by name in the default VPC.
pub fn get_by_id_or_name(
    region: &Region<'_>,
    id: Option<&str>,
    name: Option<&str>,
) -> ControlResult<Stored<SecurityGroupRecord>> {
    match (id, name) {
        (Some(id), _) => get(region, id),
        (None, Some(name)) => get_by_name(region, name),
        (None, None) => {
            Err(VpcError::MissingParameter("The request must contain the parameter groupName or groupId".into()).into())
        }
    }
}

/// Every group of the region, by id.
pub fn list(region: &Region<'_>) -> ControlResult<Vec<SecurityGroupRecord>> {
    Ok(read_all(region, &region.keys.security_groups())?.1.into_iter().map(|s| s.record).collect())
}

fn check_text(what: &str, value: &str) -> Result<(), VpcError> {
    if value.is_empty() {
        return Err(VpcError::MissingParameter(format!("The request must contain the parameter {what}")));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(VpcError::invalid(format!(
            "Value ({value}) for parameter {what} is invalid. Length exceeds maximum of {MAX_TEXT} characters."
        )));
    }
    if !value.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return Err(VpcError::invalid(format!(
            "Value ({value}) for parameter {what} is invalid. Character sets beyond ASCII are not supported."
        )));
    }
    Ok(())
}

/// CreateSecurityGroup: a group in `vpc` that may send anywhere and receives nothing.
pub async fn create(
    region: &Region<'_>,
    vpc: &VpcRecord,
    name: &str,
    description: &str,
    new_tags: Vec<Tag>,
) -> ControlResult<SecurityGroupRecord> {
    check_text("GroupName", name)?;
    if name.starts_with("sg-") {
        return Err(VpcError::invalid(format!(
            "Value ({name}) for parameter GroupName is invalid. Group names may not be in the format sg-*."
        ))
        .into());
    }
    check_text("GroupDescription", description)?;
    let mut checked = Vec::new();
    tags::set(&mut checked, &new_tags)?;
    retry(|| async {
        let vpc_kv =
            region.store().get(&region.keys.vpc(&vpc.id))?.ok_or_else(|| VpcError::VpcNotFound(vpc.id.clone()))?;
        if region.store().get(&region.keys.group_name(&vpc.id, name))?.is_some() {
            return Err(VpcError::GroupDuplicate { name: name.to_string(), vpc: vpc.id.clone() }.into());
        }
        let group = SecurityGroupRecord {
            id: region.control.ids.ec2_id("sg"),
            name: name.to_string(),
            description: description.to_string(),
            vpc_id: vpc.id.clone(),
            ingress: Vec::new(),
            egress: vec![egress_anywhere(region)],
            tags: checked.clone(),
        };
        let (mut compares, ops) = insert_ops(region, &group);
        compares.push(Compare::CreateRevision(vpc_kv.key.clone(), berth_store::CmpOp::Equal, vpc_kv.create_revision));
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then_some(group))
    })
    .await
}

/// DeleteSecurityGroup: not the default group, not a group a network interface is in, not a
/// group another group's rule names. Returns the deleted group's id.
pub async fn delete(region: &Region<'_>, id: Option<&str>, name: Option<&str>) -> ControlResult<String> {
    retry(|| async {
        let group = get_by_id_or_name(region, id, name)?;
        let gid = group.record.id.clone();
        if group.record.is_default() {
            return Err(VpcError::DefaultGroup(gid).into());
        }
        let (enis_at, enis) = read_all::<EniRecord>(region, &region.keys.network_interfaces())?;
        let (groups_at, groups) = read_all::<SecurityGroupRecord>(region, &region.keys.security_groups())?;
        let used = enis.iter().any(|e| e.record.eni.security_groups.contains(&gid));
        let referenced = groups.iter().any(|g| g.record.id != gid && g.record.references(&gid));
        if used || referenced {
            return Err(VpcError::GroupInUse(gid).into());
        }
        let compares = vec![
            Compare::unchanged(&group.kv.key, group.kv.mod_revision),
            Compare::prefix_unchanged_since(&region.keys.network_interfaces(), enis_at),
            Compare::prefix_unchanged_since(&region.keys.security_groups(), groups_at),
        ];
        let ops = vec![
            Op::delete(&group.kv.key),
            Op::delete(&region.keys.group_name(&group.record.vpc_id, &group.record.name)),
        ];
        let done = region.store().txn(Txn::new().when(compares).and_then(ops)).await?.succeeded;
        Ok(done.then(|| gid.clone()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use berth_store::Txn;

    use super::super::permissions::{self, PeerSpec, PeerTarget, PermissionSpec};
    use super::super::testing::TestRegion;
    use super::super::{defaults, enis, subnets, vpcs};
    use super::*;
    use crate::ControlError;

    fn code(e: ControlError) -> (&'static str, String) {
        match e {
            ControlError::Vpc(e) => (e.code(), e.to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn resources_in_use_are_dependency_violations_and_stay() {
        let t = TestRegion::new();
        let r = t.region();
        let vpc = defaults::ensure(&r).await.unwrap().unwrap();
        let subnet = subnets::list(&r).unwrap().remove(0).id;
        let web = create(&r, &vpc, "web", "web", vec![]).await.unwrap();
        let db = create(&r, &vpc, "db", "db", vec![]).await.unwrap();
        let e = create(&r, &vpc, "web", "again", vec![]).await.unwrap_err();
        assert_eq!(
            code(e),
            ("InvalidGroup.Duplicate", format!("The security group 'web' already exists for VPC '{}'", vpc.id))
        );

        // The default group can never be deleted.
        let e = delete(&r, Some(&vpc.default_group_id), None).await.unwrap_err();
        assert_eq!(code(e).0, "CannotDelete");

        // A group another group's rule names is in use.
        let from_web = PermissionSpec {
            protocol: Some("tcp".into()),
            from_port: Some(5432),
            to_port: Some(5432),
            peers: vec![PeerSpec {
                target: PeerTarget::Group { id: Some(web.id.clone()), name: None, user_id: None, vpc_id: None },
                description: None,
            }],
        };
        permissions::authorize(&r, (Some(&db.id), None), Direction::Ingress, std::slice::from_ref(&from_web), &[])
            .await
            .unwrap();
        let e = delete(&r, None, Some("web")).await.unwrap_err();
        assert_eq!(code(e), ("DependencyViolation", format!("resource {} has a dependent object", web.id)));
        permissions::revoke(&r, (Some(&db.id), None), Direction::Ingress, &[from_web], &[]).await.unwrap();

        // A group an interface is in is in use, and so is the interface's subnet.
        let subnet_ids = [subnet.clone()];
        let groups = [web.id.clone()];
        let req = enis::EniRequest {
            subnets: &subnet_ids,
            security_groups: &groups,
            assign_public_ip: false,
            public_pool: None,
            task_arn: "t",
        };
        let (eni, c, o) = enis::allocate_eni_ops(&r, &req).unwrap();
        assert!(r.store().txn(Txn::new().when(c).and_then(o)).await.unwrap().succeeded);
        assert_eq!(code(delete(&r, Some(&web.id), None).await.unwrap_err()).0, "DependencyViolation");
        let e = subnets::delete(&r, &subnet).await.unwrap_err();
        assert_eq!(
            code(e),
            ("DependencyViolation", format!("The subnet '{subnet}' has dependencies and cannot be deleted."))
        );
        let e = vpcs::delete(&r, &vpc.id).await.unwrap_err();
        assert_eq!(code(e).0, "DependencyViolation");
        assert_eq!(list(&r).unwrap().len(), 3, "nothing was deleted");
        assert_eq!(subnets::list(&r).unwrap().len(), 1);

        // Once the interface is gone, both go.
        let (c, o) = enis::release_eni_ops(&r, &eni.id).unwrap();
        assert!(r.store().txn(Txn::new().when(c).and_then(o)).await.unwrap().succeeded);
        assert_eq!(delete(&r, Some(&web.id), None).await.unwrap(), web.id);
        assert_eq!(code(get(&r, &web.id).unwrap_err()).0, "InvalidGroup.NotFound");
        subnets::delete(&r, &subnet).await.unwrap();
        // The name is free again.
        create(&r, &vpc, "web", "web", vec![]).await.unwrap();
    }
}
