//! `zhongtai`, the one binary: thin over the libraries, it parses arguments,
//! runs a command and turns the error chain into a message and exit code.

mod admin_commands;
mod args;
mod audit_commands;
mod cli;
mod component_commands;
mod platform_commands;
mod registry_commands;
mod scaffold_commands;
mod witness_commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // A child started to compile a component does only that.
    zhongtai_runtime::compiler::serve_compile_request();
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,zhongtai=info,zhongtai_api=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
}
