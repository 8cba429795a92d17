//! Pub/sub fan-out on `/v1?key=…`: publishers × subscribers on one channel.
//!
//! # Setup
//! Every connection waits for `welcome`; subscribers send
//! `{"type":"subscribe","channel":C,"requestId":…}` and wait for its `ack`. Publishers then
//! send `{"type":"publish","channel":C,"data":{stamp}}` at the rate.
//!
//! # What is expected
//! The relay delivers a publish to every subscriber of the channel except the publisher
//! (publishers here do not subscribe), so each measured message should arrive once per
//! subscriber. A publisher also gets an `ack` per publish, which is read and not counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use clap::Args;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::peer::{self, Run, Sending, Template};
use super::signal_fish::{collect, measure_window};
use super::{
    await_frame, connect, limited, Buffers, CommonArgs, Report, Socket, Target, MAX_CONNECTIONS,
    MAX_PAYLOAD, MAX_RATE,
};

pub const PATH: &str = "/v1";

#[derive(Debug, Clone, Args)]
pub struct PubsubArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Connections that publish (and do not subscribe).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Connections that subscribe to the channel.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Publishes per second per publisher.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Bytes of each publish's `data` object, serialized.
    #[arg(long, default_value_t = 256)]
    pub payload: usize,
    /// The public key id to connect with (`?key=`).
    #[arg(long, default_value = "pk_demo")]
    pub key: String,
    /// The channel; the key must allow publish and subscribe on it.
    #[arg(long, default_value = "demo/load")]
    pub channel: String,
}

impl PubsubArgs {
    fn check(&self) -> anyhow::Result<()> {
        let connections = self.publishers.saturating_add(self.subscribers);
        if self.publishers == 0 || self.subscribers == 0 || connections > MAX_CONNECTIONS {
            anyhow::bail!(
                "--publishers and --subscribers must be at least 1 and together at most {MAX_CONNECTIONS}"
            );
        }
        if !(self.rate.is_finite() && (0.1..=MAX_RATE).contains(&self.rate)) {
            anyhow::bail!("--rate must be between 0.1 and {MAX_RATE} messages per second");
        }
        if self.payload > MAX_PAYLOAD {
            anyhow::bail!("--payload must be at most {MAX_PAYLOAD} bytes");
        }
        Ok(())
    }
}

