//! The tracing layer's W3C context handling and local trace decisions.

use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tta_observability::core::{SpanId, TraceId};
use tta_observability::{Observability, ObservabilityConfig};

fn runtime(dir: &std::path::Path, rate: f64) -> Observability {
    let mut c = ObservabilityConfig::from_environment("production").unwrap();
    c.tracing.sampling.default_rate = rate;
    c.tracing.sampling.adaptive_enabled = false;
    c.tracing.export_interval_seconds = 0.1;
    Observability::builder()
        .config(c)
        .store_dir(dir)
        .build()
        .unwrap()
}

/// A runtime at head rate `rate` with a store in a temporary directory (kept alive by the
/// returned guard), and a dispatcher with the registry and its layer.
fn layered(rate: f64) -> (tempfile::TempDir, Observability, tracing::Dispatch) {
    let dir = tempfile::tempdir().unwrap();
    let obs = runtime(dir.path(), rate);
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(obs.layer()));
    (dir, obs, dispatch)
}

/// Every span in the store once everything accepted has been exported.
fn flushed_spans(obs: &Observability) -> Vec<tta_observability::core::Span> {
    obs.flush(Duration::from_secs(10)).unwrap();
    obs.store()
        .unwrap()
        .query(tta_observability::storage::TraceQuery::default())
        .unwrap()
}

/// A root with a sampled remote parent follows the caller (parent-based) even at a tiny
/// rate, continues its trace id, and is exported without waiting for a root that lives in
/// another service.
#[test]
fn remote_parent_is_continued_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    let obs = runtime(dir.path(), 0.0001);
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let caller = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let header = format!("00-{trace_id}-{caller}-01");
    let subscriber = tracing_subscriber::registry().with(obs.layer());
    let unix_nanos = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    let before = unix_nanos();
    tracing::subscriber::with_default(subscriber, || {
        let _root = tracing::info_span!("GET /checkout", traceparent = %header).entered();
        let _child = tracing::info_span!("SELECT cart").entered();
        std::thread::sleep(Duration::from_millis(20));
    });
    let after = unix_nanos();
    // A caller carrying its consistent-sampling threshold (th:4 is consistent with this
    // id: its randomness 0x48eb211c80319c is above 0x40000000000000): it is kept.
    let other = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
    let header2 = format!("00-{other}-{caller}-01");
    let subscriber = tracing_subscriber::registry().with(obs.layer());
    tracing::subscriber::with_default(subscriber, || {
        let _root = tracing::info_span!(
            "GET /checkout",
            traceparent = %header2,
            tracestate = "ot=th:4"
        )
        .entered();
    });
    obs.flush(Duration::from_secs(10)).unwrap();
    let spans = obs
        .store()
        .unwrap()
        .get_trace(&trace_id)
        .unwrap()
        .expect("trace stored");
    assert_eq!(spans.len(), 2);
    let root = spans.iter().find(|s| s.name == "GET /checkout").unwrap();
    assert_eq!(root.parent_span_id, Some(caller));
    let child = spans.iter().find(|s| s.name == "SELECT cart").unwrap();
    assert_eq!(child.parent_span_id, Some(root.span_id));
    // Span times (counter clock anchored to the wall clock) lie in the wall-clock window,
    // give or take the counter's calibration, and durations include the sleep.
    let slack = 2_000_000;
    for s in &spans {
        assert!(
            s.start_unix_nanos + slack >= before && s.end_unix_nanos <= after + slack,
            "{before} <= {} .. {} <= {after}",
            s.start_unix_nanos,
            s.end_unix_nanos
        );
    }
    assert!(child.end_unix_nanos - child.start_unix_nanos >= 19_000_000);
    assert!(root.start_unix_nanos <= child.start_unix_nanos);
    // The caller sent no `th`, so the probability is unknown: no threshold is claimed.
    assert_eq!(root.sampling_threshold, None);
    let spans = obs
        .store()
        .unwrap()
        .get_trace(&other)
        .unwrap()
        .expect("second trace stored");
    assert_eq!(spans[0].sampling_threshold, Some(0x40000000000000));
    obs.shutdown(Duration::from_secs(2));
}

