//! IPv4 CIDR arithmetic as a VPC needs it (over the `ipnet` crate): strict parsing (no host
//! bits set), overlap, the addresses AWS reserves in every subnet — the network address, the
//! next three (the router, DNS, one for future use) and the broadcast address — and carving
//! the first free block of a size out of a VPC.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The smallest and largest VPCs and subnets AWS allows.
pub const SHORTEST_PREFIX: u8 = 16;
pub const LONGEST_PREFIX: u8 = 28;

/// How many addresses of every subnet are never given out.
pub const RESERVED: u32 = 5;

/// `A.B.C.D/N` with no bit set past the prefix, or `None`.
pub fn parse(text: &str) -> Option<Ipv4Net> {
    let net: Ipv4Net = text.parse().ok()?;
    (net.trunc() == net && net.to_string() == text).then_some(net)
}

/// Whether two blocks share any address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The subnet's router: its first address after the network address (`.1`).
pub fn gateway(net: &Ipv4Net) -> Ipv4Addr {
    offset(net.network(), 1)
}

/// The addresses a subnet gives out, first and last (inclusive); `None` when every
/// address is reserved (a /30 or longer: AWS allows no such subnet anyway).
pub fn usable(net: &Ipv4Net) -> Option<(Ipv4Addr, Ipv4Addr)> {
    (capacity(net) > 0).then(|| (offset(net.network(), 4), offset(net.broadcast(), -1)))
}

/// How many addresses a subnet gives out.
pub fn capacity(net: &Ipv4Net) -> u32 {
    let size = 1u64 << (32 - u32::from(net.prefix_len()));
    size.saturating_sub(u64::from(RESERVED)) as u32
}

/// Every address a subnet gives out, in order.
pub fn hosts(net: &Ipv4Net) -> impl Iterator<Item = Ipv4Addr> {
    let (first, last) = match usable(net) {
        Some((f, l)) => (u32::from(f), u32::from(l)),
        None => (1, 0),
    };
    (first..=last).map(Ipv4Addr::from)
}

/// The first block of `prefix` inside `vpc` that overlaps none of `taken`.
pub fn carve(vpc: &Ipv4Net, prefix: u8, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    vpc.subnets(prefix).ok()?.find(|candidate| !taken.iter().any(|t| overlaps(candidate, t)))
}

fn offset(addr: Ipv4Addr, by: i64) -> Ipv4Addr {
    Ipv4Addr::from((i64::from(u32::from(addr)) + by) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        parse(s).unwrap()
    }

    #[test]
    fn parsing_is_strict() {
        assert_eq!(parse("172.31.0.0/16").map(|n| n.prefix_len()), Some(16));
        for bad in
            ["172.31.0.1/16", "172.31.0.0", "172.31.0.0/33", "300.1.1.1/8", "abc", "172.31.0.0/016", " 10.0.0.0/8"]
        {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse("0.0.0.0/0").map(|n| n.prefix_len()), Some(0));
    }

    #[test]
    fn reserved_addresses_are_the_first_four_and_the_last() {
        let n = net("172.31.0.0/20");
        assert_eq!(gateway(&n), Ipv4Addr::new(172, 31, 0, 1));
        assert_eq!(usable(&n), Some((Ipv4Addr::new(172, 31, 0, 4), Ipv4Addr::new(172, 31, 15, 254))));
        assert_eq!(capacity(&n), 4091);
        let small = net("10.0.0.16/28");
        let all: Vec<_> = hosts(&small).collect();
        assert_eq!(all.len(), 11);
        assert_eq!(all[0], Ipv4Addr::new(10, 0, 0, 20));
        assert_eq!(*all.last().unwrap(), Ipv4Addr::new(10, 0, 0, 30));
        assert_eq!(hosts(&net("10.0.0.0/30")).count(), 0);
        assert_eq!(capacity(&net("10.0.0.0/30")), 0);
    }

    #[test]
    fn overlap_and_carving() {
        assert!(overlaps(&net("10.0.0.0/16"), &net("10.0.3.0/24")));
        assert!(overlaps(&net("10.0.3.0/24"), &net("10.0.0.0/16")));
        assert!(!overlaps(&net("10.0.0.0/24"), &net("10.0.1.0/24")));
        let vpc = net("172.31.0.0/16");
        assert_eq!(carve(&vpc, 20, &[]), Some(net("172.31.0.0/20")));
        let taken = [net("172.31.0.0/20"), net("172.31.20.0/24")];
        assert_eq!(carve(&vpc, 20, &taken), Some(net("172.31.32.0/20")));
        let full: Vec<_> = vpc.subnets(20).unwrap().collect();
        assert_eq!(carve(&vpc, 20, &full), None);
    }
}