pub async fn run(args: &PubsubArgs) -> anyhow::Result<Box<Report>> {
    args.check()?;
    let target = Target::resolve(&args.common.url, args.common.allow_remote).await?;
    let url = match &target.path {
        Some(path) => format!("{}{path}", target.base),
        None => format!("{}{PATH}?key={}", target.base, query_value(&args.key)),
    };
    let (subscribers, publishers) = set_up(args, &target, &url).await?;
    let run = Run::new(args.common.window())?;
    let channel = Value::String(args.channel.clone()).to_string();
    let template = Arc::new(Template::new(
        &format!(r#"{{"type":"publish","channel":{channel},"data":"#),
        "}",
        args.payload,
    ));
    let admin = super::attach_admin(&args.common, &target, run.stopped()).await?;
    let mut tasks = Vec::with_capacity(args.publishers + args.subscribers);
    for (who, socket) in subscribers.into_iter().enumerate() {
        tasks.push(tokio::spawn(peer::drive(socket, who, None, run.clone())));
    }
    for (index, socket) in publishers.into_iter().enumerate() {
        let sending = Sending {
            sender: u32::try_from(index).unwrap_or(u32::MAX),
            rate: args.rate,
            audience: args.subscribers as u64,
            phase: index as f64 / args.publishers as f64,
            template: template.clone(),
        };
        let who = args.subscribers + index;
        tasks.push(tokio::spawn(peer::drive(
            socket,
            who,
            Some(sending),
            run.clone(),
        )));
    }
    let measured = measure_window(&run, args.common.server_pid).await;
    run.conclude(args.common.window().drain).await;
    let mut report = Report {
        workload: "pubsub".to_owned(),
        label: args.common.label.clone(),
        url: url.clone(),
        parameters: json!({
            "publishers": args.publishers,
            "subscribers": args.subscribers,
            "rate": args.rate,
            "payload": args.payload,
            "channel": args.channel,
        }),
        connections: args.publishers + args.subscribers,
        send_interval_ms: 1000.0 / args.rate,
        offered_per_s: args.rate * args.publishers as f64,
        generator: measured.generator,
        server: measured.server,
        machine: measured.machine,
        ..Report::default()
    };
    collect(&mut report, &args.common, &run, tasks, admin).await;
    Ok(Box::new(report))
}

/// Percent-encode a query value (keys are usually plain ids, but nothing says they must be).
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn set_up(
    args: &PubsubArgs,
    target: &Target,
    url: &str,
) -> anyhow::Result<(Vec<Socket>, Vec<Socket>)> {
    let limit = super::connect_limit();
    let mut subscribing = Vec::with_capacity(args.subscribers);
    for _ in 0..args.subscribers {
        let (target, url, channel, limit) = (
            target.clone(),
            url.to_owned(),
            args.channel.clone(),
            limit.clone(),
        );
        subscribing.push(tokio::spawn(async move {
            limited(&limit, subscriber(&target, &url, &channel)).await
        }));
    }
    let mut publishing = Vec::with_capacity(args.publishers);
    for _ in 0..args.publishers {
        let (target, url, limit) = (target.clone(), url.to_owned(), limit.clone());
        publishing.push(tokio::spawn(async move {
            limited(&limit, welcomed(&target, &url)).await
        }));
    }
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let (subscribers, failed_subscribers) = gather(subscribing).await;
    let (publishers, failed_publishers) = gather(publishing).await;
    for error in failed_subscribers.into_iter().chain(failed_publishers) {
        *failures.entry(error).or_default() += 1;
    }
    if !failures.is_empty() {
        let detail: Vec<String> = failures
            .iter()
            .map(|(error, n)| format!("{n}× {error}"))
            .collect();
        anyhow::bail!(
            "{} of {} connections could not be set up on {url}: {}",
            failures.values().sum::<usize>(),
            args.publishers + args.subscribers,
            detail.join("; ")
        );
    }
    Ok((subscribers, publishers))
}

/// The sockets that were set up, and the errors of those that were not.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Socket>>>,
) -> (Vec<Socket>, Vec<String>) {
    let mut sockets = Vec::with_capacity(tasks.len());
    let mut failed = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(socket)) => sockets.push(socket),
            Ok(Err(error)) => failed.push(format!("{error:#}")),
            Err(error) => failed.push(error.to_string()),
        }
    }
    (sockets, failed)
}

/// A connection that has received `welcome`.
async fn welcomed(target: &Target, url: &str) -> anyhow::Result<Socket> {
    let mut socket = connect(target, url, None, Buffers::Busy).await?;
    await_frame(&mut socket, |text| {
        let frame: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match frame["type"].as_str() {
            Some("welcome") => Ok(Some(())),
            Some("error") => Err(refusal(&frame)),
            _ => Ok(None),
        }
    })
    .await?;
    Ok(socket)
}

/// A welcomed connection whose subscription to `channel` was acknowledged.
async fn subscriber(target: &Target, url: &str, channel: &str) -> anyhow::Result<Socket> {
    const REQUEST: &str = "load-subscribe";
    let mut socket = welcomed(target, url).await?;
    let subscribe = json!({"type": "subscribe", "channel": channel, "requestId": REQUEST});
    socket.send(Message::text(subscribe.to_string())).await?;
    await_frame(&mut socket, |text| {
        let frame: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let ours = frame["requestId"].as_str() == Some(REQUEST);
        match frame["type"].as_str() {
            Some("ack") if ours => Ok(Some(())),
            Some("error") if ours => Err(refusal(&frame)),
            _ => Ok(None),
        }
    })
    .await?;
    Ok(socket)
}

fn refusal(frame: &Value) -> String {
    format!(
        "error {}: {}",
        frame["code"].as_str().unwrap_or("?"),
        frame["message"].as_str().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_encoded_in_the_query() {
        assert_eq!(query_value("pk_demo"), "pk_demo");
        assert_eq!(query_value("a b&c=d"), "a%20b%26c%3Dd");
    }
}
