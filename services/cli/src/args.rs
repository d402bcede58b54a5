//! Command line (clap).

use std::time::Duration;

use clap::{builder::PossibleValuesParser, Args, Parser, Subcommand};
use telegen_common::{
    rest::limits::{
        DEFAULT_DURATION_SEC, DEFAULT_TOP, DIRECTIONS, MAX_DURATION_SEC, MAX_SAMPLE_RATE, MAX_TOP,
        MIRROR_MODES, RESULT_DETAILS,
    },
    BuildInfo,
};

use crate::{client::ApiBase, exit::EXIT_CODES_HELP, filters::FilterArg};

/// telegenctl: start, watch and stop telegen-sonic monitoring jobs through
/// the gateway's REST API.
#[derive(Debug, Parser)]
#[command(
    name = "telegenctl",
    version = BuildInfo::long_version(),
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Gateway base URL (http:// or https://).
    #[arg(
        long,
        env = "TELEGEN_API",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL",
        global = true,
        help_heading = "Global options"
    )]
    pub api: ApiBase,

    /// CA certificate(s) (PEM) an https gateway's certificate must chain
    /// to; default: the system's bundle.
    #[arg(
        long,
        env = "TELEGENCTL_CACERT",
        value_name = "FILE",
        global = true,
        help_heading = "Global options"
    )]
    pub cacert: Option<std::path::PathBuf>,

    /// File holding the API token (its first line), so that the token is
    /// never on a command line (`ps` shows those to every user).
    #[arg(
        long,
        env = "TELEGENCTL_TOKEN_FILE",
        value_name = "FILE",
        conflicts_with = "token",
        global = true,
        help_heading = "Global options"
    )]
    pub token_file: Option<std::path::PathBuf>,

    /// API token, sent as `Authorization: Bearer <token>`; prefer
    /// --token-file or the environment.
    #[arg(
        long,
        env = "TELEGEN_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = parse_token,
        global = true,
        help_heading = "Global options"
    )]
    pub token: Option<String>,

    /// Print the gateway's JSON answer (pretty) instead of tables.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// Give up on the gateway after this many seconds.
    #[arg(
        long,
        default_value = "10",
        value_name = "SECS",
        value_parser = parse_timeout,
        global = true,
        help_heading = "Global options"
    )]
    pub timeout: Duration,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a job on a port (POST /jobs/start).
    Start(StartArgs),
    /// Show a job (GET /jobs/{JOB}).
    Status(JobArg),
    /// Show a job's counters and top flows (GET /jobs/{JOB}/results[?top=N]).
    Results(ResultsArgs),
    /// Stop a job; stopping a finished job is not an error (POST /jobs/{JOB}/stop).
    Stop(JobArg),
    /// List jobs (GET /jobs).
    List,
    /// Write a capture job's packets as pcapng, live until the job ends
    /// (GET /jobs/{JOB}/capture): `-w -` writes to stdout, so that
    /// `telegenctl capture JOB -w - | tcpdump -r -` shows them as they come.
    Capture(CaptureArgs),
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Job id of a job started with --result-detail pcaplike.
    #[arg(value_name = "JOB", value_parser = parse_job_id)]
    pub job: String,

    /// Where to write the pcapng: a file, or - for stdout.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: String,

    /// Only packets captured from now on (default: from the job's start).
    #[arg(long)]
    pub from_now: bool,
}

#[derive(Debug, Args)]
pub struct JobArg {
    /// Job id (as printed by `start` or `list`).
    #[arg(value_name = "JOB", value_parser = parse_job_id)]
    pub job: String,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Job id (as printed by `start` or `list`).
    #[arg(value_name = "JOB", value_parser = parse_job_id)]
    pub job: String,

