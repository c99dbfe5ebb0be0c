//! Berth's DNS server. It answers, from a [`Snapshot`] the control plane hands it, for the zones
//! of Cloud Map's private DNS namespaces (A, AAAA, SRV and CNAME record sets from registered
//! instances, routed as Route 53 routes MULTIVALUE and WEIGHTED records; SOA and NS at each
//! apex; NXDOMAIN and NODATA with the zone's SOA) and for further names with their addresses
//! (tasks' private DNS names, load balancers), and forwards every other name to the host's
//! resolvers. It knows nothing of the store: [`Updater::update`] is its only input.
//!
//! - [`snapshot`]: the data it is given;
//! - [`index`]: that data compiled for lookups, and the lookup (pure);
//! - [`forward`]: the upstream resolvers;
//! - [`server`]: the TCP listeners (hickory-server) and the request handler;
//! - `udp`: the UDP sockets, each served by a thread of its own.

pub mod forward;
pub mod index;
pub mod server;
pub mod snapshot;
mod udp;

pub use server::{Config, DnsError, DnsServer, Updater};
pub use snapshot::{Host, Record, RecordData, RecordSet, Routing, Snapshot, Zone};
