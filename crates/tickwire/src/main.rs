//! The `tickwire` command line.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tickwire::supervisor::Signals;
use tickwire::CancellationToken;
use tickwire_core::config::Overrides;
use tickwire_core::Config;
use tickwire_ingest::{Pace, ReplayOptions};
use tickwire_parse::Format;
use tickwire_sandbox::synth::{write_universe, SynthSpec, Universe};

// The writer allocates many small, short-lived buffers per command (fred's
// frames); mimalloc handles that pattern far better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_t` of the
/// bundled mimalloc.h, 15 in both its v2 and v3; libmimalloc-sys exports no
/// constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed stays with the process this long (ms) before mimalloc gives
/// it back to the OS. Its default, 10 ms, returned and faulted in again the
/// pages of every writer batch: the kernel clearing pages was about 5% of a
/// replay's CPU; at 1 s a `--max` replay spends 15-25% less CPU per tick,
/// and a quiet process still returns what it no longer uses.
const PURGE_DELAY_MS: std::ffi::c_long = 1_000;

/// Sets mimalloc's purge delay unless the operator set it
/// (`MIMALLOC_PURGE_DELAY`, which mimalloc reads itself).
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an option value (atomically);
        // MI_OPTION_PURGE_DELAY is a valid option of the linked mimalloc.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

#[derive(Parser)]
#[command(
    name = "tickwire",
    version,
    about = "Market data into Redis: ticks, bars, indicators, volume"
)]
struct Cli {
    /// Config file (TOML); built-in defaults (= config/tickwire.toml) when absent.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Redis URL, overriding the config file.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "TICKWIRE_REDIS_URL",
        hide_env_values = true
    )]
    redis: Option<String>,
    /// Put before every key written (a backtest beside live data).
    #[arg(long, global = true, value_name = "PREFIX")]
    prefix: Option<String>,
    /// Key layout: default, dhanscalper, tradingboost, or a profile file;
    /// repeat to write several layouts at once (default when none is given).
    #[arg(long = "profile", global = true, value_name = "NAME")]
    profiles: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to every [[feeds]] of the config and write what they send into Redis.
    Run(RunArgs),
    /// Capture every [[feeds]] of the config to zstd JSON-lines files for replay.
    Record(RecordArgs),
    /// Replay recorded tick files into Redis through the live pipeline.
    Replay(ReplayArgs),
    /// Write deterministic NSE-like ticks (tickwire tick JSON lines).
    Synth(SynthArgs),
    /// Start a private redis-server, replay the bundled sample into it, show what landed.
    Demo,
    /// Average each time-of-day volume bucket over the last sessions into volume:baseline:*.
    Baseline(BaselineArgs),
    /// Check Redis as tickwire uses it; exit 0 healthy, 1 degraded, 2 unreachable.
    Health(HealthArgs),
}

#[derive(Args)]
struct BaselineArgs {
    /// Sessions averaged per instrument (the last ones that have volume).
    #[arg(long, default_value_t = 20)]
    lookback: usize,
    /// Only sessions on or before this trading date (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: Option<jiff::civil::Date>,
}

#[derive(Args)]
struct HealthArgs {
    /// Print the report as JSON (for machines).
    #[arg(long)]
    json: bool,
    /// Keys sampled per DB for the TTL audit (SCAN, never KEYS).
    #[arg(long, default_value_t = 1_000)]
    ttl_sample: usize,
    /// A consumer group further behind than this many entries is degraded.
    #[arg(long, default_value_t = 10_000)]
    max_lag: u64,
}

#[derive(Args)]
struct RunArgs {
    /// Also record every raw frame to files in DIR (as `tickwire record`).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
}

