//! The command line: parse, dispatch, map failures to exit codes.
//!
//! Exit status: 0 on success, 1 when an input could not be decoded or a command failed,
//! 2 for usage errors (clap's own). The console (`connect`, or no subcommand) exits 1 when
//! its server was never reached, refused the token, or was unreachable when the user quit:
//! a script that runs it learns that the session did not end connected.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::catalog::{self, decode, Dialect};
use crate::report;

#[derive(Debug, Parser)]
#[command(name = "relaydeck", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Start the embedded server without demo traffic.
    #[arg(long)]
    pub no_demo: bool,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(flatten)]
    pub data: DataDirArg,
    #[command(flatten)]
    pub ca: CaFileArg,
}

#[derive(Debug, Args)]
pub struct CaFileArg {
    /// Also trust the CA certificates in this PEM file (a private CA, a self-signed server)
    /// for wss://, https:// and rediss://, besides the platform's roots.
    #[arg(long, env = "RELAYDECK_CA_FILE", global = true, value_name = "PEM")]
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Theme: default, light, high-contrast, or a file in the config folder's themes/.
    #[arg(long, global = true, default_value = "default")]
    pub theme: String,
    /// Remove every admin action (kick, suspend, close room, tap).
    #[arg(long, global = true)]
    pub readonly: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode pasted error frames, close codes and HTTP statuses (arguments, or one per line on stdin).
    Decode(DecodeArgs),
    /// List the catalog of documented codes, or search it.
    Codes(CodesArgs),
    /// Print everything known about one code, with an example.
    Explain(ExplainArgs),
    /// Run session files headless and check every expectation.
    Replay(ReplayArgs),
    /// Run the bundled server.
    Serve(ServeArgs),
    /// Put the console in front of a server relaydeck does not run: forward every request
    /// to it, and show what passes on this proxy's /admin.
    Proxy(crate::proxy::command::ProxyArgs),
    /// Open the console on a running relaydeck server.
    Connect(ConnectArgs),
    /// Load a server (this one or any other) and measure latency, loss and memory.
    Load(crate::load::LoadArgs),
    /// Print a shell completion script: `relaydeck completions bash > /etc/bash_completion.d/relaydeck`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Measure the console at 1,000, 10,000 and 100,000 peers (build with --release for real figures).
    Bench {
        /// Repetitions per measurement.
        #[arg(long, default_value_t = 20)]
        repeat: usize,
    },
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The server: ws://host:port or wss://host:port (the admin endpoint's path is added).
    pub url: String,
    /// The server's admin (or viewer) token. Without it, the token a `serve` with the same
    /// data folder stored (DATA_DIR/admin-token), then the embedded server's
    /// (DATA_DIR/embedded/admin-token), then a `proxy`'s (DATA_DIR/proxy/admin-token), are
    /// tried.
    #[arg(long, env = "RELAYDECK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Read the admin token from this file instead (yours, writable by nobody else): unlike
    /// --admin-token, it stays out of the process list.
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; binding beyond loopback is an explicit choice.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: std::net::SocketAddr,
    /// JSON config of apps and keys; without it the built-in demo config (see the README).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub serving: ServingArgs,
    /// Serve the built-in demo config (whose credentials are in the README) on an address
    /// beyond loopback. Without it, that combination is refused.
    #[arg(long)]
    pub expose_demo: bool,
    /// Join a cluster of nodes over this Redis (`redis://127.0.0.1:6379`); overrides the
    /// config's `cluster.redis`. Needs --node-id. A URL with a password belongs in the config
    /// file or RELAYDECK_CLUSTER: the command line is in the process list.
    #[arg(
        long,
        value_name = "REDIS_URL",
        requires = "node_id",
        env = "RELAYDECK_CLUSTER",
        hide_env_values = true
    )]
    pub cluster: Option<String>,
    /// This node's name in the cluster (letters, digits, '-', '_', '.').
    #[arg(long, value_name = "NAME")]
    pub node_id: Option<String>,
}

