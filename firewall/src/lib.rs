//! The privacy firewall (Yin et al., "Separating agreement from execution for Byzantine
//! fault tolerant services", SOSP 2003, §4): (h+1)² filter nodes in h+1 rows between the
//! agreement cluster and the execution cluster.
//!
//! Going down, a filter forwards only ordered batches that carry a valid agreement
//! certificate; going up, only replies that carry a valid combined threshold signature for a
//! request it saw going down, once. With at most h faulty filters one whole row is correct,
//! and every path out of the execution cluster crosses it.
//!
//! Status: this crate is the seam reserved for the filter state machine, which arrives with
//! the firewall issue (issue 4). Nothing in the current configurations depends on it yet.
