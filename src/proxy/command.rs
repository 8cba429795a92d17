//! `relaydeck proxy`: its arguments and how it runs.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::{Upstream, Upstreams};
use crate::cli::{DataDirArg, ServingArgs};
use crate::server::config::Config;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The server to put the console in front of: ws://HOST:PORT or wss://HOST:PORT (the
    /// port may be left out for the scheme's own; requests keep their own path). With
    /// upstreams by path in the config's `proxy` section, it takes the paths none of them
    /// matches.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Address to listen on; binding beyond loopback is an explicit choice.
    #[arg(long, default_value = "127.0.0.1:7879")]
    pub listen: std::net::SocketAddr,
    /// JSON config for the proxy's own settings (security limits, outbox, recorder, TLS);
    /// apps and keys in it are not used: the upstream checks its own.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub serving: ServingArgs,
}

pub fn run(args: ProxyArgs, data: &DataDirArg) -> anyhow::Result<ExitCode> {
    crate::cli::init_server_log(args.serving.log_format);
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
    args.serving.apply_tls(&mut config);
    let upstreams = Upstreams::new(&config.proxy, upstream).map_err(anyhow::Error::msg)?;
    let options = args.serving.options(data.resolve()?.join("proxy"))?;
    let runtime = config.runtime.build()?;
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
