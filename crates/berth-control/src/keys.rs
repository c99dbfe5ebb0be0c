//! Where each resource lives in the store. Every key is scoped by region, so resources in
//! different regions never meet. One place for the layout keeps it consistent.

pub struct Keys {
    pub(crate) region: String,
}

impl Keys {
    pub fn new(region: &str) -> Self {
        Keys { region: region.to_string() }
    }

    pub fn clusters(&self) -> String {
        format!("ecs/{}/cluster/", self.region)
    }

    pub fn cluster(&self, name: &str) -> String {
        format!("ecs/{}/cluster/{name}", self.region)
    }

    pub fn task_definitions(&self) -> String {
        format!("ecs/{}/taskdef/", self.region)
    }

    pub fn family_revisions(&self, family: &str) -> String {
        format!("ecs/{}/taskdef/{family}/", self.region)
    }

    /// Revisions are zero-padded so key order is revision order.
    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        format!("ecs/{}/taskdef/{family}/{revision:010}", self.region)
    }

    /// The index of revisions in DELETE_IN_PROGRESS, which housekeeping purges once unused.
    pub fn deleting_definitions(&self) -> String {
        format!("ecs/{}/taskdef-deleting/", self.region)
    }

    pub fn deleting_definition(&self, family: &str, revision: u32) -> String {
        format!("ecs/{}/taskdef-deleting/{family}/{revision:010}", self.region)
    }

    /// Present once the region's DELETE_IN_PROGRESS revisions from before the index existed
    /// have been indexed.
    pub fn deleting_indexed(&self) -> String {
        format!("ecs/{}/taskdef-deleting-indexed", self.region)
    }

    /// The last revision number handed out for a family (kept after deletions, as ECS does).
    pub fn family(&self, family: &str) -> String {
        format!("ecs/{}/family/{family}", self.region)
    }

    pub fn families(&self) -> String {
        format!("ecs/{}/family/", self.region)
    }

    pub fn tasks(&self, cluster: &str) -> String {
        format!("ecs/{}/task/{cluster}/", self.region)
    }

    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("ecs/{}/task/{cluster}/{id}", self.region)
    }

    pub fn instances(&self, cluster: &str) -> String {
        format!("ecs/{}/instance/{cluster}/", self.region)
    }

    pub fn instance(&self, cluster: &str, id: &str) -> String {
        format!("ecs/{}/instance/{cluster}/{id}", self.region)
    }

    /// The index of container instances that lend their capacity to Fargate: one key per
    /// instance, written when it registers so.
    pub fn fargate_hosts(&self) -> String {
        format!("ecs/{}/fargate-host/", self.region)
    }

    pub fn fargate_host(&self, cluster: &str, id: &str) -> String {
        format!("ecs/{}/fargate-host/{cluster}/{id}", self.region)
    }

    /// The FARGATE tasks placed on a host, of any cluster: written with the task, removed
    /// when it stops. The host's agent finds its tasks through it.
    pub fn hosted_tasks(&self, cluster: &str, id: &str) -> String {
        format!("ecs/{}/hosted/{cluster}/{id}/", self.region)
    }

    pub fn hosted_task(&self, host: &crate::records::Host, task_cluster: &str, task_id: &str) -> String {
        format!("ecs/{}/hosted/{}/{}/{task_cluster}/{task_id}", self.region, host.cluster, host.id)
    }

    /// Every task of the region, of all clusters.
    pub fn all_tasks(&self) -> String {
        format!("ecs/{}/task/", self.region)
    }

    /// What a RunTask `clientToken` produced (the token hex-encoded, so any text is a key).
    pub fn run_token(&self, cluster: &str, token: &str) -> String {
        format!("ecs/{}/runtoken/{cluster}/{}", self.region, hex::encode(token))
    }

    pub fn services(&self, cluster: &str) -> String {
        format!("ecs/{}/service/{cluster}/", self.region)
    }

    /// Marks the region as having clusters, so background work knows where to look.
    pub fn region(&self) -> String {
        format!("{REGIONS}{}", self.region)
    }

    pub fn service(&self, cluster: &str, name: &str) -> String {
        format!("ecs/{}/service/{cluster}/{name}", self.region)
    }

    /// The service scheduler's index of services to reconcile, across regions: written with
    /// the service, removed when it becomes INACTIVE.
    pub fn scheduled(&self, cluster: &str, name: &str) -> String {
        format!("{SCHEDULED}{}/{cluster}/{name}", self.region)
    }

    /// The index of tasks draining from their load balancers, which every scheduler pass
    /// looks at (whatever became of their service).
    pub fn draining_task(&self, cluster: &str, id: &str) -> String {
        format!("{DRAINING}{}/{cluster}/{id}", self.region)
    }

    /// `principal` is an ARN, or `default` for the account default.
    pub fn setting(&self, principal: &str, name: &str) -> String {
        format!("ecs/{}/setting/{principal}/{name}", self.region)
    }

    // The VPC model (`vpc/`): EC2 resources, keyed by their ids.

    pub fn vpcs(&self) -> String {
        format!("ec2/{}/vpc/", self.region)
    }

    pub fn vpc(&self, id: &str) -> String {
        format!("ec2/{}/vpc/{id}", self.region)
    }

    /// The region's default VPC id, written once when it is created and kept if the VPC is
    /// deleted, so a deleted default VPC is not made again.
    pub fn default_vpc(&self) -> String {
        format!("ec2/{}/default-vpc", self.region)
    }

    pub fn subnets(&self) -> String {
        format!("ec2/{}/subnet/", self.region)
    }

    pub fn subnet(&self, id: &str) -> String {
        format!("ec2/{}/subnet/{id}", self.region)
    }

    /// The default subnet made for a zone of a VPC (its id), kept after the subnet is
    /// deleted so a zone gets a default subnet once.
    pub fn default_subnet(&self, vpc: &str, zone: &str) -> String {
        format!("ec2/{}/default-subnet/{vpc}/{}", self.region, hex::encode(zone))
    }

    pub fn security_groups(&self) -> String {
        format!("ec2/{}/sg/", self.region)
    }

    pub fn security_group(&self, id: &str) -> String {
        format!("ec2/{}/sg/{id}", self.region)
    }

    /// A group's name within its VPC (names are unique per VPC): the group id.
    pub fn group_name(&self, vpc: &str, name: &str) -> String {
        format!("ec2/{}/sg-name/{vpc}/{}", self.region, hex::encode(name))
    }

    pub fn network_interfaces(&self) -> String {
        format!("ec2/{}/eni/", self.region)
    }

    pub fn network_interface(&self, id: &str) -> String {
        format!("ec2/{}/eni/{id}", self.region)
    }

    /// The addresses given out in every subnet of the region.
    pub fn all_addresses(&self) -> String {
        format!("ec2/{}/ip/", self.region)
    }

    /// The addresses given out in a subnet, one key each.
    pub fn addresses(&self, subnet: &str) -> String {
        format!("ec2/{}/ip/{subnet}/", self.region)
    }

    /// One address given out in a subnet: the network interface holding it. Created with a
    /// compare on its absence, so no two interfaces ever hold one address.
    pub fn address(&self, subnet: &str, ip: std::net::Ipv4Addr) -> String {
        format!("ec2/{}/ip/{subnet}/{ip}", self.region)
    }

    /// The public addresses given out in the region.
    pub fn public_addresses(&self) -> String {
        format!("ec2/{}/public-ip/", self.region)
    }

    /// One public address given out (`assignPublicIp`): the network interface holding it.
    /// Region-wide, so two interfaces never hold one, even from overlapping pools.
    pub fn public_address(&self, ip: std::net::Ipv4Addr) -> String {
        format!("{}{ip}", self.public_addresses())
    }

    // Elastic Load Balancing (`elb/`): load balancers, target groups, listeners, rules and
    // registered targets, keyed by the ids in their ARNs. Everything the data plane's
    // configuration is built from lives under [`Keys::elb`]; what the data plane observes
    // lives under [`ELB_HEALTH`], so health reports never conflict with the API's writes.

    /// Every ELB record of the region that shapes the data plane's configuration.
    pub fn elb(&self) -> String {
        format!("elb/{}/", self.region)
    }

    pub fn load_balancers(&self) -> String {
        format!("elb/{}/lb/", self.region)
    }

    pub fn load_balancer(&self, id: &str) -> String {
        format!("elb/{}/lb/{id}", self.region)
    }

    /// A load balancer's name (unique per region): its id.
    pub fn load_balancer_name(&self, name: &str) -> String {
        format!("elb/{}/lb-name/{}", self.region, hex::encode(name))
    }

    pub fn target_groups(&self) -> String {
        format!("elb/{}/tg/", self.region)
    }

    pub fn target_group(&self, id: &str) -> String {
        format!("elb/{}/tg/{id}", self.region)
    }

    /// A target group's name (unique per region): its id.
    pub fn target_group_name(&self, name: &str) -> String {
        format!("elb/{}/tg-name/{}", self.region, hex::encode(name))
    }

    /// Every listener of the region.
    pub fn all_listeners(&self) -> String {
        format!("elb/{}/listener/", self.region)
    }

    /// The listeners of one load balancer.
    pub fn listeners(&self, lb: &str) -> String {
        format!("elb/{}/listener/{lb}/", self.region)
    }

    pub fn listener(&self, lb: &str, id: &str) -> String {
        format!("elb/{}/listener/{lb}/{id}", self.region)
    }

    /// Every (non-default) rule of the region.
    pub fn all_rules(&self) -> String {
        format!("elb/{}/rule/", self.region)
    }

    /// The non-default rules of one listener.
    pub fn rules(&self, listener: &str) -> String {
        format!("elb/{}/rule/{listener}/", self.region)
    }

    pub fn rule(&self, listener: &str, id: &str) -> String {
        format!("elb/{}/rule/{listener}/{id}", self.region)
    }

    /// Every registered target of the region.
    pub fn all_targets(&self) -> String {
        format!("elb/{}/target/", self.region)
    }

    /// The registered (and draining) targets of one target group.
    pub fn targets(&self, tg: &str) -> String {
        format!("elb/{}/target/{tg}/", self.region)
    }

    pub fn target(&self, tg: &str, id: &str, port: u16) -> String {
        format!("elb/{}/target/{tg}/{id}/{port}", self.region)
    }

    /// What the data plane observed of the targets of one target group.
    pub fn target_healths(&self, tg: &str) -> String {
        format!("{ELB_HEALTH}{}/{tg}/", self.region)
    }

    pub fn target_health(&self, tg: &str, id: &str, port: u16) -> String {
        format!("{ELB_HEALTH}{}/{tg}/{id}/{port}", self.region)
    }

    /// Marks the region as having ELB resources, so the data plane's configuration and
    /// housekeeping know where to look.
    pub fn elb_region(&self) -> String {
        format!("{ELB_REGIONS}{}", self.region)
    }
}