/// Head-dropped, healthy traces never reach the queue but are still accounted for; an error
/// anywhere in the local trace keeps all of it.
#[test]
fn local_decisions_drop_quietly_and_keep_errors_whole() {
    let dir = tempfile::tempdir().unwrap();
    let obs = runtime(dir.path(), 0.0);
    let subscriber = tracing_subscriber::registry().with(obs.layer());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..100 {
            let _root = tracing::info_span!("GET /a", i).entered();
            let _child = tracing::info_span!("child").entered();
            if i == 42 {
                tracing::error!("boom");
            }
        }
    });
    let stored = flushed_spans(&obs);
    let stats = obs.pipeline().unwrap().stats();
    assert_eq!(stats.submitted, 200);
    assert_eq!(stats.sampled_out, 198);
    assert_eq!(stats.exported_spans, 2);
    assert_eq!(stats.buffered_spans, 0);
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().any(|s| s.is_error()));
    obs.shutdown(Duration::from_secs(2));
}

/// Span fields become the stored span's attributes, whether a span has few (kept inline in
/// the layer's per-span state) or many, and fields recorded later are added.
#[test]
fn span_fields_become_attributes() {
    use tta_observability::core::AttributeValue;

    let dir = tempfile::tempdir().unwrap();
    let obs = runtime(dir.path(), 1.0);
    let subscriber = tracing_subscriber::registry().with(obs.layer());
    tracing::subscriber::with_default(subscriber, || {
        let root = tracing::info_span!(
            "GET /orders",
            route = "/orders",
            status = 200u64,
            ratio = 0.5,
            cached = false,
            user = tracing::field::Empty
        )
        .entered();
        root.record("user", "u-42");
        // Two fields: they fit the inline storage.
        let child = tracing::info_span!(
            "SELECT orders",
            table = "orders",
            rows = tracing::field::Empty
        )
        .entered();
        child.record("rows", 3i64);
        let _leaf = tracing::info_span!("decode", db = "main").entered();
        drop(_leaf);
        drop(child);
        drop(root);
        // Strings at and past the length kept as bytes, multi-byte text, and a third field
        // (beyond the state's own two); then roots with fewer fields and none, which must
        // not see any earlier span's values.
        for _ in 0..3 {
            let _texts = tracing::info_span!(
                "GET /texts",
                exact = "abcdefghijklmnopqrstuvwx",
                utf = "grüße, ünïcødé",
                long = "abcdefghijklmnopqrstuvwxy"
            )
            .entered();
        }
        let _one = tracing::info_span!("GET /one", only = 1i64).entered();
        drop(_one);
        let _bare = tracing::info_span!("GET /bare").entered();
    });
    let spans = flushed_spans(&obs);
    let root = spans
        .iter()
        .find(|s| s.name == "GET /orders")
        .expect("root");
    let str_attr = |s: &tta_observability::core::Span, k: &str| match s.attribute(k) {
        Some(AttributeValue::Str(v)) => Some(v.to_string()),
        _ => None,
    };
    assert_eq!(str_attr(root, "route").as_deref(), Some("/orders"));
    assert_eq!(root.attribute("status"), Some(&AttributeValue::I64(200)));
    assert_eq!(root.attribute("ratio"), Some(&AttributeValue::F64(0.5)));
    assert_eq!(root.attribute("cached"), Some(&AttributeValue::Bool(false)));
    assert_eq!(str_attr(root, "user").as_deref(), Some("u-42"));
    let child = spans
        .iter()
        .find(|s| s.name == "SELECT orders")
        .expect("child");
    assert_eq!(child.attributes.len(), 2, "{:?}", child.attributes);
    assert_eq!(str_attr(child, "table").as_deref(), Some("orders"));
    assert_eq!(child.attribute("rows"), Some(&AttributeValue::I64(3)));
    let leaf = spans.iter().find(|s| s.name == "decode").expect("leaf");
    assert_eq!(leaf.attributes.len(), 1);
    assert_eq!(str_attr(leaf, "db").as_deref(), Some("main"));
    let texts: Vec<_> = spans.iter().filter(|s| s.name == "GET /texts").collect();
    assert_eq!(texts.len(), 3);
    for t in texts {
        assert_eq!(t.attributes.len(), 3, "{:?}", t.attributes);
        assert_eq!(
            str_attr(t, "exact").as_deref(),
            Some("abcdefghijklmnopqrstuvwx")
        );
        assert_eq!(str_attr(t, "utf").as_deref(), Some("grüße, ünïcødé"));
        assert_eq!(
            str_attr(t, "long").as_deref(),
            Some("abcdefghijklmnopqrstuvwxy")
        );
    }
    let one = spans.iter().find(|s| s.name == "GET /one").expect("one");
    assert_eq!(
        one.attributes,
        vec![("only".into(), AttributeValue::I64(1))]
    );
    let bare = spans.iter().find(|s| s.name == "GET /bare").expect("bare");
    assert!(bare.attributes.is_empty(), "{:?}", bare.attributes);
    obs.shutdown(Duration::from_secs(5));
}

