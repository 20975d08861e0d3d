//! Palisade's deterministic whole-pipeline simulator (work in progress).
