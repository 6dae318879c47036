//! tta-core: id generation and trace-context parsing.
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tta_core::{TraceId, TraceParent, TraceState};

fn ids(c: &mut Criterion) {
    let mut g = c.benchmark_group("core/trace_id_random");
    g.bench_function("ours", |b| b.iter(|| black_box(TraceId::random())));
    g.finish();

    let mut g = c.benchmark_group("core/traceparent_parse");
    let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    g.bench_function("ours", |b| b.iter(|| TraceParent::parse(black_box(header))));
    g.finish();

    let mut g = c.benchmark_group("core/tracestate_parse_ot");
    let header = "ot=th:fd70a;rv:0123456789abcd,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    g.bench_function("ours", |b| {
        b.iter(|| {
            let ts = TraceState::parse(black_box(header)).ok();
            ts.and_then(|t| t.ot().ok().flatten())
        })
    });
    g.finish();
}

criterion_group!(benches, ids);
criterion_main!(benches);
