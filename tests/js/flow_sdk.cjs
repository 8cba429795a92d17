// Drives relaydeck's Flow streams with the real Flow JS SDK (@onflow/sdk + @onflow/transport-http),
// for tests/flow_sdk.rs. Usage: node flow_sdk.cjs <folder holding node_modules> <node URL>
//   <id of a sealed transaction> <height of its block>
// Prints one JSON line with what the SDK delivered; exits non-zero on any failure, and a crash
// of the SDK is a failure too (no handler hides it).
"use strict";

const path = require("path");
const { createRequire } = require("module");

const [modules, node, txId, txHeight] = process.argv.slice(2);
const load = createRequire(path.resolve(modules, "package.json"));
const sdk = load("@onflow/sdk");
const { httpTransport } = load("@onflow/transport-http");

const opts = { node, transport: httpTransport };
const HEX64 = /^[0-9a-f]{64}$/;

function fail(message) {
  process.stderr.write(`flow_sdk: ${message}\n`);
  process.exit(1);
}

setTimeout(() => fail("timed out"), 30000).unref();

function check(condition, message) {
  if (!condition) fail(message);
}

function checkTime(timestamp, what) {
  check(typeof timestamp === "string" && !Number.isNaN(Date.parse(timestamp)), `${what}: timestamp ${timestamp}`);
}

// What each topic's parsed data must look like, as the SDK's handlers type it.
const shapes = {
  blocks: (d) => {
    const b = d.block;
    check(HEX64.test(b.id) && HEX64.test(b.parentId), `blocks: ids ${JSON.stringify(b)}`);
    check(Number.isSafeInteger(b.height), `blocks: height ${b.height}`);
    checkTime(b.timestamp, "blocks");
    check(typeof b.parentVoterSignature === "string", "blocks: parentVoterSignature");
    check(Array.isArray(b.collectionGuarantees) && Array.isArray(b.blockSeals), "blocks: payload");
    return b;
  },
  block_headers: (d) => {
    const h = d.blockHeader;
    check(HEX64.test(h.id) && HEX64.test(h.parentId), `block_headers: ids ${JSON.stringify(h)}`);
    check(Number.isSafeInteger(h.height), `block_headers: height ${h.height}`);
    checkTime(h.timestamp, "block_headers");
    return h;
  },
  block_digests: (d) => {
    const g = d.blockDigest;
    check(HEX64.test(g.id), `block_digests: id ${JSON.stringify(g)}`);
    check(Number.isSafeInteger(g.height), `block_digests: height ${g.height}`);
    checkTime(g.timestamp, "block_digests");
    return g;
  },
};

// Subscribe, take two consecutive items, unsubscribe, and make sure nothing follows.
function stream(topic) {
  return new Promise((resolve) => {
    const items = [];
    let done = false;
    const subscription = sdk.subscribeRaw(
      {
        topic,
        args: { blockStatus: "finalized" },
        onData: (data) => {
          check(!done, `${topic}: data after unsubscribe`);
          items.push(shapes[topic](data));
          if (items.length === 2) {
            done = true;
            check(items[1].height === items[0].height + 1, `${topic}: heights ${items.map((i) => i.height)}`);
            subscription.unsubscribe();
            resolve(items);
          }
        },
        onError: (error) => fail(`${topic}: ${error && error.message}`),
      },
      opts,
    );
  });
}

function refused() {
  return new Promise((resolve) => {
    const errors = [];
    sdk.subscribeRaw(
      {
        topic: "blocks",
        args: { blockStatus: "executed" },
        onData: () => fail("data on a refused subscription"),
        onError: (error) => {
          errors.push({ message: error.message, cause: error.cause ? error.cause.message : null });
          // The SDK reports the refusal from its socket listener and again from the request.
          setTimeout(() => resolve(errors), 200);
        },
      },
      opts,
    );
  });
}

// The sealed transaction's statuses, in order, with its events decoded by the SDK.
function transactionStatuses() {
  return new Promise((resolve) => {
    const statuses = [];
    sdk.subscribeRaw(
      {
        topic: "transaction_statuses",
        args: { transactionId: txId },
        onData: (data) => {
          const t = data.transactionStatus;
          check(typeof t.statusString === "string" && Number.isInteger(t.status), `transaction_statuses: ${JSON.stringify(t)}`);
          for (const e of t.events) {
            check(e.transactionId === txId && typeof e.payload === "object", `transaction_statuses: event ${JSON.stringify(e)}`);
          }
          statuses.push({ status: t.status, statusString: t.statusString, blockId: t.blockId, events: t.events.map((e) => e.type) });
          // Sealed is final: flow-go ends the stream there.
          if (t.statusString === "SEALED") resolve(statuses);
        },
        onError: (error) => fail(`transaction_statuses: ${error && error.message}`),
      },
      opts,
    );
  });
}

// The transaction's fee event from the events topic, filtered by type, from its block on.
function feeEvents() {
  return new Promise((resolve) => {
    const subscription = sdk.subscribeRaw(
      {
        topic: "events",
        args: { eventTypes: ["A.e5a8b7f23e8b548f.FlowFees.FeesDeducted"], startBlockHeight: Number(txHeight) },
        onData: (data) => {
          const e = data.event;
          check(e.type === "A.e5a8b7f23e8b548f.FlowFees.FeesDeducted", `events: type ${e.type}`);
          check(Number.isSafeInteger(e.blockHeight) && HEX64.test(e.blockId), `events: block ${JSON.stringify(e)}`);
          checkTime(e.blockTimestamp, "events");
          subscription.unsubscribe();
          resolve({ type: e.type, transactionId: e.transactionId, blockHeight: e.blockHeight, payload: e.payload });
        },
        onError: (error) => fail(`events: ${error && error.message}`),
      },
      opts,
    );
  });
}

(async () => {
  const [blocks, headers, digests] = await Promise.all(
    ["blocks", "block_headers", "block_digests"].map(stream),
  );
  // A block interval with every subscription gone: late data would fail in onData.
  await new Promise((r) => setTimeout(r, 500));
  const errors = await refused();
  const [statuses, event] = await Promise.all([transactionStatuses(), feeEvents()]);
  process.stdout.write(`${JSON.stringify({ blocks, headers, digests, errors, statuses, event })}\n`);
  process.exit(0);
})().catch((e) => fail(e && e.stack ? e.stack : String(e)));
