//! A deterministic generator of OpenTelemetry-demo-like traces, for benches, demos and tests.
//!
//! Traces follow the shape of the OpenTelemetry demo shop: a `frontend` HTTP server span
//! fans out over gRPC to `product-catalog`, `currency`, `cart`, `checkout`, `payment`,
//! `shipping`, `email`, `recommendation` and `ad`, which call Redis (Valkey), PostgreSQL and
//! Kafka. Spans carry the usual semantic-convention attributes (`http.method`, `http.route`,
//! `http.status_code`, `rpc.system`, `rpc.service`, `rpc.method`, `db.system`,
//! `db.statement`, `net.peer.name`, ...) and demo attributes (`app.product.id`,
//! `app.session.id`, `app.order.id`, ...). Ids are random W3C ids; about 1% of traces (by
//! default) carry an error that propagates to the root. The same seed always yields the
//! same traces.
//!
//! ```
//! use tta_storage::corpus::Corpus;
//! let spans = Corpus::new(42).spans(1_000);
//! assert!(spans.len() >= 1_000);
//! assert_eq!(spans, Corpus::new(42).spans(1_000));
//! assert!(spans.iter().any(|s| s.service == "checkout"));
//! ```

use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
use tta_core::{AttributeValue, SharedStr, Span, SpanId, SpanKind, SpanStatus, TraceId};

/// Settings of a [`Corpus`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CorpusConfig {
    /// Seed of the pseudo-random generator.
    pub seed: u64,
    /// Start time of the first trace (Unix nanoseconds).
    pub start_unix_nanos: u64,
    /// Average traces per second (start times are spread with random gaps).
    pub traces_per_second: f64,
    /// Fraction of traces that contain an error, 0 to 1.
    pub error_rate: f64,
}

impl Default for CorpusConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            // 2024-01-01T00:00:00Z
            start_unix_nanos: 1_704_067_200_000_000_000,
            traces_per_second: 100.0,
            error_rate: 0.01,
        }
    }
}

/// splitmix64 (rand_xoshiro's): small, fast and good enough for synthetic data.
#[derive(Debug, Clone)]
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(SplitMix64::seed_from_u64(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).max(1))
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes * 2);
        for _ in 0..bytes {
            s.push_str(&format!("{:02x}", self.next_u64() as u8));
        }
        s
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(16);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

const PRODUCTS: &[&str] = &[
    "OLJCESPC7Z",
    "66VCHSJNUP",
    "1YMWWN1N4O",
    "L9ECAV7KIM",
    "2ZYFJ3GM2N",
    "0PUK6V6EV0",
    "LS4PSXUNUM",
    "9SIQT8TOJO",
    "6E92ZMYYFZ",
    "HQTGWGPNH4",
];
const CURRENCIES: &[&str] = &["USD", "EUR", "CAD", "JPY", "GBP", "TRY"];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "python-requests/2.31.0",
];
const ERRORS: &[(&str, &str)] = &[
    ("payment", "Invalid token. app.loyalty.level=gold"),
    (
        "product-catalog",
        "Error: Product Catalog Fail Feature Flag Enabled",
    ),
    (
        "cart",
        "Can't access cart storage. System.ApplicationException: Wasn't able to connect to redis",
    ),
    (
        "recommendation",
        "StatusCode.UNAVAILABLE: failed to connect to all addresses",
    ),
    ("ad", "io.grpc.StatusRuntimeException: RESOURCE_EXHAUSTED"),
];

/// An endless, deterministic stream of traces; each item is one trace's spans.
#[derive(Debug, Clone)]
pub struct Corpus {
    config: CorpusConfig,
    rng: Rng,
    sessions: Vec<(String, String)>,
    next_start: u64,
}

struct Builder<'a> {
    rng: &'a mut Rng,
    trace_id: TraceId,
    spans: Vec<Span>,
    parents: Vec<Option<usize>>,
}

type Attrs = Vec<(SharedStr, AttributeValue)>;

fn kv(k: &'static str, v: impl Into<AttributeValue>) -> (SharedStr, AttributeValue) {
    (SharedStr::from_static(k), v.into())
}

