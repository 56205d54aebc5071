//! The `latency-sentinel` command: the daemon (`run`), `check-config`, and the tools that
//! read or feed the store. `anyhow` stops here.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "latency-sentinel",
    version,
    about = "Watches AWS Lambda latency from CloudWatch Logs and X-Ray, and alerts when an operation's p95 goes over its budget.",
    after_help = "Examples:\n  latency-sentinel check-config --config config/example.toml\n  latency-sentinel run --config /etc/latency-sentinel/config.toml\n  aws logs filter-log-events --log-group-name /aws/lambda/GDSH > gdsh.json\n  latency-sentinel ingest --config config/example.toml --log-group /aws/lambda/GDSH gdsh.json\n  RUST_LOG=latency_sentinel=debug latency-sentinel run --config config/example.toml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: `text` or `json`.
    #[arg(long, global = true, default_value = "text")]
    log_format: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon until SIGINT/SIGTERM.
    Run {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file: exit 0, or print every error with its key and exit 2.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Reports from the store (the daemon may be running).
    Report {
        #[command(subcommand)]
        report: ReportCommand,
    },
    /// Write the seed's Atlas Engine application (functions, PROD/Dev aliases, logs, X-Ray
    /// traces) into an AWS endpoint: moto's server, or a real account only when told so.
    Simulate(latency_sentinel::simulate::Args),
    /// Feed log files through the parser into the store: the JSON `aws logs filter-log-events`
    /// prints, or text files with one log event per line. Re-ingesting a file adds nothing.
    Ingest {
        #[arg(long, short)]
        config: PathBuf,
        /// Log group the events belong to (`/aws/lambda/<function>`); names the function.
        #[arg(long)]
        log_group: String,
        /// Files to read.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Config file (its storage.path is read).
    #[arg(long, short, conflicts_with = "db")]
    config: Option<PathBuf>,
    /// Database file, instead of --config.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Time range: from this long ago until now.
    #[arg(long, default_value = "1h")]
    since: String,
    /// Only this environment.
    #[arg(long)]
    env: Option<String>,
    /// Only this function.
    #[arg(long)]
    function: Option<String>,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The slowest operations: count, p50/p95/p99/max per (env, function, operation).
    Top(ReportArgs),
}

async fn report(cmd: ReportCommand) -> anyhow::Result<String> {
    use anyhow::Context;
    let ReportCommand::Top(args) = cmd;
    let db = match (&args.db, &args.config) {
        (Some(db), _) => db.clone(),
        (None, Some(c)) => PathBuf::from(load_config(c).map_err(|_| anyhow::anyhow!("invalid config"))?.storage.path),
        (None, None) => anyhow::bail!("give --config or --db"),
    };
    let since = humantime::parse_duration(&args.since).with_context(|| format!("--since: expected a duration like \"1h\", got {:?}", args.since))?;
    let store = latency_sentinel::store::Store::open(&db, latency_sentinel::store::OpenMode::Reader, 4096).await?;
    let now = latency_sentinel::store::now_ms();
    let filter = latency_sentinel::report::top::Filter {
        from_ms: now - since.as_millis() as i64,
        to_ms: now + 1,
        env: args.env,
        function: args.function,
    };
    let rows = latency_sentinel::report::top::top(&store, &filter).await?;
    Ok(match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&serde_json::json!({ "operations": rows }))? + "\n",
        "csv" => latency_sentinel::report::top::csv(&rows),
        "table" => latency_sentinel::report::top::table(&rows),
        other => anyhow::bail!("--format: expected table, json or csv, got {other:?}"),
    })
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load_config(path: &std::path::Path) -> Result<latency_sentinel::config::Config, ExitCode> {
    latency_sentinel::config::load_file(path).map_err(|errors| {
        eprintln!("{}: {} error(s):", path.display(), errors.len());
        for e in &errors {
            eprintln!("  {e}");
        }
        ExitCode::from(2)
    })
}

/// The daemon gets worker threads; one-shot commands run on the current thread.
fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    match cli.command {
        Command::CheckConfig { config } => match load_config(&config) {
            Ok(_) => {
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Report { report: cmd } => {
            let rt = match runtime(false) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(report(cmd)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Simulate(args) => latency_sentinel::simulate::main(args),
        Command::Ingest { config, log_group, paths } => {
            let config = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = match runtime(false) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let result = rt.block_on(async {
                let store = latency_sentinel::store::Store::open(
                    std::path::Path::new(&config.storage.path),
                    latency_sentinel::store::OpenMode::Writer,
                    config.storage.rejected_max_bytes,
                )
                .await?;
                let attributor = latency_sentinel::attribute::Attributor::new(&config.environments);
                let summary = latency_sentinel::ingest::ingest_files(&store, &attributor, &log_group, &paths).await?;
                store.close().await;
                anyhow::Ok(summary)
            });
            match result {
                Ok(s) => {
                    println!(
                        "lines={} stored={} duplicates={} rejected={} ignored={}",
                        s.lines, s.stored, s.duplicates, s.rejected, s.ignored
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config } => {
            let config = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = match runtime(true) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(latency_sentinel::app::run(config, latency_sentinel::app::shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "Daemon stopped with an error.");
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
