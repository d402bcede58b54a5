//! `telegenctl`: see the library documentation for commands and exit codes.

use std::process::ExitCode;

use clap::{error::ErrorKind, CommandFactory, Parser};
use telegen_cli::{
    args::{Cli, Command},
    capture,
    client::{read_pem_certs, HttpTransport},
    execute, plan,
};

fn main() -> ExitCode {
    // Usage errors exit 2 (clap), before any request.
    let cli = Cli::parse();
    let call = plan(&cli).unwrap_or_else(|msg| usage_error(&cli, msg));
    let token = cli
        .resolve_token()
        .unwrap_or_else(|msg| usage_error(&cli, msg));
    let roots = match &cli.cacert {
        Some(p) => read_pem_certs(p).unwrap_or_else(|msg| usage_error(&cli, msg)),
        None => Vec::new(),
    };
    let transport = HttpTransport::with_roots(cli.api.clone(), token, cli.timeout, roots);
    if let Command::Capture(c) = &cli.command {
        let code = capture(
            &call,
            &c.write,
            &transport,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        );
        return ExitCode::from(code.code());
    }
    let code = execute(
        &call,
        cli.json,
        &transport,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code.code())
}

/// Exit 2 with clap's usage report, for checks made after parsing.
fn usage_error(cli: &Cli, msg: String) -> ! {
    let mut cmd = Cli::command();
    cmd.build();
    let name = cli.command.name();
    match cmd.find_subcommand_mut(name) {
        Some(sub) => sub.error(ErrorKind::ValueValidation, msg).exit(),
        None => cmd.error(ErrorKind::ValueValidation, msg).exit(),
    }
}