impl Builder<'_> {
    fn span_id(&mut self) -> SpanId {
        loop {
            let id = SpanId::from_u64(self.rng.next_u64());
            if id.is_valid() {
                return id;
            }
        }
    }

    fn open(
        &mut self,
        parent: Option<usize>,
        service: &'static str,
        name: SharedStr,
        kind: SpanKind,
        start: u64,
        attributes: Attrs,
    ) -> usize {
        let span_id = self.span_id();
        self.spans.push(Span {
            trace_id: self.trace_id,
            span_id,
            parent_span_id: parent.map(|p| self.spans[p].span_id),
            name,
            service: SharedStr::from_static(service),
            kind,
            start_unix_nanos: start,
            end_unix_nanos: start,
            status: SpanStatus::Unset,
            attributes,
            sampling_threshold: None,
        });
        self.parents.push(parent);
        self.spans.len() - 1
    }

    fn close(&mut self, i: usize, end: u64) -> u64 {
        self.spans[i].end_unix_nanos = end;
        end
    }

    /// Network latency plus jitter, in nanoseconds.
    fn hop(&mut self) -> u64 {
        self.rng.between(80_000, 900_000)
    }

    /// A gRPC call: client span in `caller`, server span in `callee`, `inner` runs inside it.
    #[allow(clippy::too_many_arguments)] // mirrors the attributes of a gRPC call pair
    fn rpc(
        &mut self,
        parent: usize,
        caller: &'static str,
        callee: &'static str,
        rpc_service: &'static str,
        method: &'static str,
        start: u64,
        inner: impl FnOnce(&mut Self, usize, u64) -> u64,
    ) -> u64 {
        let name: SharedStr = format!("{rpc_service}/{method}").into();
        let client = self.open(
            Some(parent),
            caller,
            name.clone(),
            SpanKind::Client,
            start,
            vec![
                kv("rpc.system", "grpc"),
                kv("rpc.service", rpc_service),
                kv("rpc.method", method),
                kv("net.peer.name", callee),
                kv("net.peer.port", 8080i64),
            ],
        );
        let s_start = start + self.hop();
        let server = self.open(
            Some(client),
            callee,
            name,
            SpanKind::Server,
            s_start,
            vec![
                kv("rpc.system", "grpc"),
                kv("rpc.service", rpc_service),
                kv("rpc.method", method),
                kv("rpc.grpc.status_code", 0i64),
            ],
        );
        let work_start = s_start + self.rng.between(5_000, 60_000);
        let work_end = inner(self, server, work_start);
        let s_end = work_end + self.rng.between(5_000, 80_000);
        self.close(server, s_end);
        let c_end = s_end + self.hop();
        self.close(client, c_end)
    }

    /// Local work that takes a while.
    fn work(&mut self, start: u64, lo: u64, hi: u64) -> u64 {
        start + self.rng.between(lo, hi)
    }

    fn redis(
        &mut self,
        parent: usize,
        service: &'static str,
        op: &'static str,
        key: String,
        start: u64,
    ) -> u64 {
        let stmt = format!("{op} {key}");
        let s = self.open(
            Some(parent),
            service,
            SharedStr::from_static(op),
            SpanKind::Client,
            start,
            vec![
                kv("db.system", "redis"),
                kv("db.statement", stmt),
                kv("net.peer.name", "valkey-cart"),
                kv("net.peer.port", 6379i64),
            ],
        );
        let end = self.work(start, 150_000, 1_500_000);
        self.close(s, end)
    }

    fn postgres(
        &mut self,
        parent: usize,
        service: &'static str,
        stmt: &'static str,
        start: u64,
    ) -> u64 {
        let op = stmt.split(' ').next().unwrap_or("QUERY");
        let s = self.open(
            Some(parent),
            service,
            format!("{op} products").into(),
            SpanKind::Client,
            start,
            vec![
                kv("db.system", "postgresql"),
                kv("db.name", "otel"),
                kv("db.statement", stmt),
                kv("db.operation", op),
                kv("net.peer.name", "postgresql"),
                kv("net.peer.port", 5432i64),
            ],
        );
        let end = self.work(start, 300_000, 4_000_000);
        self.close(s, end)
    }

    /// An HTTP call from `caller` to `callee`.
    fn http(
        &mut self,
        parent: usize,
        caller: &'static str,
        callee: &'static str,
        route: &'static str,
        start: u64,
        work: (u64, u64),
    ) -> u64 {
        let name: SharedStr = format!("POST {route}").into();
        let url = format!("http://{callee}:8080{route}");
        let client = self.open(
            Some(parent),
            caller,
            name.clone(),
            SpanKind::Client,
            start,
            vec![
                kv("http.method", "POST"),
                kv("http.url", url),
                kv("net.peer.name", callee),
                kv("http.status_code", 200i64),
            ],
        );
        let s_start = start + self.hop();
        let server = self.open(
            Some(client),
            callee,
            name,
            SpanKind::Server,
            s_start,
            vec![
                kv("http.method", "POST"),
                kv("http.route", route),
                kv("http.scheme", "http"),
                kv("http.status_code", 200i64),
            ],
        );
        let s_end = self.work(s_start, work.0, work.1);
        self.close(server, s_end);
        let c_end = s_end + self.hop();
        self.close(client, c_end)
    }

    fn get_product(
        &mut self,
        parent: usize,
        caller: &'static str,
        product: &'static str,
        t: u64,
    ) -> u64 {
        self.rpc(
            parent,
            caller,
            "product-catalog",
            "oteldemo.ProductCatalogService",
            "GetProduct",
            t,
            |b, srv, t| {
                b.spans[srv].attributes.push(kv("app.product.id", product));
                b.postgres(
                    srv,
                    "product-catalog",
                    "SELECT id, name, description, picture, price_usd FROM products WHERE id = $1",
                    t,
                )
            },
        )
    }

    fn convert(&mut self, parent: usize, caller: &'static str, t: u64) -> u64 {
        let currency = self.rng.pick(CURRENCIES);
        self.rpc(
            parent,
            caller,
            "currency",
            "oteldemo.CurrencyService",
            "Convert",
            t,
            |b, srv, t| {
                b.spans[srv]
                    .attributes
                    .push(kv("app.currency.conversion.to", currency));
                b.work(t, 20_000, 200_000)
            },
        )
    }

    fn ads(&mut self, parent: usize, t: u64) -> u64 {
        self.rpc(
            parent,
            "frontend",
            "ad",
            "oteldemo.AdService",
            "GetAds",
            t,
            |b, srv, t| {
                let n = b.rng.between(1, 3) as i64;
                b.spans[srv].attributes.push(kv("app.ads.count", n));
                b.work(t, 100_000, 2_000_000)
            },
        )
    }
}