/// Prefix of every region's target health as the data plane reported it:
/// `elb-health/{region}/{tg}/{target}/{port}`.
pub const ELB_HEALTH: &str = "elb-health/";

/// Prefix of [`Keys::elb_region`]: `elb-regions/{region}`.
pub const ELB_REGIONS: &str = "elb-regions/";

/// Listener ports, across regions: `elb-port/{port}` holds the ARN of the listener on it.
/// Every load balancer of an installation listens on the same address, so a port serves one
/// listener at most; created with a compare on its absence.
pub const LISTENER_PORTS: &str = "elb-port/";

pub fn listener_port(port: u16) -> String {
    format!("{LISTENER_PORTS}{port}")
}

impl Keys {
    // Cloud Map (`discovery/`): namespaces, services, instances and operations, by id.

    pub fn sd_namespaces(&self) -> String {
        format!("sd/{}/ns/", self.region)
    }

    pub fn sd_namespace(&self, id: &str) -> String {
        format!("sd/{}/ns/{id}", self.region)
    }

    /// A namespace's name (its `HttpName`, unique in the region, lower case): the namespace id.
    pub fn sd_namespace_name(&self, name: &str) -> String {
        format!("sd/{}/ns-name/{}", self.region, hex::encode(name.to_ascii_lowercase()))
    }

