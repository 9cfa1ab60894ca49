// The CloudEvents JavaScript SDK (npm `cloudevents`) for
// tests/tests/javascript_sdk_interop.rs: one JSON request a line on stdin,
// one JSON answer a line on stdout. `require("cloudevents")` is found
// through NODE_PATH (the test points it at the pinned install).
//
// Requests (`op`):
//   version                         -> {version}
//   read_http  {headers, body_base64} -> {events: [E]} | {error}
//   read_kafka {headers, key, value_base64} -> {events: [E]} | {error}
//   write {binding: http|kafka, mode: binary|structured, event: S}
//                                   -> {event: E, headers, body_base64, key} | {error}
//   write_batch {events: [S]}        -> {events: [E], headers, body_base64}
//   serve                           -> {port}: an HTTP server on 127.0.0.1
//                                      that reads each request with HTTP.toEvent
//   received                        -> {requests: [{events} | {error}]}
//   post {url, mode, event: S}       -> {event: E, ok: true} | {error}
//
// S: the event's properties as `new CloudEvent` takes them (binary data as
// `data_base64`). E: an event as the SDK holds it: {attributes, data_kind:
// none|bytes|string|value, data, data_base64}.
"use strict";
const fs = require("fs");
const path = require("path");
const http = require("http");
const readline = require("readline");
const { CloudEvent, HTTP, Kafka, Mode, emitterFor, httpTransport } = require("cloudevents");

function describe(ev) {
  const attributes = {};
  for (const k of Object.getOwnPropertyNames(ev)) {
    if (k === "data" || k === "data_base64" || ev[k] === undefined) continue;
    attributes[k] = ev[k];
  }
  const d = ev.data;
  let data_kind, data = null;
  if (d === undefined) data_kind = "none";
  else if (ArrayBuffer.isView(d)) {
    data_kind = "bytes";
    // A Uint32Array holding one byte an element (the SDK's structured
    // reader) as well as a Buffer: one byte per element.
    data = Buffer.from(Array.from(d, (x) => x & 255)).toString("base64");
  } else if (typeof d === "string") { data_kind = "string"; data = d; }
  else { data_kind = "value"; data = d; }
  return { attributes, data_kind, data, data_base64: ev.data_base64 === undefined ? null : ev.data_base64 };
}

// Header values as strings (a Kafka client sends strings as UTF-8).
function strHeaders(h) {
  const out = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || v === null) continue;
    out[k] = typeof v === "string" ? v : String(v);
  }
  return out;
}

function bodyBytes(b) {
  if (b === undefined || b === null) return null;
  if (ArrayBuffer.isView(b)) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
  if (typeof b === "string") return Buffer.from(b, "utf8").toString("base64");
  // Kafka.binary leaves JSON data as the object itself (no client can send
  // that); serialised as HTTP.binary does.
  return Buffer.from(JSON.stringify(b), "utf8").toString("base64");
}

// A receiver hands the SDK a string body, except for binary data.
function httpBody(headers, b64) {
  const buf = Buffer.from(b64 || "", "base64");
  let ct = "";
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === "content-type") ct = v;
  return ct.startsWith("application/octet-stream") ? buf : buf.toString("utf8");
}

function events(r) { return (Array.isArray(r) ? r : [r]).map(describe); }

const received = [];
let server = null;

async function handle(req) {
  switch (req.op) {
    case "version": {
      const dir = path.dirname(require.resolve("cloudevents"));
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, "..", "package.json"), "utf8"));
      return { version: pkg.version, node: process.version };
    }
    case "read_http":
      return { events: events(HTTP.toEvent({ headers: req.headers, body: httpBody(req.headers, req.body_base64) })) };
    case "read_kafka": {
      const value = req.value_base64 === null ? null : Buffer.from(req.value_base64, "base64");
      // Kafka clients hand values over as Buffers; the SDK's structured and
      // batch readers JSON.parse them (a Buffer is read as its UTF-8 text).
      return { events: events(Kafka.toEvent({ headers: req.headers, key: req.key, value, body: value })) };
    }
    case "write": {
      const ev = new CloudEvent(req.event);
      const b = req.binding === "kafka" ? Kafka : HTTP;
      const m = req.mode === "binary" ? b.binary(ev) : b.structured(ev);
      return { event: describe(ev), headers: strHeaders(m.headers), body_base64: bodyBytes(req.binding === "kafka" ? m.value : m.body), key: m.key === undefined ? null : m.key };
    }
    case "write_batch": {
      // The SDK reads batches but has no batch writer: an array of the
      // events as its structured mode writes them (CloudEvent#toJSON).
      const evs = req.events.map((e) => new CloudEvent(e));
      return { events: evs.map(describe), headers: { "content-type": "application/cloudevents-batch+json; charset=utf-8" }, body_base64: Buffer.from(JSON.stringify(evs), "utf8").toString("base64") };
    }
    case "serve": {
      server = http.createServer((rq, rs) => {
        const chunks = [];
        rq.on("data", (c) => chunks.push(c));
        rq.on("end", () => {
          let entry;
          try {
            entry = { events: events(HTTP.toEvent({ headers: rq.headers, body: httpBody(rq.headers, Buffer.concat(chunks).toString("base64")) })) };
          } catch (e) { entry = { error: String(e && e.message || e) }; }
          received.push(entry);
          rs.statusCode = entry.error ? 400 : 202;
          rs.end();
        });
      });
      await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
      return { port: server.address().port };
    }
    case "received":
      return { requests: received.splice(0) };
    case "post": {
      const ev = new CloudEvent(req.event);
      const emit = emitterFor(httpTransport(req.url), { mode: req.mode === "binary" ? Mode.BINARY : Mode.STRUCTURED });
      await emit(ev);
      return { event: describe(ev), ok: true };
    }
    default:
      throw new Error("unknown op " + req.op);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
  chain = chain.then(async () => {
    let out;
    try { out = await handle(JSON.parse(line)); } catch (e) { out = { error: String(e && e.message || e) }; }
    process.stdout.write(JSON.stringify(out) + "\n");
  });
});
rl.on("close", () => chain.then(() => { if (server) server.close(); process.exit(0); }));
