use proptest::prelude::*;

use super::*;

const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[test]
fn traceparent_valid() {
    let tp = TraceParent::parse(TP).unwrap();
    assert_eq!(
        tp.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(tp.parent_id().to_string(), "b7ad6b7169203331");
    assert_eq!(tp.flags(), 1);
    assert!(tp.sampled());
    assert!(!tp.random());
    assert_eq!(tp.to_string(), TP);
}

#[test]
fn traceparent_future_version_uses_first_four_fields() {
    let tp = TraceParent::parse(
        "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds",
    )
    .unwrap();
    assert!(tp.sampled());
    // Exactly 55 characters is also fine for a future version.
    assert!(TraceParent::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").is_ok());
    // Data after the flags must begin with '-'.
    assert_eq!(
        TraceParent::parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x"),
        Err(ParseError::TraceParent(
            "data after the flags of a future version must start with '-'"
        ))
    );
}

#[test]
fn traceparent_invalid_cases() {
    let cases: &[(&str, &str)] = &[
        (
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "version ff",
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
            "00 too long",
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            "too short",
        ),
        (
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "uppercase trace id",
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",
            "uppercase parent id",
        ),
        (
            "0A-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "uppercase version",
        ),
        (
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "zero trace id",
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "zero parent id",
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "non-hex trace id",
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333x-01",
            "non-hex parent id",
        ),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
            "non-hex flags",
        ),
        (
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "bad separator",
        ),
        (
            "00-0af7651916cd43dd8448eb211c8031-9c-b7ad6b7169203331-01",
            "short trace id",
        ),
        ("", "empty"),
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033é-01",
            "non-ascii",
        ),
    ];
    for (input, why) in cases {
        assert!(
            TraceParent::parse(input).is_err(),
            "{why}: {input} should be rejected"
        );
    }
    assert_eq!(
        TraceParent::parse("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
        Err(ParseError::AllZero { what: "trace id" })
    );
}

#[test]
fn tracestate_valid_and_preserved() {
    let ts = TraceState::parse("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,,tenant@sys=v a").unwrap();
    assert_eq!(ts.len(), 3);
    assert_eq!(ts.get("rojo"), Some("00f067aa0ba902b7"));
    assert_eq!(ts.get("tenant@sys"), Some("v a"));
    assert_eq!(
        ts.to_string(),
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant@sys=v a"
    );
    assert!(TraceState::parse("").unwrap().is_empty());
}

#[test]
fn tracestate_invalid_cases() {
    let cases: &[(&str, &str)] = &[
        ("Rojo=1", "uppercase key"),
        ("1abc=1", "simple key starting with a digit"),
        ("a=", "empty value"),
        ("a=b=c", "'=' in value"),
        ("novalue", "missing '='"),
        ("a@=1", "empty system id"),
        ("@b=1", "empty tenant id"),
        ("t@abcdefghijklmno=1", "system id longer than 14"),
        ("a=1,a=2", "duplicate key"),
        ("a=\u{7f}", "control character"),
    ];
    for (input, why) in cases {
        assert!(
            TraceState::parse(input).is_err(),
            "{why}: {input:?} should be rejected"
        );
    }
    let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    assert_eq!(
        TraceState::parse(&too_many.join(",")),
        Err(ParseError::TooManyMembers(33))
    );
    let thirty_two: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
    assert_eq!(TraceState::parse(&thirty_two.join(",")).unwrap().len(), 32);
    assert_eq!(
        TraceState::parse("a=1,a=2"),
        Err(ParseError::DuplicateKey("a".into()))
    );
}

#[test]
fn ot_member_typed_access() {
    let ts = TraceState::parse("ot=th:fd70a;rv:0123456789abcd;foo:bar.1,x=y").unwrap();
    let ot = ts.ot().unwrap().unwrap();
    assert_eq!(ot.th(), Some(0xfd70a000000000));
    assert_eq!(ot.rv(), Some(0x0123456789abcd));
    assert_eq!(ot.other().collect::<Vec<_>>(), vec![("foo", "bar.1")]);
    assert_eq!(ot.to_string(), "th:fd70a;rv:0123456789abcd;foo:bar.1");
    assert_eq!(TraceState::parse("x=y").unwrap().ot(), Ok(None));
}

#[test]
fn ot_member_invalid() {
    for bad in [
        "th:",
        "th:123456789abcdef",
        "th:ABC",
        "rv:123",
        "rv:0123456789abcde",
        "rv:0123456789ABCD",
        "th",
        "TH:1",
        "x:a b",
    ] {
        assert!(
            OtTraceState::parse(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
    assert!(OtTraceState::parse(&format!("x:{}", "a".repeat(300))).is_err());
}

#[test]
fn set_ot_moves_member_to_front() {
    let mut ts = TraceState::parse("a=1,ot=th:8").unwrap();
    let mut ot = ts.ot().unwrap().unwrap();
    ot.set_th(Some(0xc0000000000000));
    ts.set_ot(&ot).unwrap();
    assert_eq!(ts.to_string(), "ot=th:c,a=1");
    ts.set_ot(&OtTraceState::default()).unwrap();
    assert_eq!(ts.to_string(), "a=1");
}

#[test]
fn th_parse_and_format() {
    assert_eq!(parse_th("0").unwrap(), 0);
    assert_eq!(parse_th("8").unwrap(), 0x80000000000000);
    assert_eq!(parse_th("ffffffffffffff").unwrap(), (1 << 56) - 1);
    assert_eq!(format_th(0x80000000000000).as_str(), "8");
    assert_eq!(format_th(0).as_str(), "0");
    assert_eq!(format_th((1 << 56) - 1).as_str(), "ffffffffffffff");
}

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_*/-]{0,20}",
        "[a-z0-9][a-z0-9_*/-]{0,10}@[a-z][a-z0-9_*/-]{0,13}",
    ]
}

proptest! {
    #[test]
    fn traceparent_round_trip(hi in 1u128.., span in 1u64.., flags: u8) {
        let tp = TraceParent::new(TraceId::from_u128(hi), SpanId::from_u64(span), flags);
        prop_assert_eq!(TraceParent::parse(&tp.to_string()).unwrap(), tp);
    }

    #[test]
    fn traceparent_never_panics(s in "\\PC{0,80}") {
        let _ = TraceParent::parse(&s);
        let _ = TraceState::parse(&s);
        let _ = OtTraceState::parse(&s);
    }

    #[test]
    fn tracestate_round_trip(
        members in proptest::collection::btree_map(key_strategy(), "[!-+\\--<>-~]([ !-+\\--<>-~]{0,30}[!-+\\--<>-~])?", 0..32)
    ) {
        let text: Vec<String> = members.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let ts = TraceState::parse(&text.join(",")).unwrap();
        prop_assert_eq!(ts.len(), members.len());
        prop_assert_eq!(TraceState::parse(&ts.to_string()).unwrap(), ts);
    }

    #[test]
    fn th_round_trip(t in 0u64..(1 << 56)) {
        prop_assert_eq!(parse_th(format_th(t).as_str()).unwrap(), t);
    }

    #[test]
    fn ot_round_trip(th in proptest::option::of(0u64..(1 << 56)), rv in proptest::option::of(0u64..(1 << 56))) {
        let mut ot = OtTraceState::default();
        ot.set_th(th);
        ot.set_rv(rv);
        if !ot.is_empty() {
            prop_assert_eq!(OtTraceState::parse(&ot.to_string()).unwrap(), ot);
        }
    }
}