    pub fn sd_services(&self) -> String {
        format!("sd/{}/svc/", self.region)
    }

    pub fn sd_service(&self, id: &str) -> String {
        format!("sd/{}/svc/{id}", self.region)
    }

    /// The names of a namespace's services, one key each (the service id): what makes a
    /// namespace in use.
    pub fn sd_service_names(&self, namespace: &str) -> String {
        format!("sd/{}/svc-name/{namespace}/", self.region)
    }

    pub fn sd_service_name(&self, namespace: &str, name: &str) -> String {
        format!("sd/{}/svc-name/{namespace}/{}", self.region, hex::encode(name.to_ascii_lowercase()))
    }

    /// A service's instances: what makes a service in use.
    pub fn sd_instances(&self, service: &str) -> String {
        format!("sd/{}/inst/{service}/", self.region)
    }

    pub fn sd_instance(&self, service: &str, id: &str) -> String {
        format!("sd/{}/inst/{service}/{}", self.region, hex::encode(id))
    }

    /// Written at every registration and deregistration of a service's instances: its mod
    /// revision is the service's `InstancesRevision`.
    pub fn sd_instances_revision(&self, service: &str) -> String {
        format!("sd/{}/inst-rev/{service}", self.region)
    }

    pub fn sd_operations(&self) -> String {
        format!("sd/{}/op/", self.region)
    }

