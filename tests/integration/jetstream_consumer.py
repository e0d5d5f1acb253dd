#!/usr/bin/python3
"""Reads kopt's recommendations from NATS JetStream: the example of
docs/integrations.md, run by test_advisor_jetstream against a live server so
it cannot rot.

1. Stream: an ephemeral push consumer on KOPT_RECOMMENDATIONS for one
   cluster's subjects, kopt.recommendations.<cluster>.>. Recommendations are
   kept per analysis (header Kopt-Analysis-Id) until that analysis's
   AnalysisCompleted arrives on kopt.recommendations.<cluster>._completed;
   then the set is complete and is "applied" (printed here).
2. Key-value bucket kopt_recommendations: the cluster's latest marker under
   <cluster>._completed and the latest recommendation of each workload,
   read without replaying the stream (a consumer that delivers the last
   message per subject).

Every message says what it holds: Content-Type (application/json or
application/protobuf), Kopt-Type (kopt.v1.Recommendation or
kopt.v1.AnalysisCompleted), Kopt-Schema (kopt.v1). JSON needs nothing but
the standard library; protobuf needs modules made from kopt's protos, which
this script generates with python3-grpc-tools when given -I directories.

Only the standard library talks NATS here (a few lines of the text protocol
over asyncio), so it runs on a Debian machine with no extra packages; a real
integration would use a NATS client library. No TLS in this example; user
and password, or a token, come from NATS_USER / NATS_PASSWORD / NATS_TOKEN.

usage: jetstream_consumer.py --server nats://HOST:PORT --cluster NAME
                             [--check N] [-I PROTO_DIR ...]
  --check N: exit 1 unless every analysis seen is complete and consistent
             and the bucket holds N workloads of the newest analysis.
"""
import argparse
import asyncio
import base64
import importlib
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

STREAM = "KOPT_RECOMMENDATIONS"
BUCKET = "kopt_recommendations"


