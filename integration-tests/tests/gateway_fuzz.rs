//! Property test over the live gateway: whatever method, path, headers and
//! body arrive, the answer is never a 5xx (the probe is up), always JSON, and
//! the process survives. Real gateway and probe processes, real HTTP.

use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use telegen_integration_tests::gateway::{http, Stack};

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("jobs".to_string()),
        Just("start".to_string()),
        Just("stop".to_string()),
        Just("results".to_string()),
        Just("v1".to_string()),
        Just("monitor".to_string()),
        Just(uuid::Uuid::nil().to_string()),
        Just("%2e%2e".to_string()),
        Just("%ff%fe".to_string()),
        "[a-zA-Z0-9._~;$-]{0,40}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..6),
        prop::option::of(prop_oneof![
            "[a-z=&%0-9]{0,30}",
            // The results routes' parameters, valid and not.
            "(format=json&)?top=[-+0-9a-z.%]{0,12}",
            "top=[0-9]{1,3}&top=[0-9]{1,3}",
        ]),
    )
        .prop_map(|(segs, q)| {
            let mut p = format!("/{}", segs.join("/"));
            if let Some(q) = q {
                p.push('?');
                p.push_str(&q);
            }
            p
        })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[ -~]{0,20}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("ingress")),
        Just(serde_json::Value::from("lo")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("port".to_string()),
                    Just("direction".to_string()),
                    Just("duration_sec".to_string()),
                    Just("filters".to_string()),
                    Just("ip_proto".to_string()),
                    Just("vlan".to_string()),
                    Just("sample_rate".to_string()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn no_input_yields_a_5xx_or_kills_the_gateway() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // direct mode on a real probe; a random body could even start a job on lo.
    let s = rt
        .block_on(Stack::start(&[("TELEGEN_MAX_JOBS", "2")], &[]))
        .unwrap();
    let url = s.gw.url.clone();
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("DELETE"),
        Just("PUT"),
        Just("PATCH"),
        Just("HEAD"),
        Just("OPTIONS"),
    ];
    let ctype = prop::option::of(prop_oneof![
        Just("application/json"),
        Just("application/json; charset=utf-8"),
        Just("text/plain"),
        Just("application/x-www-form-urlencoded"),
    ]);
    runner
        .run(&(method, path(), ctype, body()), |(m, p, ct, b)| {
            let mut req = http(m, &format!("{url}{p}")).body(b);
            if let Some(ct) = ct {
                req = req.header("Content-Type", ct);
            }
            let r = req
                .send()
                .map_err(|e| TestCaseError::fail(format!("{m} {p}: {e}")))?;
            prop_assert!(r.status < 500, "{} {} -> {}: {}", m, p, r.status, r.text);
            if m != "HEAD" && r.status >= 400 {
                prop_assert!(
                    r.json["error"].is_string(),
                    "{} {} -> {}: {}",
                    m,
                    p,
                    r.status,
                    r.text
                );
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(s.gw.get("/healthz").status, 200, "{}", s.gw.log_text());
    assert!(!s.gw.log_text().contains("panicked"), "{}", s.gw.log_text());
}