    pub fn sd_operation(&self, id: &str) -> String {
        format!("sd/{}/op/{id}", self.region)
    }

    /// The operations by creation time (milliseconds, zero-padded), for pruning old ones.
    pub fn sd_operation_times(&self) -> String {
        format!("sd/{}/op-time/", self.region)
    }

    pub fn sd_operation_time(&self, millis: u64, id: &str) -> String {
        format!("sd/{}/op-time/{millis:015}/{id}", self.region)
    }

    /// What a `CreatorRequestId` (or `UpdaterRequestId`) of one kind of request produced.
    pub fn sd_request(&self, kind: &str, token: &str) -> String {
        format!("sd/{}/request/{kind}/{}", self.region, hex::encode(token))
    }

    /// Marks the region as having Cloud Map namespaces (for the DNS server and housekeeping).
    pub fn sd_region(&self) -> String {
        format!("{SD_REGIONS}{}", self.region)
    }
}

/// Prefix of every Cloud Map key, of all regions: what the DNS server watches.
pub const SD: &str = "sd/";

/// Prefix of [`Keys::sd_region`]: `sd-regions/{region}`, one key per region with namespaces.
pub const SD_REGIONS: &str = "sd-regions/";

/// The CIDR block of every region's default VPC, as `--vpc-cidr` set it at start: regions
/// other than the installation's own get their default VPC on first use, from this.
pub const DEFAULT_VPC_CIDR: &str = "ec2-settings/default-vpc-cidr";

/// Prefix of [`Keys::region`]: `regions/{region}`, one key per region that has clusters.
pub const REGIONS: &str = "regions/";

/// Prefix of [`Keys::scheduled`]: `sched/{region}/{cluster}/{name}`.
pub const SCHEDULED: &str = "sched/";
/// Tasks draining from their load balancers, of every region: `drain/{region}/{cluster}/{id}`.
pub const DRAINING: &str = "drain/";