impl Corpus {
    /// A corpus with default settings and this seed.
    pub fn new(seed: u64) -> Self {
        Self::with_config(CorpusConfig {
            seed,
            ..CorpusConfig::default()
        })
    }

    /// A corpus with explicit settings.
    pub fn with_config(config: CorpusConfig) -> Self {
        let mut rng = Rng::new(config.seed ^ 0x5eed_5eed_5eed_5eed);
        let sessions = (0..500).map(|_| (rng.uuid(), rng.uuid())).collect();
        Self {
            config,
            rng,
            sessions,
            next_start: config.start_unix_nanos,
        }
    }

    /// Whole traces until at least `at_least` spans were produced.
    pub fn spans(&mut self, at_least: usize) -> Vec<Span> {
        let mut out = Vec::with_capacity(at_least + 64);
        while out.len() < at_least {
            out.extend(self.next_trace());
        }
        out
    }

    /// The next trace's spans, root first.
    pub fn next_trace(&mut self) -> Vec<Span> {
        let mean_gap = 1e9 / self.config.traces_per_second.max(1e-9);
        let gap = (-(1.0 - self.rng.f64()).ln() * mean_gap) as u64;
        self.next_start = self.next_start.saturating_add(gap.max(1));
        let t0 = self.next_start;
        let (session, user) =
            self.sessions[self.rng.below(self.sessions.len() as u64) as usize].clone();
        let mut trace_bytes = [0u8; 16];
        loop {
            trace_bytes[..8].copy_from_slice(&self.rng.next_u64().to_be_bytes());
            trace_bytes[8..].copy_from_slice(&self.rng.next_u64().to_be_bytes());
            if trace_bytes != [0; 16] {
                break;
            }
        }
        let error = self.rng.f64() < self.config.error_rate;
        let mut b = Builder {
            rng: &mut self.rng,
            trace_id: TraceId::from_bytes(trace_bytes),
            spans: Vec::with_capacity(32),
            parents: Vec::with_capacity(32),
        };
        let scenario = b.rng.below(100);
        let (method, route, target): (&'static str, &'static str, String) = match scenario {
            0..=39 => {
                let p = b.rng.pick(PRODUCTS);
                (
                    "GET",
                    "/api/products/{productId}",
                    format!("/api/products/{p}"),
                )
            }
            40..=59 => ("GET", "/api/cart", "/api/cart".to_owned()),
            60..=79 => ("POST", "/api/cart", "/api/cart".to_owned()),
            80..=89 => ("POST", "/api/checkout", "/api/checkout".to_owned()),
            _ => ("GET", "/", "/".to_owned()),
        };
        let ua = b.rng.pick(USER_AGENTS);
        let root = b.open(
            None,
            "frontend",
            format!("{method} {route}").into(),
            SpanKind::Server,
            t0,
            vec![
                kv("http.method", method),
                kv("http.route", route),
                kv("http.target", target.clone()),
                kv("http.scheme", "https"),
                kv("http.status_code", 200i64),
                kv("http.user_agent", ua),
                kv("net.host.name", "frontend"),
                kv("app.session.id", session),
            ],
        );
        let mut t = t0 + b.rng.between(50_000, 400_000);
        match scenario {
            0..=39 => {
                let p = PRODUCTS
                    .iter()
                    .copied()
                    .find(|p| target.ends_with(p))
                    .unwrap_or(PRODUCTS[0]);
                t = b.get_product(root, "frontend", p, t);
                t = b.convert(root, "frontend", t);
                t = b.rpc(root, "frontend", "recommendation", "oteldemo.RecommendationService", "ListRecommendations", t, |b, srv, t| {
                    let t = b.rpc(srv, "recommendation", "product-catalog", "oteldemo.ProductCatalogService", "ListProducts", t, |b, srv2, t| {
                        b.postgres(srv2, "product-catalog", "SELECT id, name, description, picture, price_usd, categories FROM products", t)
                    });
                    b.spans[srv].attributes.push(kv("app.products_recommended.count", 5i64));
                    b.work(t, 50_000, 500_000)
                });
                t = b.ads(root, t);
            }
            40..=59 => {
                let u = user.clone();
                t = b.rpc(
                    root,
                    "frontend",
                    "cart",
                    "oteldemo.CartService",
                    "GetCart",
                    t,
                    |b, srv, t| {
                        b.spans[srv].attributes.push(kv("app.user.id", u.clone()));
                        b.redis(srv, "cart", "HGETALL", u, t)
                    },
                );
                t = b.convert(root, "frontend", t);
            }
            60..=79 => {
                let u = user.clone();
                let p = b.rng.pick(PRODUCTS);
                let q = b.rng.between(1, 5) as i64;
                t = b.get_product(root, "frontend", p, t);
                t = b.rpc(
                    root,
                    "frontend",
                    "cart",
                    "oteldemo.CartService",
                    "AddItem",
                    t,
                    |b, srv, t| {
                        b.spans[srv].attributes.extend([
                            kv("app.user.id", u.clone()),
                            kv("app.product.id", p),
                            kv("app.product.quantity", q),
                        ]);
                        let t = b.redis(srv, "cart", "HSET", u.clone(), t);
                        b.redis(srv, "cart", "EXPIRE", u, t)
                    },
                );
            }
            80..=89 => {
                let u = user.clone();
                let order = b.rng.uuid();
                t = b.rpc(
                    root,
                    "frontend",
                    "checkout",
                    "oteldemo.CheckoutService",
                    "PlaceOrder",
                    t,
                    |b, srv, mut t| {
                        b.spans[srv].attributes.extend([
                            kv("app.user.id", u.clone()),
                            kv("app.user.currency", b.rng.pick(CURRENCIES)),
                            kv("app.order.id", order.clone()),
                        ]);
                        let uc = u.clone();
                        t = b.rpc(
                            srv,
                            "checkout",
                            "cart",
                            "oteldemo.CartService",
                            "GetCart",
                            t,
                            |b, s, t| b.redis(s, "cart", "HGETALL", uc, t),
                        );
                        let items = b.rng.between(1, 5);
                        for _ in 0..items {
                            let p = b.rng.pick(PRODUCTS);
                            t = b.get_product(srv, "checkout", p, t);
                            t = b.convert(srv, "checkout", t);
                        }
                        t = b.http(
                            srv,
                            "checkout",
                            "shipping",
                            "/get-quote",
                            t,
                            (200_000, 3_000_000),
                        );
                        let amount = (b.rng.between(500, 90_000) as f64) / 100.0;
                        t = b.rpc(
                            srv,
                            "checkout",
                            "payment",
                            "oteldemo.PaymentService",
                            "Charge",
                            t,
                            |b, s, t| {
                                b.spans[s].attributes.extend([
                                    kv("app.payment.amount", amount),
                                    kv(
                                        "app.payment.card_type",
                                        b.rng.pick(&["visa", "mastercard", "amex"][..]),
                                    ),
                                    kv("app.payment.card_valid", true),
                                ]);
                                b.work(t, 500_000, 6_000_000)
                            },
                        );
                        t = b.http(
                            srv,
                            "checkout",
                            "shipping",
                            "/ship-order",
                            t,
                            (200_000, 2_000_000),
                        );
                        t = b.http(
                            srv,
                            "checkout",
                            "email",
                            "/send_order_confirmation",
                            t,
                            (2_000_000, 20_000_000),
                        );
                        let uc = u.clone();
                        t = b.rpc(
                            srv,
                            "checkout",
                            "cart",
                            "oteldemo.CartService",
                            "EmptyCart",
                            t,
                            |b, s, t| b.redis(s, "cart", "DEL", uc, t),
                        );
                        let k = b.open(
                            Some(srv),
                            "checkout",
                            SharedStr::from_static("orders publish"),
                            SpanKind::Producer,
                            t,
                            vec![
                                kv("messaging.system", "kafka"),
                                kv("messaging.destination.name", "orders"),
                                kv("messaging.operation", "publish"),
                                kv("net.peer.name", "kafka"),
                            ],
                        );
                        let e = b.work(t, 100_000, 1_000_000);
                        b.close(k, e)
                    },
                );
                b.spans[root].attributes.push(kv("app.order.id", order));
            }
            _ => {
                t = b.rpc(root, "frontend", "product-catalog", "oteldemo.ProductCatalogService", "ListProducts", t, |b, srv, t| {
                    b.postgres(srv, "product-catalog", "SELECT id, name, description, picture, price_usd, categories FROM products", t)
                });
                t = b.rpc(
                    root,
                    "frontend",
                    "currency",
                    "oteldemo.CurrencyService",
                    "GetSupportedCurrencies",
                    t,
                    |b, _, t| b.work(t, 20_000, 150_000),
                );
                t = b.ads(root, t);
            }
        }
        let end = t + b.rng.between(30_000, 300_000);
        b.close(root, end);

        if error {
            // Fail one server span of a service that has a known failure mode, and mark its
            // ancestors failed too, as instrumented services do.
            let candidates: Vec<usize> = (1..b.spans.len())
                .filter(|&i| {
                    b.spans[i].kind == SpanKind::Server
                        && ERRORS.iter().any(|(svc, _)| b.spans[i].service == *svc)
                })
                .collect();
            let failed = if candidates.is_empty() {
                0
            } else {
                b.rng.pick(&candidates)
            };
            let msg = ERRORS
                .iter()
                .find(|(svc, _)| b.spans[failed].service == *svc)
                .map_or("internal error", |(_, m)| m);
            let mut cur = Some(failed);
            while let Some(i) = cur {
                let s = &mut b.spans[i];
                s.status = SpanStatus::Error(SharedStr::from_static(msg));
                for (k, v) in &mut s.attributes {
                    match k.as_str() {
                        "http.status_code" => *v = AttributeValue::I64(500),
                        "rpc.grpc.status_code" => *v = AttributeValue::I64(13),
                        _ => {}
                    }
                }
                cur = b.parents[i];
            }
        }
        b.spans
    }
}

