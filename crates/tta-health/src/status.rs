//! [`HealthStatus`] and [`ComponentHealth`]: what one check says.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The health of a component or of the whole system.
///
/// Ordering is worst-first: `Unhealthy < Degraded < Healthy`, so sorting a list puts the
/// worst entries first and `min` picks the worst. [`HealthStatus::worst`] says the same thing
/// without relying on the reader remembering the direction.
///
/// ```
/// use tta_health::HealthStatus;
///
/// assert_eq!(HealthStatus::Degraded.as_str(), "degraded");
/// let mut all = vec![HealthStatus::Healthy, HealthStatus::Unhealthy, HealthStatus::Degraded];
/// all.sort();
/// assert_eq!(all[0], HealthStatus::Unhealthy);
/// assert_eq!(HealthStatus::Healthy.worst(HealthStatus::Degraded), HealthStatus::Degraded);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working as configured.
    #[default]
    Healthy,
    /// Working, but losing data or falling behind its targets; the reason says which.
    Degraded,
    /// Not doing its job (for example the exporter keeps failing or the store is not
    /// writable).
    Unhealthy,
}

impl HealthStatus {
    /// The lowercase name used in reports and JSON: `"healthy"`, `"degraded"` or
    /// `"unhealthy"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// How bad this status is: 0 for healthy, 1 for degraded, 2 for unhealthy.
    pub const fn severity(self) -> u8 {
        match self {
            Self::Healthy => 0,
            Self::Degraded => 1,
            Self::Unhealthy => 2,
        }
    }

    /// The worse of two statuses.
    #[must_use]
    pub const fn worst(self, other: Self) -> Self {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// Whether HTTP endpoints answer 200 for this status (healthy and degraded do; unhealthy
    /// answers 503).
    pub const fn is_serving(self) -> bool {
        !matches!(self, Self::Unhealthy)
    }
}

impl PartialOrd for HealthStatus {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HealthStatus {
    /// Worst first: a more severe status compares as smaller.
    fn cmp(&self, other: &Self) -> Ordering {
        other.severity().cmp(&self.severity())
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one component's check: a status, the reasons for it, and the values the
/// verdict was based on.
///
/// Build it with [`ComponentHealth::healthy`] and the rule helpers, or with the functions
/// in [`rules`](crate::rules), which fill in reasons and observed values.
///
/// ```
/// use tta_health::{ComponentHealth, HealthStatus};
///
/// let mut health = ComponentHealth::healthy().with_observed("queue_len", 12);
/// health.degrade("spans dropped in the last 60 s: 3");
/// assert_eq!(health.status, HealthStatus::Degraded);
/// assert_eq!(health.reason(), "spans dropped in the last 60 s: 3");
/// assert_eq!(health.observed["queue_len"], 12);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ComponentHealth {
    /// The component's status.
    pub status: HealthStatus,
    /// Why the status is not healthy, one entry per problem found; empty when healthy.
    pub reasons: Vec<String>,
    /// The values the verdict was based on (rates, counts, latencies), for people reading
    /// the report.
    pub observed: Map<String, Value>,
}

impl ComponentHealth {
    /// A healthy result with no reasons and no observed values.
    pub fn healthy() -> Self {
        Self::default()
    }

    /// A degraded result with one reason.
    pub fn degraded(reason: impl Into<String>) -> Self {
        let mut health = Self::healthy();
        health.degrade(reason);
        health
    }

    /// An unhealthy result with one reason.
    pub fn unhealthy(reason: impl Into<String>) -> Self {
        let mut health = Self::healthy();
        health.fail(reason);
        health
    }

    /// Adds an observed value (builder style).
    #[must_use]
    pub fn with_observed(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.observed.insert(key.into(), value.into());
        self
    }

    /// Records a problem that degrades the component (an unhealthy status stays unhealthy).
    pub fn degrade(&mut self, reason: impl Into<String>) {
        self.status = self.status.worst(HealthStatus::Degraded);
        self.reasons.push(reason.into());
    }

    /// Records a problem that makes the component unhealthy.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.status = HealthStatus::Unhealthy;
        self.reasons.push(reason.into());
    }

    /// Combines two results: the worse status, both sets of reasons and observed values
    /// (`other`'s values win on equal keys).
    #[must_use]
    pub fn merge(mut self, other: Self) -> Self {
        self.status = self.status.worst(other.status);
        self.reasons.extend(other.reasons);
        self.observed.extend(other.observed);
        self
    }

    /// The reasons joined with `"; "` (empty when healthy).
    pub fn reason(&self) -> String {
        self.reasons.join("; ")
    }

    /// The JSON entry that reports put under the component's name: `status`, `reasons`
    /// and the observed values side by side.
    pub fn to_details(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("status".into(), Value::from(self.status.as_str()));
        entry.insert(
            "reasons".into(),
            Value::Array(self.reasons.iter().cloned().map(Value::from).collect()),
        );
        for (k, v) in &self.observed {
            if k != "status" && k != "reasons" {
                entry.insert(k.clone(), v.clone());
            }
        }
        Value::Object(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_and_serde_agree() {
        for status in [
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Unhealthy,
        ] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, Value::from(status.as_str()));
            assert_eq!(status.to_string(), status.as_str());
            let back: HealthStatus = serde_json::from_value(json).unwrap();
            assert_eq!(back, status);
        }
        assert!(serde_json::from_str::<HealthStatus>("\"Healthy\"").is_err());
    }

    #[test]
    fn worst_first_ordering() {
        use HealthStatus::*;
        assert!(Unhealthy < Degraded && Degraded < Healthy);
        for a in [Healthy, Degraded, Unhealthy] {
            for b in [Healthy, Degraded, Unhealthy] {
                assert_eq!(a.worst(b), a.min(b), "{a} vs {b}");
                assert_eq!(a.worst(b), b.worst(a));
            }
        }
        assert!(Healthy.is_serving() && Degraded.is_serving() && !Unhealthy.is_serving());
    }

    #[test]
    fn degrade_never_improves_unhealthy() {
        let mut h = ComponentHealth::unhealthy("store not writable");
        h.degrade("p99 over target");
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.reason(), "store not writable; p99 over target");
    }

    #[test]
    fn merge_keeps_worst_and_all_reasons() {
        let a = ComponentHealth::degraded("a").with_observed("x", 1);
        let b = ComponentHealth::healthy()
            .with_observed("x", 2)
            .with_observed("y", 3);
        let m = a.merge(b);
        assert_eq!(m.status, HealthStatus::Degraded);
        assert_eq!(m.reasons, vec!["a".to_string()]);
        assert_eq!(m.observed["x"], 2);
        assert_eq!(m.observed["y"], 3);
    }

    #[test]
    fn details_do_not_let_observed_values_hide_status() {
        let h = ComponentHealth::degraded("why")
            .with_observed("status", "fine")
            .with_observed("n", 1);
        let d = h.to_details();
        assert_eq!(d["status"], "degraded");
        assert_eq!(d["reasons"][0], "why");
        assert_eq!(d["n"], 1);
    }
}
