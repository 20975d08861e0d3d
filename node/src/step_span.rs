//! [`StepSpan`]: a driver's log span, made again only when its fields change.
//!
//! Every driver runs its core's steps inside a span that names the node and where its
//! protocol stands (view, sequence number), so that each log line a step emits carries
//! them. Making a span is not free: the fmt subscriber formats its fields into a string
//! when the span is created. One span per step (a prepare, a commit, a reply each) was
//! 4% of all CPU in `separate` under the latency suite (`perf record`, 2026-11-27);
//! a span per change of fields is one per batch per node, and the lines read the same.

use tracing::Span;

/// The span of the last fields seen.
pub(crate) struct StepSpan<K> {
    current: Option<(K, Span)>,
}

impl<K: PartialEq> StepSpan<K> {
    pub(crate) fn new() -> Self {
        StepSpan { current: None }
    }

    /// The span for `fields`: the last one if its fields were equal, else `make()`.
    pub(crate) fn get(&mut self, fields: K, make: impl FnOnce() -> Span) -> Span {
        match &self.current {
            Some((k, span)) if *k == fields => span.clone(),
            _ => {
                let span = make();
                self.current = Some((fields, span.clone()));
                span
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_made_once_per_change_of_fields() {
        let mut spans = StepSpan::new();
        let mut made = 0;
        for fields in [(0u64, 1u64), (0, 1), (0, 1), (0, 2), (1, 2), (1, 2)] {
            spans.get(fields, || {
                made += 1;
                Span::none()
            });
        }
        assert_eq!(made, 3);
    }
}
