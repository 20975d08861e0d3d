//! The seam between the filter's pure state machine and whatever drives it:
//! [`FilterInput`] in, [`FilterOutput`]s out (DESIGN §3, "sans-IO").

use std::time::Duration;

use palisade_wire::envelope::Envelope;

/// Everything that can happen to a filter.
#[derive(Clone, Debug)]
pub enum FilterInput {
    /// A message from peer `from` above (as the authenticated link says): an agreement
    /// replica id (top row) or a column of the row above.
    FromAbove { from: u32, envelope: Envelope },
    /// A message from peer `from` below (as the authenticated link says): a column of the
    /// row below, or an execution replica id (bottom row).
    FromBelow { from: u32, envelope: Envelope },
    /// The runtime's monotonic clock, as data. Used only for rate limits; a reading below
    /// an earlier one is ignored.
    Tick(Duration),
}

/// The effects of one step, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterOutput {
    /// To one peer above, or (`None`) to every peer above.
    ToAbove { to: Option<u32>, envelope: Envelope },
    /// To one peer below, or (`None`) to every peer below.
    ToBelow { to: Option<u32>, envelope: Envelope },
}
