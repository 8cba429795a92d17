//! The real Flow client against relaydeck: `@onflow/sdk` 1.13.7 with `@onflow/transport-http`
//! 1.15.6 (npm) subscribe to blocks, block_headers and block_digests with no credential, get
//! typed data, unsubscribe, and receive a refused subscription as the SDK's error.
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
    let script = repository().join("tests/js/flow_sdk.cjs");
    let run = Command::new("node")
        .arg(&script)
        .arg(&modules)
        .arg(server.http(""))
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
}
