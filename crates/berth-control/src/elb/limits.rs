//! ELB's quotas that Berth enforces, with the names DescribeAccountLimits gives them.

/// Load balancers of each type per region.
pub const LOAD_BALANCERS: usize = 50;
/// Target groups per region.
pub const TARGET_GROUPS: usize = 3000;
/// Listeners per load balancer.
pub const LISTENERS: usize = 50;
/// Rules per application load balancer, not counting the listeners' default rules.
pub const RULES: usize = 100;
/// Targets per target group (Berth's own quota: ELB counts targets per load balancer).
pub const TARGETS: usize = 1000;
/// Target groups one forward action names (an application load balancer's).
pub const TARGET_GROUPS_PER_ACTION: usize = 5;
/// Tags per resource.
pub const TAGS: usize = 50;
/// Security groups per load balancer.
pub const SECURITY_GROUPS: usize = 5;
/// Condition values per rule, and per condition.
pub const CONDITION_VALUES: usize = 5;
pub const CONDITION_VALUES_EACH: usize = 3;

/// The quotas DescribeAccountLimits lists: ELB's name and Berth's maximum (the ones above
/// that ELB names the same way).
pub const ACCOUNT_LIMITS: &[(&str, usize)] = &[
    ("application-load-balancers", LOAD_BALANCERS),
    ("condition-values-per-alb-rule", CONDITION_VALUES),
    ("listeners-per-application-load-balancer", LISTENERS),
    ("listeners-per-network-load-balancer", LISTENERS),
    ("network-load-balancers", LOAD_BALANCERS),
    ("rules-per-application-load-balancer", RULES),
    ("target-groups", TARGET_GROUPS),
    ("target-groups-per-action-on-application-load-balancer", TARGET_GROUPS_PER_ACTION),
    ("target-groups-per-action-on-network-load-balancer", 1),
];
