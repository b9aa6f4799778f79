//! The `vigil` command: `vigil run` (default), `vigil check` and `vigil status`.

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
    /// Ask a running vigil how it is doing (its health endpoint): exit 0
    /// when ready, 1 when not ready, 2 when it cannot be reached.
    Status(StatusArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct StatusArgs {
    /// Base URL of vigil's health endpoint, e.g. http://127.0.0.1:9464.
    /// Default: from `health.listen` in the configuration.
    #[arg(long)]
    health_url: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Grpc,
    #[value(name = "http/protobuf", alias = "http")]
    HttpProtobuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
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
    /// vigil's own log format on stderr: text or json (one JSON object per
    /// line); also VIGIL_LOG_FORMAT.
    #[arg(long, global = true)]
    log_format: Option<LogFormatArg>,
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

fn init_logging(level: Option<&str>, format: Option<LogFormatArg>) {
    let filter = level.map(str::to_owned).or_else(|| std::env::var("VIGIL_LOG").ok()).unwrap_or_else(|| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json =
        format.map_or_else(|| std::env::var("VIGIL_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json")), |f| f == LogFormatArg::Json);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}

fn main() -> ExitCode {
    vigil::allocator::tune();
    let cli = Cli::parse();
    let (check, args) = match cli.command {
        Some(Command::Run(a)) => (false, a),
        Some(Command::Check(a)) => (true, a),
        Some(Command::Status(s)) => return status(&s, &cli.run),
        None => (false, cli.run),
    };
    init_logging(args.log_level.as_deref(), args.log_format);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let path = config_path(args.config.clone(), &env);
    let cfg = match Config::load(path.as_deref(), &env, &args.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigil: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Excluded cgroups are named by path: a path that does not exist is a
    // configuration error, found before anything is loaded.
    let cgroup_root = vigil::procfs::cgroup2_root();
    if let Some(e) = cfg.filters.exclude_cgroups.iter().find_map(|c| vigil::filters::resolve_cgroup(c, cgroup_root.as_deref()).err()) {
        eprintln!("vigil: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    if check {
        let settings = vigil::probes::ProbeSettings {
            probes: cfg.probes.clone(),
            self_tgid: std::process::id(),
            filters: cfg.filters.clone(),
            ratelimit: cfg.ratelimit.clone(),
            ..Default::default()
        };
        let mut items = vigil::probes::hooks::check(&settings);
        items.push(vigil::policy::check_item(&cfg.policy, vigil::policy::bpf_lsm_active()));
        let (report, ok) = vigil::probes::hooks::render(&items);
        print!("{report}");
        return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    match vigil::policy::fail_closed_gate(&cfg.policy, vigil::policy::bpf_lsm_active()) {
        Ok(None) => {}
        Ok(Some(warning)) => tracing::warn!("{warning}"),
        Err(refusal) => {
            eprintln!("vigil: {refusal}");
            return ExitCode::from(vigil::policy::EXIT_POLICY);
        }
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
        // Everything is delivered or spooled; the kernel may still be
        // detaching the programs (slow, see probes::detach_all).
        tokio::task::spawn_blocking(vigil::probes::wait_detached).await.ok();
        Ok(())
    })
}

/// Exit code of `vigil status` when the endpoint cannot be reached (or
/// is not vigil's).
const EXIT_UNREACHABLE: u8 = 2;

/// `vigil status`: read `/readyz` and `/metrics` and print a summary.
fn status(s: &StatusArgs, args: &RunArgs) -> ExitCode {
    let url = match &s.health_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let env: Vec<(String, String)> = std::env::vars().collect();
            let cfg = match Config::load(config_path(args.config.clone(), &env).as_deref(), &env, &args.overrides()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("vigil status: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match health_url_from_listen(&cfg.health.listen) {
                Some(u) => u,
                None => {
                    eprintln!("vigil status: the health endpoint is disabled (health.listen is empty); pass --health-url");
                    return ExitCode::from(EXIT_UNREACHABLE);
                }
            }
        }
    };
    let fetched = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(fetch_health(&url)));
    match fetched {
        Ok((code, ready_body, metrics)) if code == 200 || code == 503 => {
            print!("{}", vigil::health::status_report(&url, code, &ready_body, &metrics));
            if code == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok((code, _, _)) => {
            eprintln!("vigil status: {url}/readyz answered HTTP {code}: is this vigil's health endpoint?");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Err(e) => {
            eprintln!("vigil status: cannot reach vigil's health endpoint at {url}: {e:#} (is vigil running, with health.listen set?)");
            ExitCode::from(EXIT_UNREACHABLE)
        }
    }
}

/// `http://<listen>`, with an unspecified address (all interfaces) replaced
/// by the loopback one; `None` when the endpoint is disabled.
fn health_url_from_listen(listen: &str) -> Option<String> {
    let mut addr: std::net::SocketAddr = listen.parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    Some(format!("http://{addr}"))
}

/// `/readyz` (status code and body) and `/metrics` (body) of `url`.
async fn fetch_health(url: &str) -> anyhow::Result<(u16, String, String)> {
    vigil::export::tls::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).no_proxy().build().context("HTTP client")?;
    let ready = client.get(format!("{url}/readyz")).send().await.context("GET /readyz")?;
    let code = ready.status().as_u16();
    let ready_body = ready.text().await.context("reading /readyz")?;
    let metrics = client.get(format!("{url}/metrics")).send().await.context("GET /metrics")?;
    if !metrics.status().is_success() {
        anyhow::bail!("GET /metrics answered HTTP {}", metrics.status().as_u16());
    }
    Ok((code, ready_body, metrics.text().await.context("reading /metrics")?))
}