#[derive(Args)]
struct RecordArgs {
    /// Directory the recordings go to (created if missing).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Args)]
struct ReplayArgs {
    /// Files to replay, in order: plain, .zst, .gz or a one-file .zip (packing checked by magic bytes).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Replay at the recorded pace times X.
    #[arg(long, value_name = "X", conflicts_with = "max")]
    speed: Option<f64>,
    /// Replay as fast as possible (the default).
    #[arg(long)]
    max: bool,
    /// Force the file format: ticks, frames, binance-csv, tardis-csv.
    #[arg(long, value_name = "FORMAT")]
    format: Option<Format>,
    /// Symbol of Binance trade dumps whose file name does not say it.
    #[arg(long)]
    symbol: Option<String>,
    /// Close the bars still forming when the input ends (a backtest meant to
    /// stand alone); without it they stay forming for the next run to finish.
    #[arg(long)]
    close_at_end: bool,
}

#[derive(Args)]
struct SynthArgs {
    #[arg(long, default_value_t = 10)]
    instruments: usize,
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Ticks per instrument per session (with `--universe zipf`, on
    /// average: the session's `instruments x ticks-per-session` ticks go to
    /// the instruments by Zipf's law).
    #[arg(long, default_value_t = 1_000)]
    ticks_per_session: usize,
    /// `uniform` (every instrument alike) or `zipf` (a few busy names and a
    /// long quiet tail, as a real market).
    #[arg(long, default_value = "uniform")]
    universe: String,
    /// Zipf's exponent: the instrument of rank r gets a share in
    /// proportion to 1/r^s.
    #[arg(long, default_value_t = 1.1)]
    zipf_s: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First trading date (weekends are skipped).
    #[arg(long, default_value = "2024-01-01")]
    start: jiff::civil::Date,
    /// Output file (`.zst` compresses); standard output when absent.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

fn load_config(cli: &Cli) -> Result<Config> {
    let overrides = Overrides {
        redis_url: cli.redis.clone(),
        prefix: cli.prefix.clone(),
        profiles: cli.profiles.clone(),
    };
    Ok(match &cli.config {
        Some(path) => Config::load(path, &overrides, tickwire_parse::VENUES)?,
        None => Config::defaults(&overrides)?,
    })
}

fn synth(args: &SynthArgs) -> Result<()> {
    let spec = SynthSpec {
        instruments: args.instruments,
        sessions: args.sessions,
        ticks_per_session: args.ticks_per_session,
        seed: args.seed,
        start: args.start,
    };
    if spec.instruments == 0 || spec.sessions == 0 {
        bail!("--instruments and --sessions must be at least 1");
    }
    let universe = match args.universe.as_str() {
        "uniform" => Universe::Uniform,
        "zipf" if args.zipf_s.is_finite() && args.zipf_s > 0.0 => Universe::Zipf { s: args.zipf_s },
        "zipf" => bail!("--zipf-s must be a number above 0 (got {})", args.zipf_s),
        other => bail!("--universe must be uniform or zipf (got {other:?})"),
    };
    let n = match &args.out {
        None => write_universe(&spec, universe, &mut BufWriter::new(io::stdout().lock()))?,
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            if path.extension().is_some_and(|e| e == "zst") {
                let mut enc = zstd::Encoder::new(file, 19)?;
                let n = write_universe(&spec, universe, &mut enc)?;
                enc.finish()?.flush()?;
                n
            } else {
                let mut w = BufWriter::new(file);
                let n = write_universe(&spec, universe, &mut w)?;
                w.flush()?;
                n
            }
        }
    };
    eprintln!("tickwire synth: wrote {n} ticks");
    Ok(())
}

/// A run whose reads did not all land in Redis fails, after its summary,
/// with what is missing: exit 0 only when everything read was written or
/// deliberately skipped (duplicates, rejections dead-lettered, skips).
fn everything_written(summary: &tickwire::RunSummary) -> Result<()> {
    let missing = summary.missing();
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "not everything read is in Redis (the log has Redis' errors): {}",
        missing.join("; ")
    )
}

/// A recorder that failed or dropped frames makes the run fail, after its
/// summary: the recording is incomplete even though Redis got everything.
fn recording_ok(record: Option<&tickwire_ingest::record::RecordSummary>) -> Result<()> {
    let Some(r) = record else { return Ok(()) };
    let not_recorded = r.dropped + r.lost;
    match &r.error {
        Some(e) => bail!(
            "the recorder stopped: {e}; {} frames not recorded",
            tickwire::summary::thousands(not_recorded)
        ),
        None if not_recorded > 0 => bail!(
            "the recording is incomplete: {} frames not recorded (the recorder was behind: \
             its queue was full)",
            tickwire::summary::thousands(not_recorded)
        ),
        None => Ok(()),
    }
}

/// A run a failed stage stopped: its summary (what was done, what was not
/// written), then the error naming the stage and the cause.
fn stopped(e: tickwire::AppError) -> anyhow::Error {
    if let Some(summary) = e.summary() {
        print!("{}", summary.render());
        let _ = io::stdout().flush();
    }
    match e {
        tickwire::AppError::Stopped { cause, .. } => anyhow::Error::new(*cause),
        e => anyhow::Error::new(e),
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(command(&cli));
    // What an abandoned drain left running (a writer retrying, threads
    // blocked on it) is not waited for.
    runtime.shutdown_background();
    code
}

/// Runs the command; its exit code (an error is printed as `Error: ...`,
/// exit 1).
async fn command(cli: &Cli) -> ExitCode {
    tickwire::ops::process_start_ms();
    // Logging as the config says; a config that does not load is reported
    // by the command itself, with the default log settings meanwhile.
    let log = load_config(cli).map(|c| c.log).unwrap_or_default();
    tickwire::ops::init_logging(&log);
    let done = match &cli.command {
        Command::Synth(args) => synth(args).map(|()| ExitCode::SUCCESS),
        Command::Demo => {
            let mut out = io::stdout();
            match tickwire::demo::run(&mut out).await {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => Err(e.into()),
            }
        }
        Command::Health(args) => health(cli, args).await,
        // Ctrl-C or SIGTERM: stop reading, drain, flush, exit 0. A second
        // one abandons the drain (a Redis that takes nothing would hold it
        // for its retries): exit 1 at once, saying that what was not
        // written is lost.
        _ => {
            let signals = Signals::listen();
            match signals
                .unless_abandoned(stoppable(cli, signals.stop()))
                .await
            {
                Some(done) => done.map(|()| ExitCode::SUCCESS),
                None => Ok(ExitCode::FAILURE),
            }
        }
    };
    match done {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// `tickwire health`: exit 0 healthy, 1 degraded, 2 unreachable.
async fn health(cli: &Cli, args: &HealthArgs) -> Result<ExitCode> {
    let config = load_config(cli)?;
    let opts = tickwire_writer::health::HealthOptions {
        ttl_sample: args.ttl_sample.max(1),
        max_lag: args.max_lag,
        ..Default::default()
    };
    let mut report = tickwire_writer::health::check(&config, &opts).await;
    // Frames waiting in a spool are not in Redis yet (a process is
    // behind, or one died and left them for the next).
    for (feed, bytes, segments) in tickwire_ingest::spool::pending(&config.spool) {
        report.problems.push(format!(
            "spool of feed {feed} holds {bytes} bytes of frames not yet in Redis \
             ({segments} segment(s) in {})",
            config.spool.dir.display()
        ));
        if report.status == tickwire_writer::health::Status::Healthy {
            report.status = tickwire_writer::health::Status::Degraded;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", tickwire::summary::render_health(&report));
    }
    Ok(ExitCode::from(
        u8::try_from(report.status.exit_code()).unwrap_or(1),
    ))
}

/// The commands a signal stops: they end on `stop`.
async fn stoppable(cli: &Cli, stop: CancellationToken) -> Result<()> {
    match &cli.command {
        Command::Baseline(args) => baseline(cli, args, stop).await,
        Command::Run(args) => {
            let config = load_config(cli)?;
            if tickwire::ops::start_metrics(&config.metrics) {
                tickwire::ops::export_at_zero(&config, tickwire::ops::RunKind::Live);
            }
            let summary = tickwire::run::run(&config, args.record.clone(), stop)
                .await
                .map_err(stopped)?;
            print!("{}", summary.render());
            recording_ok(summary.record.as_ref())?;
            everything_written(&summary)
        }
        Command::Record(args) => {
            let config = load_config(cli)?;
            let (read, recorded) = tickwire::run::record(&config, args.out.clone(), stop).await?;
            let status = if recorded.error.is_some() {
                "STOPPED: the recorder failed"
            } else {
                "finished"
            };
            print!(
                "record {status}\n{}{}",
                tickwire::summary::render_feeds(&read.feeds),
                tickwire::summary::render_record(&recorded)
            );
            recording_ok(Some(&recorded))
        }
        Command::Replay(args) => replay(cli, args, stop).await,
        Command::Synth(_) | Command::Demo | Command::Health(_) => Ok(()),
    }
}

async fn baseline(cli: &Cli, args: &BaselineArgs, stop: CancellationToken) -> Result<()> {
    let config = load_config(cli)?;
    if args.lookback == 0 {
        bail!("--lookback must be at least 1");
    }
    let started = std::time::Instant::now();
    let db = config.databases.get(tickwire_core::Db::CumulativeVolume);
    let pools = tickwire::pipeline::connect_waiting(&config.redis, [db], &stop).await?;
    let opts = tickwire_writer::baseline::BaselineOptions {
        lookback: args.lookback,
        date: args.date.map(|d| d.to_string()),
    };
    let s = tickwire_writer::baseline::compute(&config, &pools, &opts).await?;
    pools.quit().await;
    println!(
        "baseline: {} symbols, {} sessions read, {} buckets written in {:.2} s",
        s.symbols,
        s.sessions,
        s.baselines,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn replay(cli: &Cli, args: &ReplayArgs, stop: CancellationToken) -> Result<()> {
    let config = load_config(cli)?;
    if tickwire::ops::start_metrics(&config.metrics) {
        tickwire::ops::export_at_zero(&config, tickwire::ops::RunKind::Replay);
    }
    let pace = match args.speed {
        Some(x) => Pace::Speed(x),
        None => Pace::Max,
    };
    let opts = ReplayOptions {
        feeds: config.feeds.clone(),
        files: args.files.clone(),
        format: args.format,
        symbol: args.symbol.clone(),
        pace,
        max_raw: config.streams.deadletter_raw_bytes,
        chunk_events: 1024,
        max_clock_skew_ms: config.ingest.max_clock_skew_ms,
        close_at_end: args.close_at_end,
    };
    let mode = tickwire::progress::ProgressMode::for_stderr(config.log.progress_interval_ms);
    let summary = tickwire::replay::replay_shown(&config, opts, stop, mode)
        .await
        .map_err(stopped)?;
    print!("{}", summary.render());
    everything_written(&summary)
}
