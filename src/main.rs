//! The `latency-sentinel` command: the daemon (`run`), `check-config`, and the tools that
//! read or feed the store. `anyhow` stops here.

use clap::{Parser, Subcommand};
use latency_sentinel::config::Purpose;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "latency-sentinel",
    version,
    about = "Watches AWS Lambda latency from CloudWatch Logs and X-Ray, and alerts when an operation's p95 goes over its budget.",
    after_help = "Examples:\n  latency-sentinel check-config --config config/example.toml\n  latency-sentinel run --config /etc/latency-sentinel/config.toml\n  aws logs filter-log-events --log-group-name /aws/lambda/GDSH > gdsh.json\n  latency-sentinel ingest --config config/example.toml --log-group /aws/lambda/GDSH gdsh.json\n  RUST_LOG=latency_sentinel=debug latency-sentinel run --config config/demo.toml"
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
    /// Apply the store's migrations and exit: to the SQLite file, or with `storage.url` to
    /// the shared PostgreSQL (under a lock: daemons starting meanwhile wait). The daemon also
    /// applies them at start.
    Migrate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file: exit 0, or print every error with its key and exit 2.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write a first config from what the account holds: the Lambda functions, their aliases
    /// and log groups, whether X-Ray traces them, and a budget per operation seen in a bounded
    /// sample of the last 24 h (its p95 × 1.5, rounded). Uses the caller's credentials.
    Init {
        /// Region to look at (else AWS_REGION / the profile's).
        #[arg(long)]
        region: Option<String>,
        /// AWS profile to use (else the default credential chain).
        #[arg(long)]
        profile: Option<String>,
        /// Where to write the config.
        #[arg(long, short, default_value = "config.toml")]
        output: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check a config against the account and this machine: the config, the credentials,
    /// each AWS API it needs (a harmless call each), the alert receivers, the database path
    /// and the listen address. One line per check with the fix for each failure; exit 0
    /// only when every check passed.
    Doctor {
        #[arg(long, short)]
        config: PathBuf,
        /// Also publish one test metric (PutMetricData) when CloudWatch publishing is on.
        #[arg(long)]
        write: bool,
        /// Also send a test notification to each configured alert receiver.
        #[arg(long)]
        notify: bool,
    },
    /// Reports from the store (the daemon may be running).
    Report {
        #[command(subcommand)]
        report: ReportCommand,
    },
    /// Write the seed's Atlas Engine application (functions, PROD/Dev aliases, logs, X-Ray
    /// traces) into an AWS endpoint: moto's server, or a real account only when told so.
    Simulate(latency_sentinel::simulate::Args),
    /// Learned baselines (`[anomaly]`).
    Baseline {
        #[command(subcommand)]
        baseline: BaselineCommand,
    },
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

#[derive(Subcommand)]
enum BaselineCommand {
    /// Acknowledge a change that is for good (a deploy that made an operation slower on
    /// purpose): from now on the operation is judged only against events after this moment,
    /// in every env, so it settles after `anomaly.window` × 4 of new history rather than
    /// after `anomaly.baseline`. A running daemon picks it up within 5 minutes.
    Reset {
        #[arg(long, short)]
        config: PathBuf,
        /// The function (its name, as in reports).
        #[arg(long)]
        function: String,
        /// The operation (Bedrock.InvokeModel, BedrockCallDuration, ...).
        #[arg(long)]
        operation: String,
    },
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Config file (its storage.path is read; `report top` also shows its budgets).
    #[arg(long, short, conflicts_with = "db")]
    config: Option<PathBuf>,
    /// Database file, instead of --config.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Time range: from this long ago until now or --to [default: 1h; compare: 7d].
    #[arg(long, conflicts_with = "from")]
    since: Option<String>,
    /// Start of the range: RFC 3339 (2026-11-22T10:00:00Z), epoch ms, or a duration ago (2d).
    #[arg(long)]
    from: Option<String>,
    /// End of the range (same forms; default: now).
    #[arg(long)]
    to: Option<String>,
    /// Only this environment.
    #[arg(long)]
    env: Option<String>,
    /// Only this function.
    #[arg(long)]
    function: Option<String>,
    /// Only this account (`[[accounts]] name`).
    #[arg(long)]
    account: Option<String>,
    /// Only this region.
    #[arg(long)]
    region: Option<String>,
    /// table, json or csv.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The slowest operations: count, p50/p95/p99/max per (env, function, operation), with
    /// the budget that judges each and its status when --config is given.
    Top(ReportArgs),
    /// Whole invocations per function (Lambda.Duration, total_function_duration): percentiles,
    /// cold-start share, timeouts, and the slowest single invocations.
    Functions {
        #[command(flatten)]
        args: ReportArgs,
        /// How many of the slowest invocations to list.
        #[arg(long, default_value_t = 10)]
        slowest: usize,
    },
    /// One operation's avg/min/max/p95/p99 by function and by env.
    Stats {
        #[command(flatten)]
        args: ReportArgs,
        /// The operation (BedrockCallDuration, Bedrock.InvokeModel, ...).
        #[arg(long)]
        operation: String,
    },
    /// Where the slowest traces' time went, drawn as a tree, with the bottleneck marked.
    Bottleneck {
        #[command(flatten)]
        args: ReportArgs,
        /// Only this workflow (the traces' root span: a state machine or a function).
        #[arg(long)]
        workflow: Option<String>,
        /// Traces at or above this percentile of total duration.
        #[arg(long, default_value_t = 95.0)]
        percentile: f64,
    },
    /// Every operation's recent window (`anomaly.window` before --to, default now) judged
    /// against its learned baseline as the daemon judges it, regressions first. The rule
    /// is the config's `[anomaly]` (its defaults without --config).
    Anomalies(ReportArgs),
    /// Candidate against baseline per (function, operation): two envs over one range, or two
    /// ranges (--baseline-range 14d..7d --candidate-range 7d..), regressions first.
    Compare {
        #[command(flatten)]
        args: ReportArgs,
        /// Baseline env (PROD).
        #[arg(long)]
        baseline: Option<String>,
        /// Candidate env (Dev).
        #[arg(long)]
        candidate: Option<String>,
        /// Baseline range FROM..TO (each end as in --from; TO may be empty for now).
        #[arg(long, requires = "candidate_range")]
        baseline_range: Option<String>,
        /// Candidate range FROM..TO.
        #[arg(long, requires = "baseline_range")]
        candidate_range: Option<String>,
        /// Every (function, operation) as its own row, rather than one row per cause.
        #[arg(long)]
        no_group: bool,
    },
}

async fn report(cmd: ReportCommand) -> anyhow::Result<String> {
    use latency_sentinel::report::{self, Format, compare, parse_range};
    let args = match &cmd {
        ReportCommand::Top(a)
        | ReportCommand::Anomalies(a)
        | ReportCommand::Functions { args: a, .. }
        | ReportCommand::Stats { args: a, .. }
        | ReportCommand::Bottleneck { args: a, .. }
        | ReportCommand::Compare { args: a, .. } => a,
    };
    let format: Format = args.format.parse()?;
    let config = match &args.config {
        Some(c) => Some(load_config(c, Purpose::Offline).map_err(|_| anyhow::anyhow!("invalid config"))?),
        None => None,
    };
    let db = match (&args.db, &config) {
        (Some(db), _) => db.clone(),
        (None, Some(c)) => PathBuf::from(&c.storage.path),
        (None, None) => anyhow::bail!("give --config or --db"),
    };
    let now = latency_sentinel::clock::now_ms();
    let default_since = if matches!(cmd, ReportCommand::Compare { .. }) { "7d" } else { "1h" };
    let since = args.since.as_deref().or((args.from.is_none()).then_some(default_since));
    let range = parse_range(since, args.from.as_deref(), args.to.as_deref(), now)?;
    // A config naming the shared PostgreSQL reads the fleet's history; else the SQLite file.
    let store = match config.as_ref().filter(|c| args.db.is_none() && !c.storage.url.is_empty()) {
        Some(c) => latency_sentinel::store::Store::connect(&c.storage, latency_sentinel::store::OpenMode::Reader).await?,
        None => latency_sentinel::store::Store::open(&db, latency_sentinel::store::OpenMode::Reader, 4096).await?,
    };
    let sel = report::data::Selection {
        from_ms: range.from_ms,
        to_ms: range.to_ms,
        env: args.env.clone(),
        function: args.function.clone(),
        account: args.account.clone(),
        region: args.region.clone(),
        ..Default::default()
    };
    fn approx_note(approximate: bool) -> &'static str {
        if approximate { "(percentiles partly from hourly rollups: within 1 %)\n" } else { "" }
    }
    fn render<T: serde::Serialize>(format: Format, value: &T, table: impl FnOnce(&T) -> String, csv: impl FnOnce(&T) -> String) -> anyhow::Result<String> {
        Ok(match format {
            Format::Json => serde_json::to_string_pretty(value)? + "\n",
            Format::Table => table(value),
            Format::Csv => csv(value),
        })
    }
    let filter = report::top::Filter {
        from_ms: range.from_ms,
        to_ms: range.to_ms,
        env: sel.env.clone(),
        function: sel.function.clone(),
        account: sel.account.clone(),
        region: sel.region.clone(),
    };
    match &cmd {
        ReportCommand::Top(_) => {
            let budgets = config.as_ref().map_or(&[][..], |c| &c.budgets[..]);
            let mut r = report::top::report(&store, &filter, budgets).await?;
            let operations = config.as_ref().map_or(&[][..], |c| &c.operations[..]);
            r.links = latency_sentinel::evaluate::links::read(&store, operations, range.from_ms, range.to_ms).await?.all().to_vec();
            render(
                format,
                &r,
                |r| report::top::table(&r.operations) + approx_note(r.approximate) + &report::top::links_text(&r.links),
                |r| report::top::csv(&r.operations),
            )
        }
        ReportCommand::Anomalies(_) => {
            let a = config.as_ref().map(|c| c.anomaly.clone()).unwrap_or_default();
            let rule = latency_sentinel::evaluate::anomaly::Rule::from_config(&a);
            let r = report::anomalies::report(&store, &rule, &filter, range.to_ms).await?;
            render(format, &r, report::anomalies::table, report::anomalies::csv)
        }
        ReportCommand::Functions { slowest, .. } => {
            let r = report::functions::report(&store, &sel, (*slowest).min(1_000)).await?;
            render(format, &r, |r| report::functions::table(r) + approx_note(r.approximate), report::functions::csv)
        }
        ReportCommand::Stats { operation, .. } => {
            let r = report::opstats::report(&store, &sel, operation).await?;
            render(format, &r, |r| report::opstats::table(r) + approx_note(r.approximate), report::opstats::csv)
        }
        ReportCommand::Bottleneck { workflow, percentile, .. } => {
            if !(*percentile > 0.0 && *percentile <= 100.0) {
                anyhow::bail!("--percentile: expected a number in (0, 100], got {percentile}");
            }
            let q = report::bottleneck::BottleneckQuery {
                from_ms: range.from_ms,
                to_ms: range.to_ms,
                workflow: workflow.clone(),
                env: sel.env.clone(),
                account: sel.account.clone(),
                region: sel.region.clone(),
                percentile: *percentile,
            };
            let r = report::bottleneck::report(&store, &q).await?;
            render(format, &r, report::bottleneck::text, report::bottleneck::csv)
        }
        ReportCommand::Compare { baseline, candidate, baseline_range, candidate_range, no_group, .. } => {
            let mut q = compare::build_query(
                baseline.as_deref(),
                candidate.as_deref(),
                args.env.as_deref(),
                baseline_range.as_deref(),
                candidate_range.as_deref(),
                range,
                args.function.as_deref(),
                now,
            )?;
            (q.account, q.region) = (args.account.clone(), args.region.clone());
            q.group = !no_group;
            q.operations = config.as_ref().map(|c| c.operations.clone()).unwrap_or_default();
            let r = compare::report(&store, &q).await?;
            render(format, &r, compare::table, compare::csv)
        }
    }
}

