//! The `vigil` command: `vigil run` (default) and `vigil check`.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use vigil::config::{config_path, Config, Overrides, Protocol, StdoutFormat};

#[derive(Debug, Parser)]
#[command(name = "vigil", version, about = "eBPF security events as OpenTelemetry logs over OTLP")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture events and export them (the default).
    Run(RunArgs),
    /// Print what the kernel supports and which hook each event uses; exit
    /// non-zero if vigil cannot run here.
    Check(RunArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Grpc,
    #[value(name = "http/protobuf", alias = "http")]
    HttpProtobuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    OtlpJson,
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Configuration file (TOML); also VIGIL_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// OTLP endpoint, e.g. http://127.0.0.1:4317 (gRPC) or
    /// http://127.0.0.1:4318 (HTTP). Without one, records go to stdout.
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// OTLP protocol.
    #[arg(long, global = true)]
    protocol: Option<ProtocolArg>,
    /// Console format when no endpoint is configured.
    #[arg(long, global = true)]
    stdout_format: Option<FormatArg>,
    /// Largest argv area captured per exec, in bytes.
    #[arg(long, global = true)]
    args_max_bytes: Option<u32>,
    /// Ring buffer size in KiB (power of two).
    #[arg(long, global = true)]
    ringbuf_kib: Option<u32>,
    /// vigil's own log filter (stderr), e.g. info, debug, vigil=trace; also VIGIL_LOG.
    #[arg(long, global = true)]
    log_level: Option<String>,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            endpoint: self.endpoint.clone(),
            protocol: self.protocol.map(|p| match p {
                ProtocolArg::Grpc => Protocol::Grpc,
                ProtocolArg::HttpProtobuf => Protocol::HttpProtobuf,
            }),
            stdout_format: self.stdout_format.map(|f| match f {
                FormatArg::Text => StdoutFormat::Text,
                FormatArg::OtlpJson => StdoutFormat::OtlpJson,
            }),
            args_max_bytes: self.args_max_bytes,
            ringbuf_kib: self.ringbuf_kib,
        }
    }
}

/// mimalloc: ~25% more records per second through decode -> map -> encode
/// than glibc malloc in `benches/pipeline.rs` (docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for configuration errors (as for usage errors).
const EXIT_CONFIG: u8 = 2;

fn init_logging(level: Option<&str>) {
    let filter = level.map(str::to_owned).or_else(|| std::env::var("VIGIL_LOG").ok()).unwrap_or_else(|| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (check, args) = match cli.command {
        Some(Command::Run(a)) => (false, a),
        Some(Command::Check(a)) => (true, a),
        None => (false, cli.run),
    };
    init_logging(args.log_level.as_deref());
    let env: Vec<(String, String)> = std::env::vars().collect();
    let path = config_path(args.config.clone(), &env);
    let cfg = match Config::load(path.as_deref(), &env, &args.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigil: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if check {
        let settings = vigil::probes::ProbeSettings { probes: cfg.probes.clone(), self_tgid: std::process::id() };
        let (report, ok) = vigil::probes::hooks::render(&vigil::probes::hooks::check(&settings));
        print!("{report}");
        return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("vigil")
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        // Installed before anything else runs, so an early SIGTERM is a
        // clean shutdown, not the default (immediate) termination.
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let signal_token = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            signal_token.cancel();
        });
        let summary = vigil::pipeline::run(cfg, shutdown).await?;
        tracing::info!("stopped: {}", summary.stats);
        Ok(())
    })
}
