use std::cell::RefCell;

use clap::Parser;
use serde_json::json;

use super::*;
use crate::client::{ApiBase, Reply};

/// Records the request and answers with a canned reply.
struct Fake {
    base: ApiBase,
    reply: Result<Reply, TransportError>,
    seen: RefCell<Vec<(Method, String, Option<String>)>>,
}

impl Fake {
    fn answering(status: u16, body: &str) -> Self {
        Fake {
            base: "http://127.0.0.1:8080".parse().unwrap(),
            reply: Ok(Reply {
                status,
                body: body.into(),
            }),
            seen: RefCell::new(Vec::new()),
        }
    }
}

impl Transport for Fake {
    fn base(&self) -> &ApiBase {
        &self.base
    }
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Reply, TransportError> {
        self.seen
            .borrow_mut()
            .push((method, path.into(), body.map(str::to_string)));
        self.reply.clone()
    }
}

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("telegenctl").chain(args.iter().copied())).unwrap()
}

/// Run argv against `fake`: (exit code, stdout, stderr).
fn run(args: &[&str], fake: &Fake) -> (u8, String, String) {
    let c = cli(args);
    let call = plan(&c).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = execute(&call, c.json, fake, &mut out, &mut err).code();
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn start_sends_only_what_was_given() {
    let fake = Fake::answering(201, r#"{"job_id":"j1","status":"starting"}"#);
    let (code, out, err) = run(
        &["start", "--port", "Ethernet0", "--direction", "ingress"],
        &fake,
    );
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("job_id  "), "{out}");
    let (m, path, body) = fake.seen.borrow()[0].clone();
    assert_eq!((m, path.as_str()), (Method::Post, "/jobs/start"));
    let body: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(body, json!({"port": "Ethernet0", "direction": "ingress"}));
}

#[test]
fn start_sends_every_option() {
    let c = cli(&[
        "start",
        "--port=Ethernet4",
        "--direction=both",
        "--duration=0",
        "--mirror-mode=span",
        "--sample-rate=10",
        "--filter=ip_proto=tcp,udp",
        "--filter",
        "l4_dport=80",
        "--filter",
        "l4_dport=443",
        "--filter",
        "vlan=100",
        "--result-detail=flows",
        "--no-otlp-export",
    ]);
    let call = plan(&c).unwrap();
    let body: serde_json::Value = serde_json::from_str(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "port": "Ethernet4", "direction": "both", "duration_sec": 0,
            "mirror_mode": "span", "sample_rate": 10,
            "filters": {"ip_proto": ["tcp", "udp"], "l4_dport": [80, 443], "vlan": 100},
            "result_detail": "flows", "otlp_export": false
        })
    );
}

#[test]
fn usage_errors_are_caught_before_any_request() {
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("telegenctl").chain(args.iter().copied()))
    };
    for args in [
        &["start", "--port", "e0", "--direction", "sideways"][..],
        &["start", "--direction", "ingress"],
        &[
            "start",
            "--port",
            "e0",
            "--direction",
            "ingress",
            "--filter",
            "port=1",
        ],
        &[
            "start",
            "--port",
            "e0",
            "--direction",
            "ingress",
            "--filter",
            "dscp=99",
        ],
        &[
            "start",
            "--port",
            "e0",
            "--direction",
            "ingress",
            "--mirror-mode",
            "x",
        ],
        &["status"],
        &["status", ""],
        &["results", "j1", "--top", "101"],
        &["results", "j1", "--top", "-1"],
        &["results", "j1", "--top", "ten"],
        &["status", "j1", "--top", "5"],
        &["--timeout", "0", "list"],
        &["--timeout", "soon", "list"],
        &["--api", "ftp://127.0.0.1:8080", "list"],
        &["--token", "a b", "list"],
        &["bogus"],
    ] {
        let e = parse(args).expect_err(&format!("{args:?}"));
        assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
    }
    let c = cli(&[
        "start",
        "--port",
        "e0",
        "--direction",
        "ingress",
        "--filter",
        "vlan=1",
        "--filter",
        "vlan=2",
    ]);
    assert!(plan(&c).unwrap_err().contains("vlan given twice"));
}