/// Spans that start, record, fail and end on different threads keep their traces: the
/// layer's per-span state is shared between threads. Children ended on other threads, one
/// before the root's handle is dropped and one after (the registry closes the root only
/// when its last child has closed), are held with the root's trace; an ERROR event sent to
/// the root from another thread marks the trace failed, so the whole trace is kept at rate 0.
#[test]
fn spans_crossing_threads_keep_their_traces() {
    let (_dir, obs, dispatch) = layered(0.0);
    tracing::dispatcher::with_default(&dispatch, || {
        let root = tracing::info_span!("GET /move");
        let early = tracing::info_span!(parent: &root, "early child");
        let late = tracing::info_span!(parent: &root, "late child");
        let (d, failing) = (dispatch.clone(), root.clone());
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                early.in_scope(|| tracing::info!("on another thread"));
                tracing::error!(parent: &failing, "failed elsewhere");
                // Spans close through the thread's current dispatcher: drop them in it.
                drop((early, failing));
            })
        })
        .join()
        .unwrap();
        drop(root);
        let d = dispatch.clone();
        std::thread::spawn(move || tracing::dispatcher::with_default(&d, || drop(late)))
            .join()
            .unwrap();
    });
    // Many threads, each with its own requests and children alive at once.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..300 {
                        let _root = tracing::info_span!("GET /many", t, i).entered();
                        let _a = tracing::info_span!("a").entered();
                        let _b = tracing::info_span!("b").entered();
                        if i % 100 == 0 {
                            tracing::error!("boom");
                        }
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let spans = flushed_spans(&obs);
    let named = |n: &str| spans.iter().filter(|s| s.name == n).collect::<Vec<_>>();
    let (root, early, late) = (
        named("GET /move"),
        named("early child"),
        named("late child"),
    );
    assert_eq!(
        (root.len(), early.len(), late.len()),
        (1, 1, 1),
        "{:?} {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>(),
        obs.pipeline().unwrap().stats()
    );
    let root = root[0];
    assert!(
        root.is_error(),
        "the error event from another thread counts"
    );
    for child in [early[0], late[0]] {
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.parent_span_id, Some(root.span_id));
    }
    // Every thread kept exactly its three failing requests, each whole (root, a, b), with
    // each child under the span that was current when it started.
    let many = named("GET /many");
    assert_eq!(many.len(), 12);
    for r in many {
        let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == r.trace_id).collect();
        assert_eq!(trace.len(), 3, "{trace:#?}");
        let a = trace.iter().find(|s| s.name == "a").unwrap();
        let b = trace.iter().find(|s| s.name == "b").unwrap();
        assert_eq!(a.parent_span_id, Some(r.span_id));
        assert_eq!(b.parent_span_id, Some(a.span_id));
    }
    let m = obs.metrics().metrics("GET /many").unwrap();
    assert_eq!(m.total_executions, 1200);
    obs.shutdown(Duration::from_secs(5));
}

/// The layer's per-span work allocates nothing for a request whose trace is dropped: its
/// state lives in the layer's table, short field values are stored inline, and the
/// execution is recorded into a known name. (Counted on this thread, after a warm-up that
/// sizes the registry's pool, the table and the metrics entry.)
#[test]
fn a_dropped_request_allocates_nothing() {
    let (_dir, obs, dispatch) = layered(0.0);
    let request = || {
        let _root = tracing::info_span!("GET /a", route = "/a", status = 200u64).entered();
    };
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..1_000 {
            request();
        }
        let ((), allocations) = tta_testkit::allocations_in(|| {
            for _ in 0..10_000 {
                request();
            }
        });
        assert_eq!(allocations, 0, "allocations in 10^4 dropped requests");
    });
    let stats = obs.pipeline().unwrap().stats();
    assert_eq!(
        stats.sampled_out, 11_000,
        "every request was decided and dropped"
    );
    assert_eq!(
        obs.metrics().metrics("GET /a").unwrap().total_executions,
        11_000
    );
    obs.shutdown(Duration::from_secs(2));
}
