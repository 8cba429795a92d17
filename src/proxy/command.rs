//! `relaydeck proxy`: its arguments and how it runs.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::{Upstream, Upstreams};
use crate::cli::{DataDirArg, LogFormat};
use crate::server::config::Config;
use crate::server::ServerOptions;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The server to put the console in front of: ws://HOST[:PORT] or wss://HOST[:PORT]
    /// (requests keep their own path). With upstreams by path in the config's `proxy`
    /// section, it takes the paths none of them matches.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Address to listen on; binding beyond loopback is an explicit choice.
    #[arg(long, default_value = "127.0.0.1:7879")]
    pub listen: std::net::SocketAddr,
    /// JSON config for the proxy's own settings (security limits, outbox, recorder, TLS);
    /// apps and keys in it are not used: the upstream checks its own.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Admin token for the proxy's /admin; without it one is generated once and kept in the
    /// data folder.
    #[arg(long, env = "RELAYDECK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Read the admin token from this file instead (yours, writable by nobody else): unlike
    /// --admin-token, it stays out of the process list.
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Watch only: consoles see everything, and every admin action is refused.
    #[arg(long)]
    pub readonly: bool,
    /// Serve https:// and wss:// with this PEM certificate chain.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Log lines as text or as one JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

pub fn run(args: ProxyArgs, data: &DataDirArg) -> anyhow::Result<ExitCode> {
    crate::cli::init_server_log(args.log_format);
    let upstream = args
        .upstream
        .as_deref()
        .map(Upstream::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        // The proxy's own settings at their defaults; it has no apps of its own.
        None => Config::parse(r#"{"apps": []}"#, "the proxy's defaults")?,
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls.cert = Some(cert.clone());
        config.tls.key = Some(key.clone());
    }
    let upstreams = Upstreams::new(&config.proxy, upstream).map_err(anyhow::Error::msg)?;
    let options = ServerOptions {
        data_dir: data.resolve()?.join("proxy"),
        admin_token: crate::admin_token::resolve_for_server(
            args.admin_token.clone(),
            args.admin_token_file.as_deref(),
        )
        .map_err(anyhow::Error::msg)?,
        admin_buffer: None,
        readonly: args.readonly,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
        let shown = upstreams.describe();
        let server = super::bind(listener, upstreams, config, options).await?;
        let tls = server.tls();
        if let Some(tls) = &tls {
            tokio::spawn(crate::cli::reload_on_hangup(tls.clone()));
        }
        let shutdown = crate::cli::shutdown_signal();
        let addr = server.local_addr()?;
        let ws = if tls.is_some() { "wss" } else { "ws" };
        // Whoever started the proxy may stop reading its stdout; that must not stop it.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}");
        let _ = writeln!(
            out,
            "proxying {ws}://{addr} to {shown} (connect with relaydeck connect {ws}://{addr})"
        );
        let _ = match server.admin_token_path() {
            Some(path) => writeln!(out, "admin token in {}", path.display()),
            None => writeln!(out, "admin token given on the command line"),
        };
        let _ = out.flush();
        drop(out);
        server.serve(shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}