class Nats:
    """Just enough of the NATS client protocol: CONNECT, SUB, PUB, MSG/HMSG."""

    def __init__(self):
        self.subs = {}
        self.sids = itertools.count(1)
        self.inbox = "_INBOX.kopt-example-%s" % os.urandom(6).hex()

    async def connect(self, url):
        u = urllib.parse.urlparse(url)
        self.r, self.w = await asyncio.open_connection(u.hostname or "127.0.0.1", u.port or 4222)
        info = json.loads((await self.r.readline()).decode().split(" ", 1)[1])
        if info.get("tls_required"):
            raise RuntimeError("this example speaks no TLS; use a NATS client library")
        opts = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                "protocol": 1, "name": "kopt-jetstream-example"}
        if os.environ.get("NATS_TOKEN"):
            opts["auth_token"] = os.environ["NATS_TOKEN"]
        elif os.environ.get("NATS_USER"):
            opts["user"] = os.environ["NATS_USER"]
            opts["pass"] = os.environ.get("NATS_PASSWORD", "")
        self.w.write(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
        await self.w.drain()
        # The server answers PONG once it accepted us, or -ERR (bad credentials).
        line = (await self.r.readline()).decode().strip()
        if line != "PONG":
            raise RuntimeError("NATS refused the connection: " + (line or "closed"))
        self.reader = asyncio.ensure_future(self.read_loop())

    async def read_loop(self):
        while True:
            line = (await self.r.readline()).decode().rstrip("\r\n")
            if not line:
                raise ConnectionError("NATS connection closed")
            op, _, rest = line.partition(" ")
            if op in ("MSG", "HMSG"):
                args = rest.split()
                hlen = int(args[-2]) if op == "HMSG" else 0
                total = int(args[-1])
                body = await self.r.readexactly(total + 2)
                reply = args[2] if len(args) == (5 if op == "HMSG" else 4) else None
                hdrs = parse_headers(body[:hlen]) if hlen else {}
                queue = self.subs.get(args[1])
                if queue:
                    queue.put_nowait((args[0], reply, hdrs, body[hlen:total]))
            elif op == "PING":
                self.w.write(b"PONG\r\n")
            elif op == "-ERR":
                raise RuntimeError("NATS: " + rest)

    def subscribe(self, subject):
        sid = str(next(self.sids))
        self.subs[sid] = asyncio.Queue()
        self.w.write(("SUB %s %s\r\n" % (subject, sid)).encode())
        return self.subs[sid]

    def publish(self, subject, payload, reply=""):
        self.w.write(("PUB %s %s %d\r\n" % (subject, reply, len(payload))).encode()
                     + payload + b"\r\n")

    async def request(self, subject, obj, timeout=5):
        inbox = "%s.%d" % (self.inbox, next(self.sids))
        queue = self.subscribe(inbox)
        self.publish(subject, json.dumps(obj).encode(), inbox)
        _, _, hdrs, data = await asyncio.wait_for(queue.get(), timeout)
        if hdrs.get(":status") == "503":
            raise RuntimeError("no JetStream answers %s" % subject)
        return json.loads(data)

    async def consume(self, stream, filter_subject, deliver_policy, idle=2.0):
        """Yields (subject, headers, data) from an ephemeral push consumer
        until it has delivered what the stream holds (or `idle` seconds
        pass without a message)."""
        deliver = "%s.%d" % (self.inbox, next(self.sids))
        queue = self.subscribe(deliver)
        resp = await self.request("$JS.API.CONSUMER.CREATE." + stream, {
            "stream_name": stream,
            "config": {"deliver_subject": deliver, "filter_subject": filter_subject,
                       "deliver_policy": deliver_policy, "ack_policy": "none",
                       "inactive_threshold": 5_000_000_000}})
        if "error" in resp:
            raise RuntimeError("consumer on %s: %s" % (stream, resp["error"]))
        pending = resp.get("num_pending", 0)
        while pending > 0:
            try:
                subject, reply, hdrs, data = await asyncio.wait_for(queue.get(), idle)
            except asyncio.TimeoutError:
                return
            # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>
            pending = int(reply.split(".")[-1]) if reply else 0
            yield subject, hdrs, data


def parse_headers(block):
    lines = block.decode().split("\r\n")
    hdrs = {}
    status = lines[0].split()
    if len(status) > 1:
        hdrs[":status"] = status[1]
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            hdrs[k.strip()] = v.strip()
    return hdrs


def key_part(s):
    """Escapes one KV key token as the advisor does: A-Z a-z 0-9 - _ stay,
    any other byte becomes =HH."""
    return "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "-_")
                   else "=%02X" % b for b in s.encode())


class Decoder:
    """Turns a message into a dict in the proto3 JSON shape, whatever its
    encoding."""

    def __init__(self, includes):
        self.pb = None
        self.tmp = None
        if includes:
            out = self.tmp = tempfile.mkdtemp(prefix="kopt-pb-")
            protos = ["kopt/v1/metrics.proto", "kopt/v1/advisor.proto"]
            if importlib.util.find_spec("google.api") is None:
                protos += ["google/api/annotations.proto", "google/api/http.proto"]
            subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "--python_out=" + out]
                           + ["-I" + d for d in includes] + protos, check=True, timeout=60)
            for d in ("kopt", "kopt/v1"):
                open(os.path.join(out, d, "__init__.py"), "a").close()
            sys.path.insert(0, out)
            from google.protobuf import json_format
            self.json_format = json_format
            self.pb = importlib.import_module("kopt.v1.advisor_pb2")

    def close(self):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def decode(self, hdrs, data):
        ctype, ktype = hdrs.get("Content-Type"), hdrs.get("Kopt-Type", "")
        if hdrs.get("Kopt-Schema") != "kopt.v1":
            raise ValueError("unknown schema %r" % hdrs.get("Kopt-Schema"))
        if ctype == "application/json":
            return json.loads(data)
        if ctype == "application/protobuf" and self.pb:
            cls = getattr(self.pb, ktype.rsplit(".", 1)[-1])
            return self.json_format.MessageToDict(cls.FromString(data))
        raise ValueError("cannot decode %s %s" % (ctype, ktype))


