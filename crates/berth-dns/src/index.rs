//! A [`Snapshot`] compiled for lookups, and the lookup itself: which zone a name falls in,
//! the record set it names, the records a query gets from it (routing), and the negative
//! answers (NXDOMAIN, NODATA) with the zone's SOA. Pure: the caller gives the randomness.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::snapshot::{self, RecordData, Routing, Snapshot};

/// Records a MULTIVALUE answer carries over UDP, as Route 53 answers.
pub const MULTIVALUE_UDP: usize = 8;
/// The TTL of the addresses of [`snapshot::Host`] names.
pub const HOST_TTL: u32 = 15;
/// Who the zones' SOA and NS records name.
pub const SERVER_NAME: &str = "ns1.berth.";
const HOSTMASTER: &str = "hostmaster.berth.";

/// The data of one record of a set, ready to answer, and its health.
#[derive(Debug, Clone)]
enum Data {
    Plain(RData),
    /// An alias: answered with the target's addresses.
    Alias(Name),
}

#[derive(Debug, Clone)]
struct Set {
    ttl: u32,
    routing: Routing,
    records: Vec<(Data, bool)>,
}

#[derive(Debug)]
struct ZoneIndex {
    apex: LowerName,
    soa: Record,
    ns: Record,
    sets: HashMap<(LowerName, RecordType), Set>,
    /// Every name that owns records, and the names between them and the apex.
    names: HashSet<LowerName>,
}

/// A snapshot ready to answer from.
#[derive(Debug, Default)]
pub struct Index {
    /// Longest apex first, so the innermost zone wins.
    zones: Vec<ZoneIndex>,
    hosts: HashMap<LowerName, Vec<IpAddr>>,
}

/// Where an answer leads on: the target of a CNAME, or an alias's target whose addresses are
/// answered under `owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    Cname(Name),
    Alias { owner: Name, target: Name, ttl: u32 },
}

/// What the index makes of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing of ours: ask the host's resolvers.
    Forward,
    Answer(Box<Answer>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    /// The zone's SOA, for negative answers.
    pub authorities: Vec<Record>,
    pub follow: Option<Follow>,
}

fn parse_name(text: &str) -> Option<Name> {
    let mut name = Name::from_ascii(text).ok()?;
    name.set_fqdn(true);
    Some(name)
}

fn rtype_of(data: &RecordData) -> RecordType {
    match data {
        RecordData::A(_) => RecordType::A,
        RecordData::Aaaa(_) => RecordType::AAAA,
        RecordData::Srv { .. } => RecordType::SRV,
        RecordData::Cname(_) => RecordType::CNAME,
        RecordData::Alias(_) => RecordType::A,
    }
}

fn data_of(data: &RecordData) -> Option<Data> {
    Some(match data {
        RecordData::A(ip) => Data::Plain(RData::A(A(*ip))),
        RecordData::Aaaa(ip) => Data::Plain(RData::AAAA(AAAA(*ip))),
        RecordData::Srv { priority, weight, port, target } => {
            Data::Plain(RData::SRV(SRV::new(*priority, *weight, *port, parse_name(target)?)))
        }
        RecordData::Cname(target) => Data::Plain(RData::CNAME(CNAME(parse_name(target)?))),
        RecordData::Alias(target) => Data::Alias(parse_name(target)?),
    })
}

impl ZoneIndex {
    fn new(zone: &snapshot::Zone) -> Option<ZoneIndex> {
        let apex_name = parse_name(&zone.name)?;
        let apex = LowerName::new(&apex_name);
        let server = Name::from_ascii(SERVER_NAME).expect("a valid name");
        let soa = SOA::new(
            server.clone(),
            Name::from_ascii(HOSTMASTER).expect("a valid name"),
            zone.serial,
            7200,
            900,
            1_209_600,
            zone.soa_ttl,
        );
        let soa = Record::from_rdata(apex_name.clone(), zone.soa_ttl, RData::SOA(soa));
        let ns = Record::from_rdata(apex_name.clone(), 172_800, RData::NS(NS(server)));
        let mut index = ZoneIndex { apex: apex.clone(), soa, ns, sets: HashMap::new(), names: HashSet::new() };
        for set in &zone.record_sets {
            index.add(set);
        }
        Some(index)
    }

    fn add(&mut self, set: &snapshot::RecordSet) {
        let Some(name) = parse_name(&set.name).map(|n| LowerName::new(&n)) else {
            tracing::warn!(name = set.name, "a record set name that is not a domain name is left out");
            return;
        };
        if !self.apex.zone_of(&name) || name == self.apex {
            tracing::warn!(name = set.name, "a record set outside its zone (or at its apex) is left out");
            return;
        }
        for record in &set.records {
            let Some(data) = data_of(&record.data) else { continue };
            let types: &[RecordType] = match &record.data {
                RecordData::Alias(_) => &[RecordType::A, RecordType::AAAA],
                other => &[rtype_of(other)],
            };
            for t in types {
                let entry = self.sets.entry((name.clone(), *t)).or_insert_with(|| Set {
                    ttl: set.ttl,
                    routing: set.routing,
                    records: Vec::new(),
                });
                entry.records.push((data.clone(), record.healthy));
            }
        }
        let mut at = name;
        while at != self.apex && at.num_labels() > self.apex.num_labels() {
            self.names.insert(at.clone());
            at = at.base_name();
        }
    }
}