#[test]
fn global_options_go_anywhere_and_the_token_is_kept() {
    let c = cli(&[
        "list",
        "--json",
        "--api",
        "10.0.0.1:9000",
        "--token",
        "s3cr=t",
        "--timeout",
        "2.5",
    ]);
    assert!(c.json);
    assert_eq!(c.api.as_str(), "http://10.0.0.1:9000");
    assert_eq!(c.token.as_deref(), Some("s3cr=t"));
    assert_eq!(c.timeout, std::time::Duration::from_millis(2500));
}

#[test]
fn job_commands_use_escaped_routes() {
    for (args, method, path) in [
        (&["status", "a/b"][..], Method::Get, "/jobs/a%2Fb"),
        (&["results", "x?y"], Method::Get, "/jobs/x%3Fy/results"),
        (
            &["results", "j1", "--top", "100"],
            Method::Get,
            "/jobs/j1/results?top=100",
        ),
        (
            &["results", "--top=0", "j1"],
            Method::Get,
            "/jobs/j1/results?top=0",
        ),
        (&["stop", ".."], Method::Post, "/jobs/%2E%2E/stop"),
        (&["list"], Method::Get, "/jobs"),
    ] {
        let call = plan(&cli(args)).unwrap();
        assert_eq!(
            (call.method, call.path.as_str()),
            (method, path),
            "{args:?}"
        );
        assert_eq!(call.body, None);
    }
}

#[test]
fn errors_print_one_line_and_map_to_exit_codes() {
    let body = r#"{"error":"concurrency_limit","message":"At most 2 concurrent jobs are allowed. Try again later."}"#;
    let args = ["start", "--port", "e0", "--direction", "ingress"];
    let (code, out, err) = run(&args, &Fake::answering(429, body));
    assert_eq!(code, 5);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "ERROR: At most 2 concurrent jobs are allowed. Try again later. (HTTP 429)\n"
    );
    // --json: same stderr line, and the error body on stdout.
    let json_args = ["--json", "start", "--port", "e0", "--direction", "ingress"];
    let (code, out, err) = run(&json_args, &Fake::answering(429, body));
    assert_eq!(code, 5);
    assert!(err.starts_with("ERROR: At most 2"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"], "concurrency_limit");

    for (status, code) in [(400, 3), (404, 4), (401, 7), (503, 6), (500, 1)] {
        let body = format!(r#"{{"error":"e","message":"m{status}"}}"#);
        let (c, _, err) = run(&["status", "x"], &Fake::answering(status, &body));
        assert_eq!(c, code, "HTTP {status}");
        assert_eq!(err, format!("ERROR: m{status} (HTTP {status})\n"));
    }
}

#[test]
fn unreachable_and_unreadable_answers() {
    let mut fake = Fake::answering(200, "");
    fake.reply = Err(TransportError::Unreachable("connection refused".into()));
    let (code, out, err) = run(&["--json", "list"], &fake);
    assert_eq!((code, out.as_str()), (6, ""));
    assert_eq!(
        err,
        "ERROR: cannot reach the gateway at http://127.0.0.1:8080: connection refused\n"
    );
    let (code, out, err) = run(&["list"], &Fake::answering(200, "<html>"));
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("not JSON"), "{err}");
    let (code, _, err) = run(&["list"], &Fake::answering(200, r#"{"jobs":"nope"}"#));
    assert_eq!(code, 1);
    assert!(err.starts_with("ERROR: unexpected answer from the gateway at http://127.0.0.1:8080: unexpected JSON shape"), "{err}");
}

#[test]
fn json_output_is_the_body_pretty() {
    let body = r#"{"jobs":[{"job_id":"b","status":"running"}]}"#;
    let (code, out, _) = run(&["list", "--json"], &Fake::answering(200, body));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\n  \"jobs\": [\n    {\n      \"job_id\": \"b\",\n      \"status\": \"running\"\n    }\n  ]\n}\n"
    );
    let (_, out, _) = run(&["list"], &Fake::answering(200, body));
    assert!(out.starts_with("ID  STATUS"), "{out}");
}

#[test]
fn help_documents_exit_codes() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for needle in [
        "Exit codes:",
        "5  concurrency limit",
        "TELEGEN_API",
        "TELEGEN_API_TOKEN",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    Cli::command().debug_assert();
}
