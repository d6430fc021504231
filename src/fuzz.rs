//! Property tests over everything that parses untrusted input: control
//! requests, worker IPC messages, line framing, ecosystem entries. The
//! property is the same everywhere: any input gives an answer, never a panic.

use proptest::prelude::*;
use serde_json::Value;

/// Arbitrary JSON, biased towards the shapes the parsers look for.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z_]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("start"),
            Just("stop"),
            Just("list"),
            Just("NODE_CLUSTER"),
            Just("queryServer"),
            Just("max"),
            Just("cluster"),
            Just("1G"),
            Just("10s"),
            Just("SIGINT"),
            Just("/tmp/x.js"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,10}",
                    Just("cmd".to_string()),
                    Just("v".to_string()),
                    Just("id".to_string()),
                    Just("apps".to_string()),
                    Just("name".to_string()),
                    Just("script".to_string()),
                    Just("act".to_string()),
                    Just("instances".to_string()),
                    Just("env".to_string()),
                    Just("target".to_string()),
                    Just("max_memory_restart".to_string()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn control_requests_never_panic(v in json(), raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = crate::daemon::parse_request_line(v.to_string().as_bytes());
        let _ = crate::daemon::parse_request_line(&raw);
        let _ = crate::handler::parse_request(&v.to_string());
    }

    #[test]
    fn worker_messages_never_panic(v in json(), raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = crate::cluster::message::parse(v.to_string().as_bytes());
        let _ = crate::cluster::message::parse(&raw);
    }

    #[test]
    fn ecosystem_entries_never_panic(v in json(), env in proptest::option::of("[a-z]{1,8}")) {
        let only = Vec::new();
        let sel = crate::spec::ecosystem::Selection { env: env.as_deref(), only: &only, strict: false };
        let _ = crate::spec::ecosystem::read_apps(&v, &sel);
        let wrapped = serde_json::json!({ "apps": [v] });
        let _ = crate::spec::ecosystem::read_apps(&wrapped, &sel);
        let env = std::collections::BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]);
        let ctx = crate::spec::ResolveContext {
            base_dir: std::path::Path::new("/tmp"),
            caller_env: &env,
            node: std::path::Path::new("/usr/bin/node"),
            cpus: 2,
            log_dir: std::path::Path::new("/tmp/pmr-fuzz-logs"),
        };
        let _ = crate::spec::ecosystem::load_apps(&wrapped, &sel, &ctx);
    }

    #[test]
    fn framing_reassembles_any_chunking(lines in prop::collection::vec("[^\n]{0,40}", 0..20), cuts in prop::collection::vec(1usize..50, 1..20)) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let bytes = text.as_bytes();
        let mut framer = crate::protocol::LineFramer::new(1 << 20);
        let mut frames = Vec::new();
        let mut at = 0;
        for c in cuts.iter().cycle() {
            if at >= bytes.len() { break; }
            let end = (at + c).min(bytes.len());
            framer.push(&bytes[at..end], &mut frames);
            at = end;
        }
        let got: Vec<String> = frames.into_iter().map(|f| match f {
            crate::protocol::Frame::Line(l) => String::from_utf8(l).unwrap_or_default(),
            crate::protocol::Frame::Oversized(_) => "<oversized>".into(),
        }).collect();
        prop_assert_eq!(got, lines);
    }

    #[test]
    fn units_never_panic(s in ".{0,16}") {
        let _ = crate::spec::units::parse_size(&s);
        let _ = crate::spec::units::parse_duration_ms(&s);
        let _ = crate::process::signal::parse_signal(&s);
        let _ = crate::spec::Instances::parse(&s);
    }
}
