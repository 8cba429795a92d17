//! The real Flow client against relaydeck: `@onflow/sdk` 1.13.7 with `@onflow/transport-http`
//! 1.15.6 (npm) subscribe to blocks, block_headers and block_digests with no credential, get
//! typed data, unsubscribe, and receive a refused subscription as the SDK's error; then they
//! follow a transaction sent over our own socket (the SDK has no send-and-subscribe topic)
//! through transaction_statuses, and get its fee event from the events topic.
//!
//! The packages are installed at those versions into `target/flow-sdk` when missing
//! (`scripts/test.sh` does it too). Node.js and npm must be on the PATH; set
//! `RELAYDECK_SKIP_FLOW_SDK=1` to skip this test on a machine without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::process::Command;

const PACKAGES: [(&str, &str); 2] = [("sdk", "1.13.7"), ("transport-http", "1.15.6")];

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The version of an installed `@onflow/<name>`, if any.
fn installed(folder: &Path, name: &str) -> Option<String> {
    let manifest = folder
        .join("node_modules/@onflow")
        .join(name)
        .join("package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value["version"].as_str().map(str::to_owned)
}

/// `target/flow-sdk` with both packages at their pinned versions, installed if needed.
async fn packages() -> PathBuf {
    let folder = repository().join("target/flow-sdk");
    let ready = |folder: &Path| {
        PACKAGES
            .iter()
            .all(|(name, version)| installed(folder, name).as_deref() == Some(version))
    };
    if ready(&folder) {
        return folder;
    }
    std::fs::create_dir_all(&folder).unwrap();
    let manifest = folder.join("package.json");
    if !manifest.exists() {
        std::fs::write(
            &manifest,
            r#"{"name":"relaydeck-flow-sdk-test","private":true}"#,
        )
        .unwrap();
    }
    let specs: Vec<String> = PACKAGES
        .iter()
        .map(|(name, version)| format!("@onflow/{name}@{version}"))
        .collect();
    let install = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--save-exact"])
        .args(&specs)
        .current_dir(&folder)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), install)
        .await
        .expect("npm install took over five minutes")
        .expect("npm is not on the PATH (RELAYDECK_SKIP_FLOW_SDK=1 skips this test)");
    assert!(
        output.status.success(),
        "npm install failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        ready(&folder),
        "npm installed other versions than {specs:?}"
    );
    folder
}

/// Send a transaction through send_and_get_transaction_statuses and wait until it is sealed;
/// its id and its block's height.
async fn sealed_transaction(server: &TestServer) -> (String, u64) {
    use base64::Engine as _;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.url("/v1/ws"))
        .await
        .unwrap();
    send_json(&mut socket, serde_json::json!({"subscription_id": "d", "action": "subscribe", "topic": "block_digests", "arguments": {"block_status": "finalized"}})).await;
    let mut reference = None;
    for _ in 0..10 {
        let frame = recv_json(&mut socket).await;
        if let Some(id) = frame["payload"]["block_id"].as_str() {
            reference = Some(id.to_owned());
            break;
        }
    }
    let service = "0xf8d6e0586b0a20c7";
    let body = serde_json::json!({
        "script": base64::engine::general_purpose::STANDARD.encode("transaction {}"),
        "arguments": [],
        "reference_block_id": reference.unwrap(),
        "gas_limit": "9999",
        "payer": service,
        "proposal_key": {"address": service, "key_index": "0", "sequence_number": "0"},
        "authorizers": [service],
        "payload_signatures": [],
        "envelope_signatures": [{"address": service, "key_index": "0", "signature": "AAEC"}],
    });
    send_json(&mut socket, serde_json::json!({"subscription_id": "tx", "action": "subscribe", "topic": "send_and_get_transaction_statuses", "arguments": body})).await;
    let (mut id, mut block) = (String::new(), String::new());
    for _ in 0..500 {
        let frame = recv_json(&mut socket).await;
        let result = &frame["payload"]["transaction_result"];
        if frame["subscription_id"] != "tx" || result.is_null() {
            continue;
        }
        let link = result["_links"]["_self"].as_str().unwrap();
        id = link.rsplit('/').next().unwrap().to_owned();
        block = result["block_id"].as_str().unwrap().to_owned();
        if result["status"] == "Sealed" {
            break;
        }
    }
    let height = relaydeck::server::flow::ids::height_of(&block).expect("a block of the chain");
    (id, height)
}

#[tokio::test]
async fn the_flow_js_sdk_streams_blocks_headers_and_digests_and_sees_errors() {
    if std::env::var_os("RELAYDECK_SKIP_FLOW_SDK").is_some() {
        eprintln!("skipped: RELAYDECK_SKIP_FLOW_SDK is set");
        return;
    }
    let modules = packages().await;
    let mut config = relaydeck::server::config::Config::demo();
    config.flow.block_interval_ms = 200;
    let server = TestServer::start(config).await;
    let (tx_id, tx_height) = sealed_transaction(&server).await;
    let script = repository().join("tests/js/flow_sdk.cjs");
    let run = Command::new("node")
        .arg(&script)
        .arg(&modules)
        .arg(server.http(""))
        .arg(&tx_id)
        .arg(tx_height.to_string())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the SDK run took over a minute")
        .expect("node is not on the PATH (RELAYDECK_SKIP_FLOW_SDK=1 skips this test)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for topic in ["blocks", "headers", "digests"] {
        let items = report[topic].as_array().unwrap();
        assert_eq!(items.len(), 2, "{report}");
        assert_eq!(
            items[1]["height"].as_u64().unwrap(),
            items[0]["height"].as_u64().unwrap() + 1
        );
    }
    // A block's parent is the block before it, as flow-go links them.
    assert_eq!(report["blocks"][1]["parentId"], report["blocks"][0]["id"]);
    let error = &report["errors"][0];
    assert_eq!(
        error["message"],
        "Failed to subscribe to topic blocks: error creating data provider: invalid arguments: invalid 'block_status', must be 'finalized' or 'sealed'",
        "{report}"
    );
    // Every status of the sealed transaction, in order, typed by the SDK.
    let statuses: Vec<(u64, &str)> = report["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["status"].as_u64().unwrap(),
                s["statusString"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (1, "PENDING"),
            (2, "FINALIZED"),
            (3, "EXECUTED"),
            (4, "SEALED")
        ],
        "{report}"
    );
    assert_eq!(report["statuses"][3]["events"].as_array().unwrap().len(), 3);
    let event = &report["event"];
    assert_eq!(event["transactionId"], tx_id.as_str(), "{report}");
    assert_eq!(event["blockHeight"], tx_height, "{report}");
    assert_eq!(
        event["payload"]["value"]["id"],
        "A.e5a8b7f23e8b548f.FlowFees.FeesDeducted"
    );
}