impl Iterator for Corpus {
    type Item = Vec<Span>;

    fn next(&mut self) -> Option<Vec<Span>> {
        Some(self.next_trace())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_dependent() {
        assert_eq!(Corpus::new(7).spans(500), Corpus::new(7).spans(500));
        assert_ne!(Corpus::new(7).spans(500), Corpus::new(8).spans(500));
    }

    #[test]
    fn traces_are_well_formed() {
        let mut c = Corpus::new(3);
        let mut services = std::collections::BTreeSet::new();
        let mut errors = 0usize;
        let traces: Vec<Vec<Span>> = (0..5_000).map(|_| c.next_trace()).collect();
        for spans in &traces {
            let root = &spans[0];
            assert!(root.is_root() && root.trace_id.is_valid());
            assert!(
                spans[1..]
                    .iter()
                    .all(|s| s.trace_id == root.trace_id && !s.is_root())
            );
            for s in spans {
                assert!(s.end_unix_nanos >= s.start_unix_nanos, "{s:?}");
                assert!(
                    s.end_unix_nanos <= root.end_unix_nanos,
                    "child outlives root: {s:?}"
                );
                let parent = s
                    .parent_span_id
                    .map(|p| spans.iter().find(|x| x.span_id == p));
                assert!(!matches!(parent, Some(None)), "dangling parent in {s:?}");
                services.insert(s.service.to_string());
            }
            if root.is_error() {
                errors += 1;
                assert_eq!(
                    root.attribute("http.status_code"),
                    Some(&AttributeValue::I64(500))
                );
            }
        }
        for svc in [
            "frontend",
            "cart",
            "checkout",
            "payment",
            "currency",
            "product-catalog",
            "shipping",
            "email",
            "recommendation",
            "ad",
        ] {
            assert!(services.contains(svc), "missing service {svc}");
        }
        // ~1% of 5000 traces; allow generous sampling noise.
        assert!((20..=90).contains(&errors), "errors: {errors}");
        for s in traces.iter().flatten() {
            if s.attribute("db.system").is_some() {
                assert!(s.attribute("db.statement").is_some());
            }
        }
    }
}
