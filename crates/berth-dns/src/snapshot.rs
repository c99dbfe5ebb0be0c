//! What the server answers from its own data: the contract between the control plane (which
//! builds a [`Snapshot`] from its records) and the server (which answers from the last one it
//! was given). Plain data, no DNS library types: names are text, as the control plane keeps
//! them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Everything the server answers itself; the rest it forwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Zones the server is the authority for (Cloud Map's private DNS namespaces).
    pub zones: Vec<Zone>,
    /// Further names with their addresses (tasks' private DNS names, load balancers), inside a
    /// zone or not.
    pub hosts: Vec<Host>,
}

/// A zone: its apex name, the TTL of its SOA record (also the negative-caching TTL of its
/// NXDOMAIN and NODATA answers) and its record sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `internal.app` (a trailing dot is allowed).
    pub name: String,
    pub soa_ttl: u32,
    /// The SOA serial: changes when the zone does.
    pub serial: u32,
    pub record_sets: Vec<RecordSet>,
}

/// Records of one type at one name (several sets at one name and type are answered as one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    /// Fully qualified, inside its zone: `backend.internal.app`.
    pub name: String,
    pub ttl: u32,
    pub routing: Routing,
    pub records: Vec<Record>,
}

/// How a query picks among a set's records, as Route 53 does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Every record, always (an SRV target's own address).
    Simple,
    /// Up to eight healthy records, at random, over UDP; every healthy one over TCP. When none
    /// is healthy, the unhealthy ones likewise.
    Multivalue,
    /// One healthy record at random; one of all when none is healthy.
    Weighted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub data: RecordData,
    /// An unhealthy record is answered only when no record of its set is healthy.
    pub healthy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Cname(String),
    /// Answers A and AAAA queries with the addresses the target name has (in this snapshot, or
    /// upstream), under the set's name: Route 53's alias records.
    Alias(String),
}

impl Record {
    pub fn healthy(data: RecordData) -> Record {
        Record { data, healthy: true }
    }
}

/// A name with its addresses (A and AAAA answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub addresses: Vec<IpAddr>,
}
