//! What Talo's HTTP API keeps for clients that hold a valid access key: identifiers and
//! passwords within bounds, rate windows keyed by bounded values, the process's memory
//! unmoved by floods. One test in this file, so that no other test's server shares the
//! process whose memory it measures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use relaydeck::server::config::Config;
use serde_json::Value;

const KEY: &str = "talo_demo_full";

fn http() -> reqwest::Client {
    relaydeck::tls::install_default_provider();
    reqwest::Client::builder()
        .timeout(RECEIVE_TIMEOUT)
        .build()
        .unwrap()
}

/// Issue 19's reproduction, scaled to a test: identifies with new 2 KB identifiers and 60
/// logins with 1 MB identifiers move the process's memory by at most 48 MiB; each is refused
/// as Talo refuses an invalid field (400 naming it) or by the rate limit (429), and a player
/// with an ordinary identifier is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_long_identifiers_keep_nothing() {
    let server = TestServer::start(Config::demo()).await;
    let client = http();
    let identify = |identifier: String| {
        let client = client.clone();
        let url = server.http("/v1/players/identify");
        async move {
            // Identifiers here are letters and digits: no escaping needed in the query.
            let response = client
                .get(format!("{url}?service=username&identifier={identifier}"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // Warm-up, and the answer to a long identifier: the validation error naming it.
    let (status, body) = identify("w".repeat(2048)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"]["identifier"][0]
        .as_str()
        .unwrap()
        .contains("at most 255"));
    let before = rss_kib();
    for round in 0..100 {
        let batch: Vec<_> = (0..20)
            .map(|n| tokio::spawn(identify(format!("{round:04}{n:04}{}", "x".repeat(2040)))))
            .collect();
        for request in batch {
            let (status, body) = request.await.unwrap();
            assert!(status == 400 || status == 429, "{status} {body}");
        }
    }
    let login = server.http("/v1/players/auth/login");
    for n in 0..60 {
        let body = serde_json::json!({
            "identifier": format!("{n}{}", "y".repeat(1 << 20)),
            "password": "whatever",
        });
        let response = client
            .post(&login)
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(status == 400 || status == 429, "{status}");
    }
    let after = rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("RSS grew by {grown_mib} MiB over 2,000 identifies and 60 logins");
    assert!(
        grown_mib <= 48,
        "RSS {before} KiB before, {after} KiB after the floods"
    );
    // An ordinary player is still identified (a new alias), from the same address.
    let (status, body) = identify("ordinary-player".to_owned()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alias"]["identifier"], "ordinary-player");
}