/// Applies the migrations of the configured store; says what it did (never the URL).
async fn migrate(cfg: &latency_sentinel::config::Config) -> anyhow::Result<String> {
    use latency_sentinel::store::postgres::{PgStore, PgTarget};
    let s = &cfg.storage;
    if s.url.is_empty() {
        let store = latency_sentinel::store::Store::open(std::path::Path::new(&s.path), latency_sentinel::store::OpenMode::Writer, s.rejected_max_bytes).await?;
        store.close().await;
        return Ok(format!("{}: migrations applied", s.path));
    }
    let target = PgTarget {
        url: s.url.expose(),
        password: s.password.expose(),
        pool_size: 2,
        rejected_max_bytes: s.rejected_max_bytes,
        connect_timeout: std::time::Duration::from_secs(10),
    };
    let applied = PgStore::connect(target)?.migrate().await?;
    Ok(if applied.is_empty() { "PostgreSQL: up to date".to_string() } else { format!("PostgreSQL: applied {applied:?}") })
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

fn load_config(path: &std::path::Path, purpose: latency_sentinel::config::Purpose) -> Result<latency_sentinel::config::Config, ExitCode> {
    latency_sentinel::config::load_file_for(path, purpose).map_err(|errors| {
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
        Command::Migrate { config } => {
            let cfg = match load_config(&config, Purpose::Offline) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = match runtime(false) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(migrate(&cfg)) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("migrate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { config } => match load_config(&config, Purpose::Daemon) {
            Ok(_) => {
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Init { region, profile, output, force } => {
            let rt = match runtime(false) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let options = latency_sentinel::init::Options { region, profile, output: output.clone(), force };
            match rt.block_on(latency_sentinel::init::run(&options)) {
                Ok(f) => {
                    let budgets = f.operations.iter().filter(|o| o.budget.is_some()).count();
                    println!(
                        "wrote {}: {} function(s), {} with a log group; {} log events and {} traces sampled; {budgets} budget(s) proposed",
                        output.display(),
                        f.functions.len(),
                        f.functions.iter().filter(|x| x.log_group.is_some()).count(),
                        f.events_read,
                        f.traces_read
                    );
                    println!("next: review it, then `latency-sentinel doctor --config {}`", output.display());
                    ExitCode::SUCCESS
                }
                Err(e @ latency_sentinel::init::InitError::Exists(_)) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("init failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Doctor { config, write, notify } => {
            let rt = match runtime(false) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let checks = rt.block_on(latency_sentinel::doctor::run(&config, latency_sentinel::doctor::Options { write, notify }));
            for c in &checks {
                println!("{}", c.line());
            }
            let failed = checks.iter().filter(|c| !c.ok).count();
            if failed == 0 {
                println!("all {} checks passed", checks.len());
                ExitCode::SUCCESS
            } else {
                println!("{failed} of {} checks failed", checks.len());
                ExitCode::FAILURE
            }
        }
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
        Command::Baseline { baseline: BaselineCommand::Reset { config, function, operation } } => {
            let config = match load_config(&config, Purpose::Offline) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if function.is_empty() || operation.is_empty() || function.len() > 256 || operation.len() > 256 {
                eprintln!("error: --function and --operation: 1 to 256 characters each");
                return ExitCode::from(2);
            }
            let rt = match runtime(false) {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let now = latency_sentinel::clock::now_ms();
            let result = rt.block_on(async {
                let store = latency_sentinel::store::Store::connect(&config.storage, latency_sentinel::store::OpenMode::Writer).await?;
                store.reset_baseline(&function, &operation, now).await?;
                store.close().await;
                anyhow::Ok(())
            });
            match result {
                Ok(()) => {
                    println!("{function} {operation}: judged against events after {} from now on", humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(now as u64)));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ingest { config, log_group, paths } => {
            let config = match load_config(&config, Purpose::Offline) {
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
            let config = match load_config(&config, Purpose::Daemon) {
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
