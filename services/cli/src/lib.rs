//! `telegenctl`: the command line over the telegen-sonic gateway's REST job
//! API (SPEC sections 1 and 2).
//!
//! ```text
//! telegenctl [--api URL] [--token T] [--json] [--timeout SECS] <command>
//!   start --port P --direction ingress|egress|both [--duration SECS]
//!         [--mirror-mode erspan|sonic|direct|span|placeholder] [--sample-rate N]
//!         [--filter KEY=VALUE ...] [--result-detail summary|flows] [--no-otlp-export]
//!   results JOB [--top N]
//!   status JOB | stop JOB | list
//! ```
//!
//! `--api` defaults to `TELEGEN_API`, else `http://127.0.0.1:8080`; `--token`
//! to `TELEGEN_API_TOKEN`. Output is aligned tables, or with `--json` the
//! gateway's JSON answer re-indented (keys and values as sent).
//!
//! Errors are one line on stderr, `ERROR: <message> (HTTP <status>)`, or
//! `ERROR: cannot reach the gateway at <url>: <reason>`; with `--json` an
//! error answer's JSON body is also printed on stdout.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (2xx) |
//! | 1 | unexpected: an answer that cannot be understood, or a 5xx other than 503 |
//! | 2 | usage error (clap's): bad arguments, nothing was sent |
//! | 3 | request rejected: 400, 409, 413, 415 (and other 4xx not listed here) |
//! | 4 | job not found: 404 |
//! | 5 | concurrency limit reached: 429 |
//! | 6 | unavailable: 503, or the gateway cannot be reached or does not answer in time |
//! | 7 | unauthorized: 401, 403 |
//!
//! Output code writes to a `Write` and is separate from the logic, so
//! rendering, errors and exit codes are unit-tested without a gateway.

pub mod api;
pub mod args;
pub mod client;
pub mod exit;
pub mod filters;
pub mod render;

use std::io::Write;

use serde::de::DeserializeOwned;

use telegen_common::rest::{Job, JobList, Results, StartRequest};

use crate::{
    args::{Cli, Command},
    client::{Method, Transport, TransportError},
    exit::{Exit, Failure},
};

/// What the answer is, for human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Job,
    List,
    Results,
    /// pcapng, streamed to a file (capture.rs), not rendered.
    Capture,
}

/// One request to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    /// JSON body.
    pub body: Option<String>,
    pub view: View,
}

/// Turn the parsed command line into the request, or a usage error (checks
/// clap cannot make on a single argument).
pub fn plan(cli: &Cli) -> Result<Call, String> {
    let get = |path: String, view| Call {
        method: Method::Get,
        path,
        body: None,
        view,
    };
    Ok(match &cli.command {
        Command::Start(a) => {
            let req = StartRequest {
                port: a.port.clone(),
                direction: a.direction.clone(),
                duration_sec: a.duration,
                mirror_mode: a.mirror_mode.clone(),
                sample_rate: a.sample_rate,
                filters: filters::collect(&a.filters)?,
                result_detail: a.result_detail.clone(),
                otlp_export: a.no_otlp_export.then_some(false),
                // The design's aliases: telegenctl sends the current names.
                span_method: None,
                vlan: None,
                capture: a.capture(),
            };
            Call {
                method: Method::Post,
                path: api::START.into(),
                body: Some(serde_json::to_string(&req).expect("serializable")),
                view: View::Job,
            }
        }
        Command::Status(j) => get(api::job_path(&j.job), View::Job),
        Command::Results(r) => get(api::results_path(&r.job, r.top), View::Results),
        Command::Stop(j) => Call {
            method: Method::Post,
            path: api::stop_path(&j.job),
            body: None,
            view: View::Job,
        },
        Command::List => get(api::LIST.into(), View::List),
        Command::Capture(c) => get(api::capture_path(&c.job, c.from_now), View::Capture),
    })
}

/// Make the call and print the outcome: the answer on `out`, an error line on
/// `err`. Returns the exit code.
pub fn execute(
    call: &Call,
    json: bool,
    transport: &impl Transport,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Exit {
    let url = transport.base().to_string();
    let result = match transport.send(call.method, &call.path, call.body.as_deref()) {
        Ok(reply) => report(call.view, json, reply.status, &reply.body, &url, out),
        Err(TransportError::Unreachable(reason)) => Err(Failure::Unreachable { url, reason }),
        Err(TransportError::Protocol(reason)) => Err(Failure::BadResponse { url, reason }),
    };
    match result {
        Ok(()) => Exit::Ok,
        Err(f) => {
            // A closed stderr leaves only the exit code to tell.
            let _ = f.write_line(err);
            f.exit()
        }
    }
}

/// Print a reply: 2xx as a table or JSON; otherwise the failure (with --json
/// the error body goes to `out` too).
fn report(
    view: View,
    json: bool,
    status: u16,
    body: &str,
    url: &str,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let bad = |reason: String| Failure::BadResponse {
        url: url.to_string(),
        reason,
    };
    let value: Option<serde_json::Value> = serde_json::from_str(body).ok();
    if !(200..300).contains(&status) {
        if json && value.is_some() {
            let _ = render::pretty_json(out, body);
        }
        return Err(Failure::from_http(status, body));
    }
    let Some(value) = value else {
        return Err(bad(format!("HTTP {status} with a body that is not JSON")));
    };
    // Output closed early (e.g. `| head`) is not the gateway's failure, so
    // write errors are ignored.
    let _ = if json {
        render::pretty_json(out, body)
    } else {
        match view {
            View::Job => render::job(out, &typed::<Job>(value).map_err(bad)?),
            View::List => render::job_list(out, &typed::<JobList>(value).map_err(bad)?.jobs),
            View::Results => render::results(out, &typed::<Results>(value).map_err(bad)?),
            View::Capture => Ok(()),
        }
    };
    Ok(())
}

/// `telegenctl capture`: the call's pcapng into `write` (a file, or `-`
/// for `out`), live; an error answer or failure on `err`. The exit code.
pub fn capture(
    call: &Call,
    write: &str,
    transport: &impl Transport,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Exit {
    let url = transport.base().to_string();
    let mut file;
    let target: &mut dyn Write = if write == "-" {
        out
    } else {
        file = match std::fs::File::create(write) {
            Ok(f) => f,
            Err(e) => {
                let _ = writeln!(err, "ERROR: cannot write {write}: {e}");
                return Exit::Usage;
            }
        };
        &mut file
    };
    let failure = match transport.stream(&call.path, target) {
        Ok(r) if (200..300).contains(&r.status) => return Exit::Ok,
        Ok(r) => Failure::from_http(r.status, &r.body),
        Err(TransportError::Unreachable(reason)) => Failure::Unreachable { url, reason },
        Err(TransportError::Protocol(reason)) => Failure::BadResponse { url, reason },
    };
    let _ = failure.write_line(err);
    failure.exit()
}

fn typed<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("unexpected JSON shape: {e}"))
}

#[cfg(test)]
mod tests;