/// What `serve` and `proxy` both take: the admin endpoint's token and mode, TLS, the log.
#[derive(Debug, Args)]
pub struct ServingArgs {
    /// Admin token for /admin; without it one is generated once and kept in the data folder.
    #[arg(long, env = "RELAYDECK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Read the admin token from this file instead (yours, writable by nobody else): unlike
    /// --admin-token, it stays out of the process list.
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Watch only: consoles see everything, and every admin action is refused.
    #[arg(long)]
    pub readonly: bool,
    /// Serve https:// and wss:// with this PEM certificate chain (overrides the config's
    /// `tls.cert`). SIGHUP reads it and the key again.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's PEM private key (overrides the config's `tls.key`).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Log lines as text or as one JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl ServingArgs {
    /// `--tls-cert` and `--tls-key` over the config's `tls`.
    pub fn apply_tls(&self, config: &mut crate::server::config::Config) {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls.cert = Some(cert.clone());
            config.tls.key = Some(key.clone());
        }
    }

    /// The server's options, with its data kept in `data_dir`.
    pub fn options(
        &self,
        data_dir: std::path::PathBuf,
    ) -> anyhow::Result<crate::server::ServerOptions> {
        Ok(crate::server::ServerOptions {
            data_dir,
            admin_token: crate::admin_token::resolve_for_server(
                self.admin_token.clone(),
                self.admin_token_file.as_deref(),
            )
            .map_err(anyhow::Error::msg)?,
            admin_buffer: None,
            readonly: self.readonly,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DataDirArg {
    /// Folder for the admin token, app statuses, the audit log, the console's log and the
    /// sessions `:record` saves. Accepted before or after the subcommand.
    #[arg(long, env = "RELAYDECK_DATA_DIR", global = true)]
    pub data_dir: Option<std::path::PathBuf>,
}

impl DataDirArg {
    /// The given folder, or the platform's data folder for relaydeck.
    pub fn resolve(&self) -> anyhow::Result<std::path::PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        directories::ProjectDirs::from("dev", "relaydeck", "relaydeck")
            .map(|dirs| dirs.data_dir().to_path_buf())
            .ok_or_else(|| anyhow::anyhow!("no home folder to keep data in; pass --data-dir"))
    }
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Inputs: a JSON frame, `close 4020 admin_disconnect`, `429 Retry-After: 60`, `ROOM_FULL`.
    /// Without any, one input per line is read from stdin.
    pub inputs: Vec<String>,
    /// Only consider codes of this dialect (signal-fish, talo, talo-http, flow, pubsub, websocket).
    #[arg(long)]
    pub dialect: Option<Dialect>,
    /// One JSON object per input instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read a whole pasted log (`-` for stdin) and print a timeline of the errors and closes
    /// in it, with the timestamps and the fields that tie them to requests, rooms and players.
    #[arg(long, value_name = "FILE", conflicts_with = "inputs")]
    pub timeline: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CodesArgs {
    /// Words that every listed entry must contain (code, title, meaning, guidance, policy…).
    pub query: Vec<String>,
    #[arg(long)]
    pub dialect: Option<Dialect>,
    /// The full entries as a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A code, optionally qualified by dialect: `ROOM_FULL`, `pubsub:4020`, `429`,
    /// `"subscription not found"`.
    pub code: String,
    #[arg(long)]
    pub dialect: Option<Dialect>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Session files (JSONL).
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// The server to replay against (`ws://127.0.0.1:7878`); without it, a fresh embedded
    /// server with the demo config.
    #[arg(long)]
    pub url: Option<String>,
    /// Let sessions' `admin` steps (kick, suspend an app, close a room…) act on the `--url`
    /// server. Without it, a session with admin steps is refused before it runs. The embedded
    /// server needs no flag: it lives and dies with the replay.
    #[arg(long)]
    pub allow_admin: bool,
    /// The server's admin token, used only with --allow-admin.
    #[arg(long, env = "RELAYDECK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Read the admin token from this file instead (yours, writable by nobody else): unlike
    /// --admin-token, it stays out of the process list.
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Print only one line per session (and the steps of failing ones).
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::tls::install_default_provider();
    if let Some(path) = &cli.ca.ca_file {
        if let Err(error) = crate::tls::add_ca_file(path) {
            let _ = writeln!(anstream::stderr(), "relaydeck: --ca-file: {error}");
            return ExitCode::from(2);
        }
    }
    let result = match cli.command {
        Some(Command::Decode(args)) => run_decode(args),
        Some(Command::Codes(args)) => run_codes(args),
        Some(Command::Explain(args)) => run_explain(args),
        Some(Command::Replay(args)) => run_replay(args),
        Some(Command::Serve(args)) => run_serve(args, &cli.data),
        Some(Command::Proxy(args)) => crate::proxy::command::run(args, &cli.data),
        Some(Command::Connect(args)) => run_connect(args, cli.console, &cli.data),
        Some(Command::Load(args)) => crate::load::main(args),
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "relaydeck",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Bench { repeat }) => {
            print!("{}", crate::bench::run(repeat.max(1)));
            Ok(ExitCode::SUCCESS)
        }
        None => run_embedded(cli.console, &cli.data, !cli.no_demo),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(anstream::stderr(), "relaydeck: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_decode(args: DecodeArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.timeline {
        return run_timeline(path, args.dialect, args.json);
    }
    let inputs: Vec<String> = if args.inputs.is_empty() {
        let mut lines = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            if !line.trim().is_empty() {
                lines.push(line);
            }
        }
        lines
    } else {
        args.inputs
    };
    if inputs.is_empty() {
        // A usage error, as clap's own are: 2, not the 1 of an input that did not decode.
        let _ = writeln!(
            anstream::stderr(),
            "relaydeck: nothing to decode: pass inputs as arguments or one per line on stdin"
        );
        return Ok(ExitCode::from(2));
    }
    let mut out = anstream::stdout().lock();
    let mut all_decoded = true;
    for input in &inputs {
        let result = decode::decode(input, args.dialect);
        all_decoded &= result.is_ok();
        if args.json {
            let json = report::decoding_json(input, &result).to_string();
            writeln!(out, "{}", crate::text::printable_json(&json))?;
        } else {
            match &result {
                Ok(decoding) => write!(out, "{}", report::decoding_text(input, decoding))?,
                Err(error) => write!(out, "{}", report::decode_error_text(input, error))?,
            }
        }
    }
    Ok(if all_decoded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_timeline(
    path: &std::path::Path,
    dialect: Option<catalog::Dialect>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use std::io::Read as _;
    let limit = catalog::timeline::MAX_LOG_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
            .take(limit)
            .read_to_end(&mut bytes)?;
    }
    let log = String::from_utf8_lossy(&bytes);
    let timeline = catalog::timeline::timeline(&log, dialect);
    let mut out = anstream::stdout().lock();
    if json {
        let json = serde_json::to_string_pretty(&timeline)?;
        writeln!(out, "{}", crate::text::printable_json(&json))?;
    } else {
        write!(out, "{}", report::timeline_text(&timeline))?;
    }
    Ok(if timeline.events.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn run_codes(args: CodesArgs) -> anyhow::Result<ExitCode> {
    let entries: Vec<&catalog::Entry> = catalog::search(&args.query.join(" "))
        .into_iter()
        .filter(|e| args.dialect.is_none_or(|d| e.dialect == d))
        .collect();
    let mut out = anstream::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        writeln!(
            anstream::stderr(),
            "no catalog entry matches {:?}",
            args.query.join(" ")
        )?;
        return Ok(ExitCode::FAILURE);
    }
    for entry in &entries {
        writeln!(out, "{}", report::code_row(entry))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let matches = find_for_explain(&args.code, args.dialect);
    if matches.is_empty() {
        let suggestions: Vec<String> = catalog::search(&args.code)
            .into_iter()
            .take(5)
            .map(|e| e.qualified())
            .collect();
        let mut message = format!("no catalog entry for {:?}", args.code);
        if !suggestions.is_empty() {
            message.push_str(&format!("; did you mean: {}", suggestions.join(", ")));
        }
        anyhow::bail!(message);
    }
    let mut out = anstream::stdout().lock();
    for (index, entry) in matches.iter().enumerate() {
        if index > 0 {
            writeln!(out, "{}", "─".repeat(72))?;
        }
        write!(out, "{}", report::explain_text(entry))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A code as a person types it: bare, `dialect:code`, or anything `decode` understands.
fn find_for_explain(query: &str, dialect: Option<Dialect>) -> Vec<&'static catalog::Entry> {
    let query = query.trim();
    let mut found = match query
        .split_once(':')
        .map(|(d, c)| (d.parse::<Dialect>(), c))
    {
        Some((Ok(d), code)) => catalog::get(d, code.trim()).into_iter().collect(),
        _ => catalog::by_code(query),
    };
    if found.is_empty() {
        if let Ok(decoding) = decode::decode(query, None) {
            found = decoding.candidates;
        }
    }
    found.retain(|e| dialect.is_none_or(|d| e.dialect == d));
    found
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    use crate::session::{replay, Session};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut out = anstream::stdout();
    // The admin token reaches a remote server only when asked for with --allow-admin, so a
    // session file from elsewhere cannot act as admin with a token that happens to be in the
    // environment.
    let remote = match &args.url {
        Some(url) => {
            let given = if args.allow_admin {
                crate::admin_token::resolve(
                    args.admin_token.clone(),
                    args.admin_token_file.as_deref(),
                )
                .map_err(anyhow::Error::msg)?
            } else {
                None
            };
            let token = match (args.allow_admin, given) {
                (false, _) => None,
                (true, Some(token)) => Some(token),
                (true, None) => anyhow::bail!(
                    "--allow-admin needs the server's admin token: --admin-token-file, RELAYDECK_ADMIN_TOKEN or --admin-token"
                ),
            };
            let target = replay::Target::from_url(url, token).map_err(anyhow::Error::msg)?;
            if args.allow_admin {
                writeln!(
                    out,
                    "admin steps may act on {} as its admin (--allow-admin)",
                    target.addr
                )?;
            }
            Some(target)
        }
        None => None,
    };
    let total = args.files.len();
    let mut failed: Vec<String> = Vec::new();
    for (index, path) in args.files.iter().enumerate() {
        let label = crate::text::printable(&format!("[{}/{total}] {}", index + 1, path.display()))
            .into_owned();
        let session = match Session::load(path) {
            Ok(session) => session,
            Err(error) => {
                writeln!(
                    out,
                    "{label}\n  {}",
                    crate::text::printable(&error.to_string())
                )?;
                failed.push(path.display().to_string());
                continue;
            }
        };
        writeln!(
            out,
            "{label} — {}",
            crate::text::printable(&crate::text::one_line(&session.header.name, 120))
        )?;
        if let Some(target) = remote.as_ref().filter(|_| !args.allow_admin) {
            if session.has_admin_steps() {
                writeln!(
                    out,
                    "  refused: this session has admin steps that would act on {} as its admin; pass --allow-admin to let them",
                    target.addr
                )?;
                failed.push(path.display().to_string());
                continue;
            }
        }
        let quiet = args.quiet;
        let mut buffered = Vec::new();
        // Without --url, each session gets a fresh embedded server (Config::for_replay), so
        // that no session sees what another left behind (rooms, quotas, statuses).
        let embedded = match &remote {
            Some(_) => None,
            None => Some(runtime.block_on(EmbeddedServer::start())?),
        };
        let target = match (&remote, &embedded) {
            (Some(target), _) => target.clone(),
            (None, Some(server)) => server.target(),
            (None, None) => unreachable!("one of the two is always set"),
        };
        let report = runtime.block_on(replay::run(&session, &target, &mut |step| {
            let text = report::step_text(step);
            if quiet {
                buffered.push(text);
            } else {
                anstream::print!("{text}");
            }
        }));
        if let Some(server) = embedded {
            runtime.block_on(server.stop());
        }
        if quiet && !report.passed() {
            for text in &buffered {
                write!(out, "{text}")?;
            }
        }
        let missing: Vec<&String> = session
            .header
            .expect_codes
            .iter()
            .filter(|code| {
                !report
                    .codes_seen
                    .iter()
                    .any(|seen| seen.eq_ignore_ascii_case(code))
            })
            .collect();
        let passed = report.passed() && missing.is_empty();
        if report.passed() && !missing.is_empty() {
            writeln!(
                out,
                "  the header expects codes the server never sent: {}",
                crate::text::printable(
                    &missing
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            )?;
        }
        if report.skipped > 0 {
            writeln!(out, "  {} later steps not run", report.skipped)?;
        }
        writeln!(out, "  {}", if passed { "PASS" } else { "FAIL" })?;
        if !passed {
            failed.push(path.display().to_string());
        }
    }
    writeln!(out, "\n{} of {total} sessions passed", total - failed.len())?;
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for name in &failed {
            writeln!(out, "  failed: {}", crate::text::printable(name))?;
        }
        Ok(ExitCode::FAILURE)
    }
}

/// The server's log on stderr (`serve`, `proxy`), filtered by `RELAYDECK_LOG`.
pub(crate) fn init_server_log(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RELAYDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .fmt_fields(crate::text::PrintableFields)
            .with_writer(std::io::stderr)
            // Colours only for a person watching; a log file or a journal gets plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
}

fn run_serve(args: ServeArgs, data: &DataDirArg) -> anyhow::Result<ExitCode> {
    use crate::server::{config::Config, Server};

    init_server_log(args.serving.log_format);
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => {
            if !args.listen.ip().is_loopback() && !args.expose_demo {
                anyhow::bail!(
                    "refusing to serve the demo config on {}: its keys and passwords are published \
                     in the README. Pass --config with your own apps, or --expose-demo if this \
                     network is yours alone.",
                    args.listen
                );
            }
            Config::demo()
        }
    };
    let mut config = config;
    if let Some(url) = &args.cluster {
        let from_env = std::env::var("RELAYDECK_CLUSTER").is_ok_and(|v| &v == url);
        let has_password = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .is_some_and(|authority| authority.contains('@'))
            || url.to_ascii_lowercase().contains("password=");
        if has_password && !from_env {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "relaydeck: warning: --cluster carries Redis credentials in the process list, visible to every local user; put the URL in the config file (cluster.redis) or RELAYDECK_CLUSTER"
            );
        }
        config.cluster.redis = Some(url.clone());
    }
    if let Some(node) = &args.node_id {
        config.cluster.node_id = Some(node.clone());
    }
    args.serving.apply_tls(&mut config);
    config
        .cluster
        .check()
        .map_err(|e| anyhow::anyhow!("--cluster/--node-id: {e}"))?;
    let config_node = config
        .cluster
        .enabled()
        .then(|| config.cluster.node_id.clone())
        .flatten();
    let options = args.serving.options(data.resolve()?)?;
    let runtime = config.runtime.build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
        let server = Server::bind(listener, config, options).await?;
        let tls = server.tls();
        if let Some(tls) = &tls {
            tokio::spawn(reload_on_hangup(tls.clone()));
        }
        let shutdown = shutdown_signal();
        // Whoever started the server may stop reading its stdout; that must not stop it.
        let mut out = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let _ = writeln!(out, "listening on {}", server.local_addr()?);
        let _ = writeln!(
            out,
            "serving {scheme}://{} ({}; connect with relaydeck connect {}://{})",
            server.local_addr()?,
            if tls.is_some() {
                "TLS: SIGHUP reloads the certificate"
            } else {
                "plain text"
            },
            if tls.is_some() { "wss" } else { "ws" },
            server.local_addr()?,
        );
        let _ = match server.admin_token_path() {
            Some(path) => writeln!(out, "admin token in {}", path.display()),
            None => writeln!(out, "admin token given on the command line"),
        };
        // Read-only, so it can be handed to whoever watches; it is derived from the admin
        // token and changes with it.
        let _ = writeln!(
            out,
            "viewer token (watch only): {}",
            crate::server::access::viewer_token(server.admin_token())
        );
        if args.serving.readonly {
            let _ = writeln!(out, "read-only: admin actions are refused");
        }
        if let Some(node) = &config_node {
            let _ = writeln!(out, "cluster node {node}");
        }
        let _ = out.flush();
        drop(out);
        server.serve(shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Read the certificate and key again on every SIGHUP (a renewal); open connections keep the
/// pair they started with. A pair that does not load is logged and the old one stays. The
/// handler is installed before this returns, so a SIGHUP sent once `serve` has printed its
/// address never falls to the default action (which would end the process).
#[cfg(unix)]
pub(crate) fn reload_on_hangup(
    tls: std::sync::Arc<crate::tls::ServerTls>,
) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let hangups = signal(SignalKind::hangup());
    async move {
        let Ok(mut hangups) = hangups else {
            tracing::warn!("cannot watch SIGHUP; restart the server to take a new certificate");
            return;
        };
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!(cert = %tls.cert_path().display(), "TLS certificate reloaded")
                }
                Err(error) => {
                    tracing::error!(%error, "TLS certificate not reloaded; the previous one stays in use")
                }
            }
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn reload_on_hangup(
    tls: std::sync::Arc<crate::tls::ServerTls>,
) -> impl std::future::Future<Output = ()> {
    let _ = tls;
    std::future::ready(())
}

/// Ctrl-C, or SIGTERM where there are signals. The handlers are installed before this
/// returns: a SIGTERM sent right after `serve` printed its address shuts down gracefully.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let terminate = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let terminate = async {
                match terminate {
                    Some(mut terminate) => {
                        terminate.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let interrupt = async {
                match interrupt {
                    Some(mut interrupt) => {
                        interrupt.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                () = terminate => {}
                () = interrupt => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs go to a file in the data folder while the terminal belongs to the console.
fn log_to_file(data_dir: &std::path::Path) -> Option<std::path::PathBuf> {
    crate::server::persist::create_private_dir(data_dir).ok()?;
    let path = data_dir.join("console.log");
    let file = crate::server::persist::private_file()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RELAYDECK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .fmt_fields(crate::text::PrintableFields)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .ok()?;
    Some(path)
}

/// The console's app as the user configured it: theme, keymap, read-only. A bad theme or
/// keymap file is reported on the status line and the defaults are used.
fn console_app(console: &ConsoleArgs) -> crate::console::app::App {
    use crate::catalog::Severity;
    use crate::console::{app::App, keymap::Keymap, theme::Theme};

    let config_dir = crate::console::config_dir();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let (theme, theme_problem) = Theme::load(&console.theme, config_dir.as_deref(), no_color);
    let (keymap, keymap_problem) = Keymap::load(config_dir.as_deref());
    let mut app = App::new(keymap, console.readonly);
    app.theme = theme;
    let problems: Vec<String> = [theme_problem, keymap_problem]
        .into_iter()
        .flatten()
        .collect();
    if !problems.is_empty() {
        app.set_status(problems.join(" · "), Severity::Warning);
    }
    app
}

/// The console draws on a terminal and reads keys from it; without one, say so plainly
/// (crossterm's own error is "No such device or address").
fn require_terminal() -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let missing: Vec<&str> = [
        ("stdin", std::io::stdin().is_terminal()),
        ("stdout", std::io::stdout().is_terminal()),
    ]
    .into_iter()
    .filter(|(_, is)| !is)
    .map(|(name, _)| name)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let which = match missing.as_slice() {
        [one] => format!("{one} is not one"),
        _ => "neither stdin nor stdout is one".to_owned(),
    };
    anyhow::bail!(
        "the console needs a terminal, and {which} (redirected, or run without a tty). For \
         scripts use `relaydeck replay`, `relaydeck load` or the server's /metrics; in CI run it \
         inside tmux or `script`"
    )
}

/// The tokens `connect` tries when given none: what a `serve`, the embedded server or a
/// `proxy` with the same data folder stored.
fn stored_tokens(
    data_dir: Option<&std::path::Path>,
) -> (
    Vec<crate::console::net::TokenSource>,
    Vec<std::path::PathBuf>,
) {
    use crate::server::persist::{admin_token_file, read_admin_token};
    let Some(dir) = data_dir else {
        return (Vec::new(), Vec::new());
    };
    let paths = vec![
        admin_token_file(dir),
        admin_token_file(&dir.join("embedded")),
        admin_token_file(&dir.join("proxy")),
    ];
    let found = paths
        .iter()
        .filter_map(|path| {
            read_admin_token(path).map(|token| crate::console::net::TokenSource {
                from: format!("the token stored in {}", path.display()),
                token,
            })
        })
        .collect();
    (found, paths)
}

/// Run the console on the real terminal against the admin endpoint at `admin_url`, with the
/// first of `tokens` the server accepts. The console's log and the sessions `:record` saves
/// go into `data_dir`.
fn run_console(
    runtime: &tokio::runtime::Runtime,
    console: &ConsoleArgs,
    admin_url: String,
    tokens: Vec<crate::console::net::TokenSource>,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use crate::console::app::Connection;
    use futures_util::StreamExt as _;

    require_terminal()?;
    if let Some(dir) = data_dir {
        log_to_file(dir);
    }
    let (client, token) = runtime.block_on(crate::console::net::reach(&admin_url, tokens))?;
    let app = console_app(console);
    let sessions_dir = data_dir.map(|dir| dir.join("sessions"));
    let (connection, fatal) = crate::console::with_terminal(|terminal| {
        runtime.block_on(async move {
            let link = crate::console::Link::connected(client, admin_url, token);
            let fatal = link.fatal();
            // A link that gave up (the token refused on a reconnect) ends the console as if
            // its input had ended; the reason is said once the terminal is restored.
            let watched = fatal.clone();
            // So does SIGTERM or SIGHUP (a kill, a closed terminal window): the console still
            // leaves the terminal as it found it.
            let gave_up = Box::pin(async move {
                let link_gave_up = async move {
                    match watched {
                        Some(mut watched) => {
                            let _ = watched.wait_for(Option::is_some).await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    () = link_gave_up => {}
                    () = terminated() => {}
                }
            });
            let input = crossterm::event::EventStream::new().take_until(gave_up);
            let app = crate::console::run(terminal, app, input, link, sessions_dir).await?;
            let fatal = fatal.and_then(|f| f.borrow().clone());
            anyhow::Ok((app.connection, fatal))
        })
    })?;
    if let Some(sentence) = fatal {
        anyhow::bail!(sentence);
    }
    if let Connection::Lost { error, .. } = connection {
        let _ = writeln!(
            anstream::stderr(),
            "relaydeck: quit while the connection to the server was lost ({error})"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or SIGHUP (on Unix; never elsewhere).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut term), Ok(mut hup)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

fn run_connect(
    args: ConnectArgs,
    console: ConsoleArgs,
    data: &DataDirArg,
) -> anyhow::Result<ExitCode> {
    let target =
        crate::session::replay::Target::from_url(&args.url, None).map_err(anyhow::Error::msg)?;
    require_terminal()?;
    let data_dir = data.resolve().ok();
    let given = crate::admin_token::resolve(args.admin_token, args.admin_token_file.as_deref())
        .map_err(anyhow::Error::msg)?;
    let tokens = match given {
        Some(token) => vec![crate::console::net::TokenSource {
            from: "the token given with --admin-token-file, RELAYDECK_ADMIN_TOKEN or --admin-token"
                .to_owned(),
            token,
        }],
        None => {
            let (found, looked) = stored_tokens(data_dir.as_deref());
            if found.is_empty() {
                anyhow::bail!(
                    "no admin token: pass --admin-token (or RELAYDECK_ADMIN_TOKEN); none is stored \
                     where a server with this data folder keeps one ({})",
                    if looked.is_empty() {
                        "no data folder; pass --data-dir".to_owned()
                    } else {
                        looked
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
            }
            found
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    run_console(
        &runtime,
        &console,
        target.ws_url(crate::protocol::routes::ADMIN),
        tokens,
        data_dir.as_deref(),
    )
}

fn run_embedded(console: ConsoleArgs, data: &DataDirArg, demo: bool) -> anyhow::Result<ExitCode> {
    use crate::server::{config::Config, spawn, ServerOptions};

    require_terminal()?;
    let data_dir = data.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let server = runtime.block_on(spawn(
        "127.0.0.1:0".parse()?,
        Config::demo(),
        ServerOptions {
            // The embedded server keeps its state apart from a `serve` in the same folder.
            data_dir: data_dir.join("embedded"),
            admin_token: None,
            admin_buffer: None,
            readonly: false,
        },
    ))?;
    let (stop_demo, demo_stopped) = tokio::sync::watch::channel(false);
    let demo_task = demo.then(|| runtime.spawn(crate::demo::run_all(server.addr, demo_stopped)));
    let outcome = run_console(
        &runtime,
        &console,
        crate::protocol::routes::ws_url(server.addr, crate::protocol::routes::ADMIN),
        vec![crate::console::net::TokenSource {
            from: "the embedded server's own token".to_owned(),
            token: server.admin_token.clone(),
        }],
        Some(&data_dir),
    );
    let _ = stop_demo.send(true);
    runtime.block_on(async {
        if let Some(task) = demo_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
        server.shutdown().await
    })?;
    outcome
}

/// A fresh folder in `parent` for an embedded replay server: a random name (another user
/// cannot guess it to plant a FIFO or attach to the server first), made here, 0700.
fn replay_data_dir(parent: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let dir = parent.join(format!(
        "relaydeck-replay-{}",
        crate::server::talo::random_token()
    ));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    // Not recursive: a folder of that name that already exists is an error, not reused.
    builder.create(&dir)?;
    Ok(dir)
}

/// A replay server in a temporary data folder, removed when it stops.
struct EmbeddedServer {
    server: crate::server::RunningServer,
    data_dir: std::path::PathBuf,
}

impl EmbeddedServer {
    async fn start() -> anyhow::Result<EmbeddedServer> {
        let data_dir = replay_data_dir(&std::env::temp_dir())?;
        let server = crate::server::spawn(
            "127.0.0.1:0".parse()?,
            crate::server::config::Config::for_replay(),
            crate::server::ServerOptions {
                data_dir: data_dir.clone(),
                admin_token: None,
                admin_buffer: None,
                readonly: false,
            },
        )
        .await?;
        Ok(EmbeddedServer { server, data_dir })
    }

    fn target(&self) -> crate::session::replay::Target {
        crate::session::replay::Target {
            addr: self.server.addr.to_string(),
            admin_token: Some(self.server.admin_token.clone()),
        }
    }

    async fn stop(self) {
        let _ = self.server.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn replay_folders_are_random_private_and_never_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let parent = tempfile::tempdir().unwrap();
        let first = replay_data_dir(parent.path()).unwrap();
        let second = replay_data_dir(parent.path()).unwrap();
        assert_ne!(first, second);
        let name = first.file_name().unwrap().to_string_lossy().to_string();
        // 24 random bytes in hex after the prefix: nothing another user can predict.
        assert_eq!(name.len(), "relaydeck-replay-".len() + 48, "{name}");
        let mode = std::fs::metadata(&first).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    use super::*;

    #[test]
    fn the_data_folder_is_taken_before_or_after_the_subcommand() {
        let before = [
            "relaydeck",
            "--data-dir",
            "/d",
            "connect",
            "ws://h:1",
            "--admin-token",
            "t",
        ];
        let after = [
            "relaydeck",
            "connect",
            "ws://h:1",
            "--admin-token",
            "t",
            "--data-dir",
            "/d",
        ];
        for args in [before, after] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(
                cli.data.data_dir.as_deref(),
                Some(std::path::Path::new("/d"))
            );
        }
        let serve = Cli::try_parse_from(["relaydeck", "serve", "--data-dir", "/s"]).unwrap();
        assert_eq!(
            serve.data.data_dir.as_deref(),
            Some(std::path::Path::new("/s"))
        );
    }
}
