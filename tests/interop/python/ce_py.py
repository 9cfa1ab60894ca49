"""The CloudEvents Python SDK (PyPI `cloudevents`, 2.x `cloudevents.core` API)
driven over stdin/stdout for `tests/tests/python_sdk_interop.rs`.

  python ce_py.py stdio   one JSON request a line on stdin, one JSON answer a
                          line on stdout (see `handle` for the operations)
  python ce_py.py serve   an HTTP server on 127.0.0.1 (a free port): prints
                          {"port": N}, then one line for each POST it got, as
                          the SDK read it (`from_http`); ends when stdin closes

Only the SDK reads and writes CloudEvents here: this script moves bytes in
and out (base64 for bodies and Kafka values) and reports what the SDK made
of them, attribute by attribute. It never fixes up what the SDK does.
"""

import base64
import json
import sys
import threading
import traceback
import http.client
import urllib.parse
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cloudevents
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse

FMT = JSONFormat()


def b64(b):
    return base64.b64encode(bytes(b)).decode("ascii")


def describe(ev):
    """An event the SDK holds, as JSON: every attribute with its Python type
    kept (str, int, bool; `time` as its isoformat), and the data with its
    kind (`json` for a parsed value, `text` for str, `bytes` for bytes)."""
    attrs = {}
    for name, value in ev.get_attributes().items():
        if isinstance(value, datetime):
            attrs[name] = {"time": value.isoformat()}
        elif isinstance(value, bool):
            attrs[name] = {"bool": value}
        elif isinstance(value, int):
            attrs[name] = {"int": value}
        elif isinstance(value, str):
            attrs[name] = {"str": value}
        else:
            attrs[name] = {"other": repr(value)}
    data = ev.get_data()
    if data is None:
        d = None
    elif isinstance(data, (bytes, bytearray)):
        d = {"kind": "bytes", "base64": b64(data)}
    elif isinstance(data, str):
        d = {"kind": "text", "value": data}
    else:
        d = {"kind": "json", "value": data}
    return {"attributes": attrs, "data": d}


def make_event(spec):
    """An SDK event from the test's description: `attributes` (JSON values;
    `time` as an RFC 3339 string), `data` (`{"kind": "json"|"text"|"bytes"}`)
    and `drop_time` (remove the `time` the SDK's constructor adds)."""
    attrs = dict(spec["attributes"])
    if "time" in attrs:
        attrs["time"] = isoparse(attrs["time"])
    data = spec.get("data")
    if data is None:
        value = None
    elif data["kind"] == "bytes":
        value = base64.b64decode(data["base64"])
    else:
        value = data["value"]
    ev = CloudEvent(attrs, value)
    if spec.get("drop_time"):
        # The SDK's constructor sets `time` to now when it is absent; the
        # attributes dict is the event's own, so this leaves it without one.
        ev.get_attributes().pop("time", None)
    return ev


def encodings(ev):
    hb = ce_http.to_binary(ev, FMT)
    hs = ce_http.to_structured(ev, FMT)
    kb = ce_kafka.to_binary(ev, FMT)
    ks = ce_kafka.to_structured(ev, FMT)

    def kafka(m):
        key = m.key.encode("utf-8") if isinstance(m.key, str) else m.key
        return {
            "headers": {k: b64(v) for k, v in m.headers.items()},
            "key_base64": None if key is None else b64(key),
            "value_base64": b64(m.value),
        }

    return {
        "http_binary": {"headers": hb.headers, "body_base64": b64(hb.body)},
        "http_structured": {"headers": hs.headers, "body_base64": b64(hs.body)},
        "kafka_binary": kafka(kb),
        "kafka_structured": kafka(ks),
        # The SDK has no batched mode: its JSON format writes each event.
        "event_json_base64": b64(FMT.write(ev)),
    }


def handle(req):
    op = req["op"]
    if op == "version":
        return {"version": cloudevents.__version__}
    if op == "read_http":
        msg = ce_http.HTTPMessage(
            headers=req["headers"], body=base64.b64decode(req["body_base64"])
        )
        return describe(ce_http.from_http(msg, FMT))
    if op == "read_batch":
        # No batched mode in the SDK: the array is split here, each element
        # read by the SDK's JSON format.
        body = base64.b64decode(req["body_base64"])
        return {
            "events": [
                describe(FMT.read(None, json.dumps(e))) for e in json.loads(body)
            ]
        }
    if op == "read_kafka":
        key = req.get("key_base64")
        value = req.get("value_base64")
        msg = ce_kafka.KafkaMessage(
            headers={k: base64.b64decode(v) for k, v in req["headers"].items()},
            key=None if key is None else base64.b64decode(key),
            # A record without a value (binary mode, no data) as None.
            value=None if value is None else base64.b64decode(value),
        )
        return describe(ce_kafka.from_kafka(msg, FMT))
    if op == "write":
        return encodings(make_event(req["event"]))
    if op == "post":
        ev = make_event(req["event"])
        m = (ce_http.to_binary if req["mode"] == "binary" else ce_http.to_structured)(
            ev, FMT
        )
        # http.client sends the SDK's headers as they are (urllib would add
        # a form Content-Type where the SDK wrote none).
        url = urllib.parse.urlsplit(req["url"])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            conn.request("POST", url.path, body=m.body, headers=m.headers)
            resp = conn.getresponse()
            resp.read()
            return {"status": resp.status}
        finally:
            conn.close()
    raise ValueError(f"unknown op {op!r}")


def stdio():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            out = handle(json.loads(line))
        except Exception as e:  # the test shows what the SDK refused, and why
            out = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            out = describe(ce_http.from_http(ce_http.HTTPMessage(headers, body), FMT))
            out["headers"] = headers
            status = 202
        except Exception as e:
            out = {"error": f"{type(e).__name__}: {e}", "headers": headers}
            status = 400
        # Printed before the answer: once the sender has its 202, the line is out.
        with Handler.lock:
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def serve():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write(json.dumps({"port": server.server_address[1]}) + "\n")
    sys.stdout.flush()
    # The test closes stdin (or dies): then stop.
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    {"stdio": stdio, "serve": serve}[sys.argv[1]]()