    /// How many top flows to show, by bytes.
    #[arg(
        long,
        value_name = "N",
        help = format!("How many top flows to show, by bytes (0-{MAX_TOP}; 0 or none = {DEFAULT_TOP})"),
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_TOP))
    )]
    pub top: Option<u32>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Port (interface) name, e.g. Ethernet0.
    #[arg(long)]
    pub port: String,

    /// Which packets to count.
    #[arg(long, value_parser = PossibleValuesParser::new(DIRECTIONS))]
    pub direction: String,

    /// Stop the job after this many seconds.
    #[arg(
        long,
        value_name = "SECS",
        help = format!(
            "Stop the job after this many seconds (0 = until stopped, at most \
             {MAX_DURATION_SEC}; default {DEFAULT_DURATION_SEC})"
        )
    )]
    pub duration: Option<u32>,

    /// How the packets reach the probe (default: the probe's TELEGEN_MIRROR_MODE).
    #[arg(long, value_parser = PossibleValuesParser::new(MIRROR_MODES))]
    pub mirror_mode: Option<String>,

    /// Flow-tracking sample rate.
    #[arg(
        long,
        value_name = "N",
        help = format!(
            "Flow-tracking sample rate, 1 (every packet, the default) to {MAX_SAMPLE_RATE}; \
             counters stay exact"
        )
    )]
    pub sample_rate: Option<u32>,

    /// Filter, repeatable; comma-separated lists accumulate. Keys: ip_proto
    /// (tcp, udp, 6...), l4_sport, l4_dport, dscp, src_cidr, dst_cidr, vlan (one id).
    #[arg(long = "filter", value_name = "KEY=VALUE", value_parser = crate::filters::parse_filter)]
    pub filters: Vec<FilterArg>,

    /// Result detail.
    #[arg(long, value_parser = PossibleValuesParser::new(RESULT_DETAILS))]
    pub result_detail: Option<String>,

    /// Do not export this job's own series over OTLP.
    #[arg(long)]
    pub no_otlp_export: bool,

    /// Capture (--result-detail pcaplike): bytes kept of each packet
    /// (default 128, at most 9216).
    #[arg(long, value_name = "BYTES")]
    pub snaplen: Option<u32>,

    /// Capture: the most packets kept (default 10000).
    #[arg(long, value_name = "N")]
    pub max_packets: Option<u64>,

    /// Capture: the most pcapng bytes of packet blocks (default 16 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,

    /// Capture: packets per second at most (default 1000).
    #[arg(long, value_name = "N")]
    pub max_pps: Option<u32>,

    /// Capture: inside ERSPAN/GRE keep the inner frame (default) or the outer.
    #[arg(long, value_parser = PossibleValuesParser::new(["inner", "outer"]))]
    pub frame: Option<String>,
}

impl StartArgs {
    /// The capture options given, if any.
    pub fn capture(&self) -> Option<telegen_common::rest::CaptureOptions> {
        let c = telegen_common::rest::CaptureOptions {
            snaplen: self.snaplen,
            max_packets: self.max_packets,
            max_bytes: self.max_bytes,
            max_pps: self.max_pps,
            frame: self.frame.clone(),
        };
        (c != Default::default()).then_some(c)
    }
}

impl Command {
    /// The subcommand's name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Start(_) => "start",
            Command::Status(_) => "status",
            Command::Results(_) => "results",
            Command::Stop(_) => "stop",
            Command::List => "list",
            Command::Capture(_) => "capture",
        }
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "{s}: expected more than 0 and at most 86400 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Cli {
    /// The token: from --token-file (or TELEGENCTL_TOKEN_FILE), else
    /// --token (or TELEGEN_API_TOKEN).
    pub fn resolve_token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.token_file else {
            return Ok(self.token.clone());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| format!("--token-file {}: no token in it", path.display()))?;
        parse_token(first)
            .map(Some)
            .map_err(|e| format!("--token-file {}: {e}", path.display()))
    }
}

fn parse_token(s: &str) -> Result<String, String> {
    if s.chars().any(|c| c.is_control() || c == ' ') || !s.is_ascii() {
        return Err("the token must be printable ASCII without spaces".into());
    }
    Ok(s.to_string())
}

fn parse_job_id(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a job id cannot be empty".into());
    }
    Ok(s.to_string())
}