/// The records a query gets from a set, as its routing policy picks them.
pub fn pick<'s, T>(records: &'s [(T, bool)], routing: Routing, tcp: bool, rng: &mut impl Rng) -> Vec<&'s T> {
    let healthy: Vec<&T> = records.iter().filter(|(_, h)| *h).map(|(r, _)| r).collect();
    let mut pool = if healthy.is_empty() { records.iter().map(|(r, _)| r).collect() } else { healthy };
    match routing {
        Routing::Simple => records.iter().map(|(r, _)| r).collect(),
        Routing::Weighted => pool.choose(rng).map(|r| vec![*r]).unwrap_or_default(),
        Routing::Multivalue => {
            pool.shuffle(rng);
            if !tcp {
                pool.truncate(MULTIVALUE_UDP);
            }
            pool
        }
    }
}

impl Index {
    pub fn new(snapshot: &Snapshot) -> Index {
        let mut zones: Vec<ZoneIndex> = snapshot.zones.iter().filter_map(ZoneIndex::new).collect();
        zones.sort_by_key(|z| std::cmp::Reverse(z.apex.num_labels()));
        let mut hosts: HashMap<LowerName, Vec<IpAddr>> = HashMap::new();
        for host in &snapshot.hosts {
            if let Some(name) = parse_name(&host.name) {
                hosts.entry(LowerName::new(&name)).or_default().extend(host.addresses.iter().copied());
            }
        }
        Index { zones, hosts }
    }

    fn zone(&self, name: &LowerName) -> Option<&ZoneIndex> {
        self.zones.iter().find(|z| z.apex.zone_of(name))
    }

    fn host_answer(&self, name: &Name, qtype: RecordType, addresses: &[IpAddr]) -> Answer {
        let answers = addresses
            .iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
                (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(*v6))),
                _ => None,
            })
            .map(|rdata| Record::from_rdata(name.clone(), HOST_TTL, rdata))
            .collect();
        Answer { code: ResponseCode::NoError, authoritative: true, answers, authorities: Vec::new(), follow: None }
    }

    /// What the index answers for `name` and `qtype`; `tcp` lifts MULTIVALUE's limit.
    pub fn lookup(&self, name: &Name, qtype: RecordType, tcp: bool, rng: &mut impl Rng) -> Outcome {
        let lower = LowerName::new(name);
        let host = self.hosts.get(&lower);
        let Some(zone) = self.zone(&lower) else {
            return match host {
                Some(addresses) => Outcome::Answer(Box::new(self.host_answer(name, qtype, addresses))),
                None => Outcome::Forward,
            };
        };
        let mut answer = Answer {
            code: ResponseCode::NoError,
            authoritative: true,
            answers: Vec::new(),
            authorities: Vec::new(),
            follow: None,
        };
        if lower == zone.apex {
            if matches!(qtype, RecordType::SOA | RecordType::ANY) {
                answer.answers.push(owned(&zone.soa, name));
            }
            if matches!(qtype, RecordType::NS | RecordType::ANY) {
                answer.answers.push(owned(&zone.ns, name));
            }
        } else if let Some(cname) =
            zone.sets.get(&(lower.clone(), RecordType::CNAME)).filter(|_| qtype != RecordType::CNAME)
        {
            answer.answers = self.answer_set(name, cname, tcp, rng, &mut answer.follow);
            answer.follow = cname_target(&answer.answers);
        } else {
            let types: Vec<RecordType> = if qtype == RecordType::ANY {
                let mut t: Vec<RecordType> = zone.sets.keys().filter(|(n, _)| *n == lower).map(|(_, t)| *t).collect();
                t.sort();
                t
            } else {
                vec![qtype]
            };
            for t in types {
                if let Some(set) = zone.sets.get(&(lower.clone(), t)) {
                    let picked = self.answer_set(name, set, tcp, rng, &mut answer.follow);
                    answer.answers.extend(picked);
                }
            }
        }
        if answer.answers.is_empty() && answer.follow.is_none() {
            if let Some(addresses) = host {
                return Outcome::Answer(Box::new(self.host_answer(name, qtype, addresses)));
            }
            let exists = lower == zone.apex || zone.names.contains(&lower);
            if !exists {
                answer.code = ResponseCode::NXDomain;
            }
            answer.authorities.push(zone.soa.clone());
        }
        Outcome::Answer(Box::new(answer))
    }

    /// The records picked from `set` under `name`; an alias picked sets `follow` instead.
    fn answer_set(
        &self,
        name: &Name,
        set: &Set,
        tcp: bool,
        rng: &mut impl Rng,
        follow: &mut Option<Follow>,
    ) -> Vec<Record> {
        let mut out = Vec::new();
        for data in pick(&set.records, set.routing, tcp, rng) {
            match data {
                Data::Plain(rdata) => out.push(Record::from_rdata(name.clone(), set.ttl, rdata.clone())),
                Data::Alias(target) => {
                    *follow = Some(Follow::Alias { owner: name.clone(), target: target.clone(), ttl: set.ttl });
                }
            }
        }
        out
    }
}

fn owned(record: &Record, name: &Name) -> Record {
    let mut r = record.clone();
    r.name = name.clone();
    r
}

fn cname_target(answers: &[Record]) -> Option<Follow> {
    answers.iter().find_map(|r| match &r.data {
        RData::CNAME(CNAME(target)) => Some(Follow::Cname(target.clone())),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
