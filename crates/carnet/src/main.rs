//! `carnet`: the server and its command line. This file parses the command line,
//! loads the configuration, sets up logging and dispatches to one module per
//! subcommand; it is the only place that chooses concrete backends.

mod admin;
mod audit;
mod backup;
mod checkpoint_file;
mod config;
mod config_command;
mod device;
mod exit;
mod import;
mod instance;
mod keys;
mod member;
mod metrics_export;
mod migrate;
mod output;
mod practice;
mod serve;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides};
use crate::exit::CliError;

/// Carnet keeps the care records of health practices safe.
#[derive(Debug, Parser)]
#[command(name = "carnet", version, about)]
struct Cli {
    /// Configuration file (TOML). Also CARNET_CONFIG.
    #[arg(long, global = true, env = "CARNET_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, keys, certificates). Also CARNET_DATA_DIR.
    /// Default: ./carnet-data
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server (creates the instance on first start).
    Serve {
        /// Address and port, e.g. 127.0.0.1:8080. Also CARNET_LISTEN.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Applies pending database migrations (copying a SQLite database first).
    Migrate,
    /// Configuration: check it, or print the documented example.
    #[command(subcommand)]
    Config(config_command::ConfigCommand),
    /// Practices of the local instance.
    #[command(subcommand)]
    Practice(practice::PracticeCommand),
    /// Members of the local instance's practices (first holders, activation codes).
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Platform administrators (the first one's setup link).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// The audit trail: verify it, sign checkpoints.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Keys: rotate a practice's key or the instance key; write the recovery kit.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Imports a practice's patients from another software (CSV or FHIR R4 Bundle; all
    /// or nothing).
    Import(import::ImportCommand),
    /// Encrypted backups: run one now, list, check, prune, drill.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Restores a data directory (or one document) from a backup.
    Restore(backup::RestoreArgs),
    /// This machine as a registered device of a Carnet server (certificate for scripts
    /// and API clients).
    #[command(subcommand)]
    Device(device::DeviceCommand),
}

fn main() -> ExitCode {
    install_quiet_panic_hook();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut stderr = std::io::stderr().lock();
            let _ = std::io::Write::write_fmt(
                &mut stderr,
                format_args!("carnet : {}\n", error.message),
            );
            ExitCode::from(error.code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), CliError> {
    if let Command::Config(config_command::ConfigCommand::Example) = &cli.command {
        output::say(config::example_file().trim_end());
        return Ok(());
    }
    // A client command: no instance, no server configuration.
    if let Command::Device(command) = &cli.command {
        return device::run(command);
    }
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        config_file: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        listen,
    };
    let environment: Vec<(String, String)> = std::env::vars().collect();
    let config = Config::load(&overrides, &environment)?;
    init_logging(&config);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::failure(format!("démarrage impossible ({error})")))?;
    runtime.block_on(async {
        match &cli.command {
            Command::Serve { .. } => serve::run(&config).await,
            Command::Migrate => migrate::run(&config).await,
            Command::Config(command) => config_command::run(&config, command),
            Command::Practice(command) => practice::run(&config, command).await,
            Command::Audit(command) => audit::run(&config, command).await,
            Command::Member(command) => member::run(&config, command).await,
            Command::Admin(command) => admin::run(&config, command).await,
            Command::Import(command) => import::run(&config, command).await,
            Command::Keys(command) => keys::run(&config, command).await,
            Command::Backup(command) => backup::run(&config, command).await,
            Command::Restore(args) => backup::restore(&config, args).await,
            Command::Device(_) => Ok(()),
        }
    })
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The default panic hook prints the panic message, which could quote data a handler was
/// working on; ours logs where the panic happened and nothing else.
fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|location| format!("{}:{}", location.file(), location.line()))
            .unwrap_or_default();
        tracing::error!(%location, "panic (message withheld from the logs)");
    }));
}
