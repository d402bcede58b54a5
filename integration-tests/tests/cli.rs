//! `telegenctl`, the real binary, against a real stack: a probe in a network
//! namespace with a veth pair, the unprivileged gateway in front of it, and
//! frames sent from the peer side. Checks the tables, `--json`, the error
//! line on stderr and every exit code the stack can produce.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use telegen_integration_tests::{
    frames,
    gateway::{free_port, Stack},
    poll,
    probe::bin_dir,
};

const CAP_MESSAGE: &str =
    "ERROR: At most 2 concurrent jobs are allowed. Try again later. (HTTP 429)\n";

/// What one telegenctl run printed, and its exit code.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The value of `key` in a key/value table (`status`, `start`, `stop`).
    fn field(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {key} row: {self:?}"))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "telegenctl failed: {self:?}");
        assert_eq!(self.stderr, "", "{self:?}");
        self
    }
}

/// Run telegenctl with `args`, without TELEGEN_API/TELEGEN_API_TOKEN from
/// the test's environment unless given in `env`.
fn ctl_env(api: &str, env: &[(&str, &str)], args: &[&str]) -> Out {
    let bin = bin_dir().join("telegenctl");
    assert!(
        bin.exists(),
        "{} not built (cargo build --workspace)",
        bin.display()
    );
    let out = Command::new(&bin)
        .env_remove("TELEGEN_API")
        .env_remove("TELEGEN_API_TOKEN")
        .env_remove("TELEGENCTL_TOKEN_FILE")
        .envs(env.iter().copied())
        .args(["--api", api])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run telegenctl");
    Out {
        code: out.status.code().expect("telegenctl exited by a signal"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

fn ctl(api: &str, args: &[&str]) -> Out {
    ctl_env(api, &[], args)
}

async fn wait_running(api: &str, id: &str) {
    poll(
        &format!("job {id} to be running (telegenctl status)"),
        Duration::from_secs(10),
        || async {
            let o = ctl(api, &["--json", "status", id]);
            (o.code == 0 && o.json()["status"] == "running").then_some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn cli_drives_jobs_through_the_gateway() {
    let s = Stack::start(&[("TELEGEN_MAX_JOBS", "2")], &[])
        .await
        .unwrap();
    let api = s.gw.url.as_str();
    let port = s.veth.port.as_str();

    // start, as a table.
    let started = ctl(
        api,
        &[
            "start",
            "--port",
            port,
            "--direction",
            "ingress",
            "--duration",
            "0",
        ],
    )
    .ok();
    let id = started.field("job_id");
    assert_eq!(id.len(), 36, "a UUID: {started:?}");
    assert_eq!(started.field("port"), port);
    assert_eq!(started.field("direction"), "ingress");
    assert_eq!(started.field("mirror_mode"), "direct");
    assert_eq!(started.field("duration_sec"), "0 (until stopped)");
    wait_running(api, &id).await;

    // status, as a table.
    let st = ctl(api, &["status", &id]).ok();
    assert_eq!(st.field("status"), "running");
    assert_eq!(st.field("interface"), port);
    assert!(
        ["tcx", "tc"].contains(&st.field("attach_mode").as_str()),
        "{st:?}"
    );
    assert_eq!(st.field("stopped_at"), "-");

    // Traffic: 7 frames of 100 bytes and 3 of 200 into the port.
    let mut sent = vec![frames::ipv4_udp(100); 7];
    sent.extend(vec![frames::ipv4_udp(200); 3]);
    frames::send(&s.peer.path(), &s.veth.peer, &sent).unwrap();
    let r = poll(
        "results to count 10 packets (telegenctl results --json)",
        Duration::from_secs(10),
        || async {
            let o = ctl(api, &["--json", "results", &id]);
            (o.code == 0 && o.json()["packets_total"].as_u64() >= Some(10)).then(|| o.json())
        },
    )
    .await
    .unwrap();
    assert_eq!(r["packets_total"], 10, "{r}");
    assert_eq!(r["bytes_total"], 7 * 100 + 3 * 200, "{r}");
    assert_eq!(r["by_proto"]["ipv4"]["packets"], 10, "{r}");

    // results, as tables.
    let res = ctl(api, &["results", &id]).ok();
    let text = &res.stdout;
    assert!(
        text.starts_with(&format!("job {id} (running): 10 packets, 1300 bytes in ")),
        "{text}"
    );
    let row = |first: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(first))
            .unwrap_or_else(|| panic!("no {first} row:\n{text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("ipv4"), ["ipv4", "10", "1300"]);
    assert_eq!(row("ipv6"), ["ipv6", "0", "0"]);
    assert_eq!(row("65-128"), ["65-128", "7"]);
    assert_eq!(row("129-256"), ["129-256", "3"]);
    assert_eq!(row(">9216"), [">9216", "0"]);

    // start --json: the gateway's 201 body.
    let second = ctl(
        api,
        &["--json", "start", "--port", port, "--direction", "egress"],
    )
    .ok()
    .json();
    let id2 = second["job_id"].as_str().unwrap().to_string();
    assert_eq!(second["direction"], "egress");
    assert!(
        ["starting", "running"].contains(&second["status"].as_str().unwrap()),
        "{second}"
    );
    wait_running(api, &id2).await;

    // list: one row per job under the header.
    let list = ctl(api, &["list"]).ok();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "ID",
            "STATUS",
            "PORT",
            "DIRECTION",
            "INTERFACE",
            "MODE",
            "STARTED"
        ]
    );
    assert_eq!(lines.len(), 3, "{}", list.stdout);
    for (job, dir) in [(&id, "ingress"), (&id2, "egress")] {
        let cells: Vec<&str> = lines
            .iter()
            .find(|l| l.starts_with(job.as_str()))
            .unwrap_or_else(|| panic!("{job} not listed:\n{}", list.stdout))
            .split_whitespace()
            .collect();
        assert_eq!(cells[1..6], ["running", port, dir, port, "direct"]);
    }

    // A third job hits the cap: the gateway's message, exit 5.
    let capped = ctl(api, &["start", "--port", port, "--direction", "both"]);
    assert_eq!(capped.code, 5, "{capped:?}");
    assert_eq!(capped.stderr, CAP_MESSAGE);
    assert_eq!(capped.stdout, "");
    let capped = ctl(
        api,
        &["--json", "start", "--port", port, "--direction", "both"],
    );
    assert_eq!(capped.code, 5, "{capped:?}");
    assert_eq!(capped.stderr, CAP_MESSAGE);
    assert_eq!(capped.json()["error"], "concurrency_limit");

    // A usage error sends nothing: still two jobs.
    let usage = ctl(api, &["start", "--port", port, "--direction", "sideways"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    let usage = ctl(
        api,
        &[
            "start",
            "--port",
            port,
            "--direction",
            "both",
            "--filter",
            "dscp=64",
        ],
    );
    assert_eq!(usage.code, 2, "{usage:?}");
    assert_eq!(
        ctl(api, &["--json", "list"]).ok().json()["jobs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // stop, then stop again: not an error, same job.
    let stopped = ctl(api, &["stop", &id]).ok();
    assert_eq!(stopped.field("status"), "stopped");
    let stopped_at = stopped.field("stopped_at");
    assert_ne!(stopped_at, "-");
    let again = ctl(api, &["stop", &id]).ok();
    assert_eq!(again.field("status"), "stopped");
    assert_eq!(again.field("stopped_at"), stopped_at);
    // The cap freed a place.
    let third = ctl(
        api,
        &["--json", "start", "--port", port, "--direction", "both"],
    )
    .ok()
    .json();
    assert!(third["job_id"].is_string(), "{third}");

    for job in [&id2, third["job_id"].as_str().unwrap()] {
        let o = ctl(api, &["--json", "stop", job]).ok().json();
        assert_eq!(o["status"], "stopped", "{o}");
    }

    // Filters reach the probe as the gateway's JSON shape; the job shows
    // the filters in effect on one line.
    let f = ctl(
        api,
        &[
            "start",
            "--port",
            port,
            "--direction",
            "ingress",
            "--filter",
            "ip_proto=tcp,17",
            "--filter",
            "l4_dport=80,443",
            "--filter",
            "vlan=10",
        ],
    )
    .ok();
    let fid = f.field("job_id");
    let line = f
        .stdout
        .lines()
        .find(|l| l.starts_with("filters: "))
        .unwrap_or_else(|| panic!("no filters line: {f:?}"));
    assert!(
        line.contains(" l4_dport=80,443") && line.ends_with(" vlan=10"),
        "{line}"
    );
    let echoed = ctl(api, &["--json", "status", &fid]).ok().json();
    assert_eq!(echoed["filters"]["l4_dport"], serde_json::json!([80, 443]));
    assert_eq!(echoed["filters"]["vlan"], 10);
    assert_eq!(
        echoed["filters"]["ip_proto"].as_array().map(Vec::len),
        Some(2),
        "{echoed}"
    );
    ctl(api, &["stop", &fid]).ok();

    // A sampled flows job: results take --top and show the flow table.
    let flows = ctl(
        api,
        &[
            "--json",
            "start",
            "--port",
            port,
            "--direction",
            "ingress",
            "--result-detail",
            "flows",
            "--sample-rate",
            "10",
        ],
    )
    .ok()
    .json();
    assert_eq!(flows["result_detail"], "flows", "{flows}");
    assert_eq!(flows["sample_rate"], 10, "{flows}");
    let flows_id = flows["job_id"].as_str().unwrap().to_string();
    wait_running(api, &flows_id).await;
    let res = ctl(api, &["results", &flows_id, "--top", "3"]).ok();
    assert!(
        res.stdout.contains("\nflow table: sample rate 1 in 10, "),
        "{res:?}"
    );
    let res = ctl(api, &["--json", "results", "--top", "3", &flows_id])
        .ok()
        .json();
    assert_eq!(res["flow_stats"]["sample_rate"], 10, "{res}");
    assert!(res["top_flows"].as_array().unwrap().len() <= 3, "{res}");
    // Above 100 is a usage error, sent nowhere.
    let usage = ctl(api, &["results", &flows_id, "--top", "101"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    ctl(api, &["stop", &flows_id]).ok();
}

#[tokio::test]
async fn cli_exit_codes_for_missing_jobs_auth_and_outages() {
    let mut s = Stack::start(&[], &[("TELEGEN_API_TOKEN", "s3cret-token-0123456789")])
        .await
        .unwrap();
    let api = s.gw.url.clone();
    let api = api.as_str();

    // No token: 401, exit 7. With --token or TELEGEN_API_TOKEN: fine.
    let denied = ctl(api, &["list"]);
    assert_eq!(denied.code, 7, "{denied:?}");
    assert!(denied.stderr.starts_with("ERROR: ") && denied.stderr.ends_with(" (HTTP 401)\n"));
    let wrong = ctl(api, &["--token", "nope", "list"]);
    assert_eq!(wrong.code, 7, "{wrong:?}");
    ctl(api, &["--token", "s3cret-token-0123456789", "list"]).ok();
    let env = [("TELEGEN_API_TOKEN", "s3cret-token-0123456789")];
    let listed = ctl_env(api, &env, &["list"]).ok();
    assert_eq!(listed.stdout, "no jobs\n");
    // From a file (flag or environment), never on the command line.
    let file = std::env::temp_dir().join(format!("telegenctl-token-{}", std::process::id()));
    std::fs::write(&file, "# ops token\ns3cret-token-0123456789\n").unwrap();
    let path = file.display().to_string();
    ctl(api, &["--token-file", &path, "list"]).ok();
    ctl_env(api, &[("TELEGENCTL_TOKEN_FILE", &path)], &["list"]).ok();
    let both = ctl(api, &["--token-file", &path, "--token", "x", "list"]);
    assert_eq!(both.code, 2, "{both:?}");
    let missing = ctl(api, &["--token-file", "/nonexistent/token", "list"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("/nonexistent/token"), "{missing:?}");
    std::fs::remove_file(&file).unwrap();

    // An unknown job: 404, exit 4, for every job command.
    let unknown = uuid::Uuid::new_v4().to_string();
    for cmd in ["status", "results", "stop"] {
        let o = ctl_env(api, &env, &[cmd, &unknown]);
        assert_eq!(o.code, 4, "{cmd}: {o:?}");
        assert!(
            o.stderr.starts_with("ERROR: ") && o.stderr.ends_with(" (HTTP 404)\n"),
            "{o:?}"
        );
        assert_eq!(o.stdout, "");
    }
    let o = ctl_env(api, &env, &["--json", "status", &unknown]);
    assert_eq!(o.code, 4);
    assert_eq!(o.json()["error"], "not_found");

    // An id that looks like a route stays one path segment: the gateway
    // refuses it as an id, and nothing is listed or stopped instead.
    for id in ["../../jobs", "x/stop", "?", ".."] {
        let o = ctl_env(api, &env, &["stop", id]);
        assert!(o.code == 3 || o.code == 4, "{id}: {o:?}");
        assert_eq!(o.stdout, "", "{id}");
    }

    // The probe goes away: the gateway answers 503, exit 6.
    s.probe.stop_process();
    let o = poll(
        "gateway to report the probe unavailable",
        Duration::from_secs(10),
        || async {
            let o = ctl_env(api, &env, &["list"]);
            (o.code != 0).then_some(o)
        },
    )
    .await
    .unwrap();
    assert_eq!(o.code, 6, "{o:?}");
    assert!(o.stderr.ends_with(" (HTTP 503)\n"), "{o:?}");
}

#[test]
fn cli_reports_a_gateway_that_is_not_listening() {
    let port = free_port().unwrap();
    let api = format!("http://127.0.0.1:{port}");
    for args in [&["list"][..], &["--json", "status", "x"]] {
        let o = ctl(&api, args);
        assert_eq!(o.code, 6, "{o:?}");
        assert_eq!(
            o.stderr,
            format!("ERROR: cannot reach the gateway at {api}: connection refused\n")
        );
        assert_eq!(o.stdout, "");
    }
}

#[test]
fn cli_version_is_embedded() {
    let o = ctl("http://127.0.0.1:1", &["--version"]).ok();
    let line = o.stdout.trim();
    let rest = line.strip_prefix("telegenctl ").expect(line);
    assert!(
        rest.starts_with("dev (commit ") || rest.starts_with("release/mark-v"),
        "{line}"
    );
    let help = ctl("http://127.0.0.1:1", &["--help"]).ok();
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
}