def workload(rec):
    w = rec["workload"]
    return "%s/%s/%s" % (w["namespace"], w["kind"], w["name"])


async def main(args):
    nc = Nats()
    await nc.connect(args.server)
    dec = Decoder(args.include)
    try:
        return await read(nc, dec, args)
    finally:
        dec.close()


async def read(nc, dec, args):
    token = args.cluster.replace(".", "_")
    failures = []

    # 1. The stream: complete sets, one per analysis.
    pending = {}  # analysis id -> recommendations seen so far
    complete = []
    async for subject, hdrs, data in nc.consume(
            STREAM, "kopt.recommendations.%s.>" % token, "all"):
        msg = dec.decode(hdrs, data)
        aid = hdrs["Kopt-Analysis-Id"]
        if hdrs["Kopt-Type"] == "kopt.v1.Recommendation":
            pending.setdefault(aid, []).append(msg)
            continue
        recs = pending.pop(aid, [])
        count = msg.get("recommendationCount", 0)
        print("analysis %s cluster %s complete: %d recommendations (%s)"
              % (aid, msg["cluster"], len(recs), hdrs["Content-Type"]))
        for rec in recs:
            c = rec["containers"][0]["recommended"]
            print("  %-40s cpu %.3f cores  memory %s bytes"
                  % (workload(rec), c.get("cpuRequestCores", 0), c.get("memoryRequestBytes", "0")))
        if len(recs) != count:
            failures.append("analysis %s: %d recommendations, marker says %d"
                            % (aid, len(recs), count))
        complete.append(aid)
    for aid, recs in pending.items():
        print("analysis %s: %d recommendations, not complete yet" % (aid, len(recs)))

    # 2. The bucket: the current state without replaying the stream.
    resp = await nc.request("$JS.API.STREAM.MSG.GET.KV_" + BUCKET,
                            {"last_by_subj": "$KV.%s.%s._completed" % (BUCKET, key_part(args.cluster))})
    latest = None
    if "message" in resp:
        m = resp["message"]
        hdrs = parse_headers(base64.b64decode(m["hdrs"]))
        latest = dec.decode(hdrs, base64.b64decode(m.get("data", "")))
        print("bucket: latest complete analysis of %s is %s (%s recommendations)"
              % (args.cluster, latest["analysisId"], latest.get("recommendationCount", 0)))
    current = {}
    async for subject, hdrs, data in nc.consume(
            "KV_" + BUCKET, "$KV.%s.%s.*.*.*" % (BUCKET, key_part(args.cluster)),
            "last_per_subject"):
        if hdrs.get("KV-Operation") in ("DEL", "PURGE"):
            continue
        rec = dec.decode(hdrs, data)
        current[subject.split(".", 2)[2]] = rec
        print("bucket: %-40s analysis %s" % (workload(rec), rec["analysisId"]))

    if args.check is not None:
        if not complete:
            failures.append("no complete analysis of %s in the stream" % args.cluster)
        if pending:
            failures.append("analyses without a marker: %s" % ", ".join(pending))
        if not latest or complete and latest["analysisId"] != complete[-1]:
            failures.append("the bucket's latest marker is not the stream's last one")
        newest = [r for r in current.values() if latest and r["analysisId"] == latest["analysisId"]]
        if len(newest) != args.check:
            failures.append("bucket: %d workloads of the latest analysis, want %d"
                            % (len(newest), args.check))
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default="nats://127.0.0.1:4222")
    p.add_argument("--cluster", required=True)
    p.add_argument("--check", type=int)
    p.add_argument("-I", dest="include", action="append", default=[])
    try:
        sys.exit(asyncio.run(main(p.parse_args())))
    except (OSError, RuntimeError, asyncio.TimeoutError) as e:
        print("FAIL: %s" % (e or type(e).__name__), file=sys.stderr)
        sys.exit(1)
