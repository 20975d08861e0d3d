//! Building the firewall configuration of a run: the filters' configurations, and the
//! seed's choice of Byzantine filters.

use std::collections::BTreeSet;
use std::time::Duration;

use palisade_firewall::FilterConfig;

use crate::crypto_memo::FirewallKeys;
use crate::filter_node::FilterNode;
use crate::keys;
use crate::rng::SimRng;
use crate::scenario::{FilterFault, SimConfig};
use crate::topology::Topology;

/// The bounds of a simulated filter: small, so that a leaking replica's flood meets its
/// pending budget and garbage collection runs often.
pub const FILTER_MAX_AHEAD: u64 = 64;
pub const FILTER_MAX_LOG_BYTES: usize = 16 << 20;
pub const FILTER_PENDING_BYTES_PER_REPLICA: usize = 32 << 10;
pub const FILTER_REPLY_CACHE_BYTES: usize = 1 << 20;
/// At most one re-forward per sequence (and answer per asker) this often; well below
/// the clients' retransmission interval (250 ms).
pub const FILTER_RETRANSMIT: Duration = Duration::from_millis(40);
/// Upper rows wait this long for the whole row below to vouch for a claim (a few network
/// delays: the scenarios' delays are 0.5–2.5 ms) before checking it with a pairing.
pub const FILTER_VOUCH_WAIT: Duration = Duration::from_millis(5);
/// An order whose replies have not all come up this long after it went down goes down
/// again (a few request round trips of the scenarios' network).
pub const FILTER_OVERDUE_AFTER: Duration = Duration::from_millis(200);
/// Clients wait this long for f+1 agreement nodes to vouch for a certified reply's claim
/// before checking it themselves.
pub const CLIENT_VOUCH_WAIT: Duration = Duration::from_millis(5);

/// The configuration of filter `id` in `topology`.
pub fn filter_config(
    config: &SimConfig,
    topology: &Topology,
    keys: &FirewallKeys,
    id: u32,
) -> FilterConfig {
    let (row, column) = topology.position(id);
    let bottom = row == topology.bottom_row();
    FilterConfig {
        row,
        column,
        rows: topology.side(),
        f: config.f,
        agreement_keys: keys::agreement_keys(config.n_agreement()),
        g: config.g,
        verifier: keys.verifier(),
        below: if bottom {
            config.n_execution() as u32
        } else {
            topology.side()
        },
        max_ahead: FILTER_MAX_AHEAD,
        max_log_bytes: FILTER_MAX_LOG_BYTES,
        max_pending_bytes_per_replica: FILTER_PENDING_BYTES_PER_REPLICA,
        reply_cache_bytes: FILTER_REPLY_CACHE_BYTES,
        retransmit_interval: FILTER_RETRANSMIT,
        vouch_wait: FILTER_VOUCH_WAIT,
        overdue_after: FILTER_OVERDUE_AFTER,
    }
}

/// Every filter of the run, with its Byzantine behaviour if it has one.
pub fn build_filters(
    config: &SimConfig,
    topology: &Topology,
    keys: &FirewallKeys,
) -> Result<Vec<FilterNode>, String> {
    (0..topology.n_filters() as u32)
        .map(|id| {
            let c = filter_config(config, topology, keys, id);
            c.validate().map_err(|e| format!("filter {id}: {e}"))?;
            let fault = config
                .filter_faults
                .iter()
                .find(|(f, _)| *f == id)
                .map(|(_, fault)| *fault);
            Ok(FilterNode::new(id, c, *topology, fault))
        })
        .collect()
}

/// The seed's choice of `config.byzantine_filters` Byzantine filters: distinct
/// positions anywhere in the grid (at most h of them leave one whole row correct), each
/// with a behaviour of [`FilterFault::ALL`].
pub fn filter_assignment(
    config: &SimConfig,
    topology: &Topology,
    rng: &mut SimRng,
) -> Vec<(u32, FilterFault)> {
    let n = topology.n_filters() as u64;
    let count = config.byzantine_filters.min(n as usize);
    let mut chosen = BTreeSet::new();
    while chosen.len() < count {
        chosen.insert(rng.below(n) as u32);
    }
    chosen
        .into_iter()
        .map(|id| (id, FilterFault::ALL[rng.index(FilterFault::ALL.len())]))
        .collect()
}
