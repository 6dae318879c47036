//! A `metrics` crate recorder wrapper that limits every label of an inner recorder.

use std::sync::Arc;

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};

use crate::{CardinalityError, CardinalityLimiter, CardinalityLimits};

/// Wraps any [`metrics::Recorder`] so that every label value goes through a
/// [`CardinalityLimiter`] before the inner recorder sees it.
///
/// Label keys pass through unchanged; values past the limit become `hash:` buckets or
/// [`OVERFLOW_VALUE`](crate::OVERFLOW_VALUE), so the inner recorder's series stay bounded and
/// totals land in the coarsened series. When every value is kept as-is the original key is
/// passed through without copying.
///
/// ```
/// use std::sync::Arc;
/// use metrics::{Key, Label, Recorder};
/// use tta_cardinality::{CardinalityLimits, LimitedRecorder};
/// let limits = CardinalityLimits { max_label_values: 1, hash_high_cardinality: false, ..Default::default() };
/// let recorder = LimitedRecorder::new(metrics::NoopRecorder, limits)?;
/// let meta = metrics::Metadata::new("doc", metrics::Level::INFO, None);
/// for user in ["alice", "bob"] {
///     let key = Key::from_parts("logins_total", vec![Label::new("user", user)]);
///     recorder.register_counter(&key, &meta).increment(1);
/// }
/// assert_eq!(recorder.limiter().stats().dropped_labels, vec!["user".to_string()]);
/// # Ok::<(), tta_cardinality::CardinalityError>(())
/// ```
#[derive(Debug)]
pub struct LimitedRecorder<R> {
    inner: R,
    limiter: Arc<CardinalityLimiter>,
}

impl<R> LimitedRecorder<R> {
    /// Wraps `inner` with a new limiter.
    pub fn new(inner: R, limits: CardinalityLimits) -> Result<Self, CardinalityError> {
        Ok(Self::with_limiter(
            inner,
            Arc::new(CardinalityLimiter::new(limits)?),
        ))
    }

    /// Wraps `inner` with a shared limiter (e.g. the one whose stats a health check reads).
    pub fn with_limiter(inner: R, limiter: Arc<CardinalityLimiter>) -> Self {
        Self { inner, limiter }
    }

    /// The limiter, for stats and hot reload ([`CardinalityLimiter::set_limits`]).
    pub fn limiter(&self) -> &Arc<CardinalityLimiter> {
        &self.limiter
    }

    /// The wrapped recorder.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// The key the inner recorder sees: same name, limited label values.
    pub fn limit_key(&self, key: &Key) -> Key {
        let mut changed = false;
        let labels: Vec<Label> = key
            .labels()
            .map(|label| {
                let admitted = self.limiter.admit(label.key(), label.value());
                if admitted.is_kept() && admitted.len() == label.value().len() {
                    label.clone()
                } else {
                    changed = true;
                    Label::new(
                        SharedString::from(label.key().to_owned()),
                        SharedString::from(admitted.to_shared()),
                    )
                }
            })
            .collect();
        if changed {
            Key::from_parts(key.name_shared(), labels)
        } else {
            key.clone()
        }
    }
}

impl<R: Recorder> Recorder for LimitedRecorder<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(&self.limit_key(key), metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(&self.limit_key(key), metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.inner
            .register_histogram(&self.limit_key(key), metadata)
    }
}
