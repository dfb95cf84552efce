#!/usr/bin/env python3
"""TLS overhead per request, measured from tandem's side. tdm-bench has no TLS transport (it drives raw
uv_tcp_t sockets, tests/bench/conn.c), so this small client does the TLS comparison: one connection, CQL v4,
STARTUP + PREPARE of `INSERT INTO tandem_bench.kv (k, v) VALUES (?, ?)`, then N EXECUTEs (64-byte blob) with
--inflight requests outstanding, refilled in groups of --batch per write (--inflight 1 --batch 1 is
sequential). tandem's utime+stime (/proc/PID/stat, all threads) and the schedstat run time of its threads
are sampled at the edges of the measured interval (after the handshake and --warmup requests).
Prints one JSON object. Standard library only.

  python3 tests/bench/tls_overhead.py --port P [--tls --ca cert.pem] --sample-pid PID \
      [--requests 100000] [--warmup 5000] [--inflight 64] [--batch 16]
"""

import argparse
import json
import os
import socket
import ssl
import struct
import time

CLK = os.sysconf("SC_CLK_TCK")


def frame(stream, opcode, body):
    return struct.pack(">BBhBI", 4, 0, stream, opcode, len(body)) + body


def lstring(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b


def cpu(pid):
    """(utime+stime seconds, schedstat run-time seconds summed over threads)"""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = int(parts[11]) + int(parts[12])
    ns = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                ns += int(f.read().split()[0])
        except OSError:
            pass
    return ticks / CLK, ns / 1e9


class Conn:
    def __init__(self, sock):
        self.s = sock
        self.buf = bytearray()

    def frames(self):
        """Blocks until at least one frame is complete; returns [(stream, opcode, body)]."""
        out = []
        while not out:
            data = self.s.recv(1 << 18)
            if not data:
                raise RuntimeError("connection closed by the server")
            self.buf += data
            while len(self.buf) >= 9:
                _, _, stream, op, n = struct.unpack_from(">BBhBI", self.buf)
                if len(self.buf) < 9 + n:
                    break
                out.append((stream, op, bytes(self.buf[9:9 + n])))
                del self.buf[:9 + n]
        return out

    def call(self, opcode, body):
        self.s.sendall(frame(0, opcode, body))
        f = self.frames()[0]
        if f[1] == 0x00:
            code, = struct.unpack_from(">i", f[2])
            raise RuntimeError("server error 0x%04x: %s" % (code, f[2][6:].decode(errors="replace")))
        return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--ca", help="CA / self-signed certificate to verify the server with")
    ap.add_argument("--sample-pid", type=int, required=True)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--warmup", type=int, default=5000)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    raw = socket.create_connection((a.host, a.port), timeout=20)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = raw
    if a.tls:
        ctx = ssl.create_default_context(cafile=a.ca) if a.ca else ssl._create_unverified_context()
        sock = ctx.wrap_socket(raw, server_hostname=a.host)
    c = Conn(sock)
    startup = struct.pack(">H", 1) + struct.pack(">H", 11) + b"CQL_VERSION" + struct.pack(">H", 5) + b"3.0.0"
    f = c.call(0x01, startup)
    if f[1] != 0x02:
        raise RuntimeError("STARTUP: opcode 0x%02x, not READY (authentication is not supported here)" % f[1])
    for ddl in ("CREATE KEYSPACE IF NOT EXISTS tandem_bench WITH replication = {'class': 'SimpleStrategy', "
                "'replication_factor': 1}",
                "CREATE TABLE IF NOT EXISTS tandem_bench.kv (k bigint PRIMARY KEY, v blob)"):
        try:
            c.call(0x07, lstring(ddl) + struct.pack(">HB", 1, 0))
        except RuntimeError:
            pass  # a mock may refuse DDL
    f = c.call(0x09, lstring("INSERT INTO tandem_bench.kv (k, v) VALUES (?, ?)"))
    kind, = struct.unpack_from(">i", f[2])
    if f[1] != 0x08 or kind != 4:
        raise RuntimeError("PREPARE: unexpected answer")
    idlen, = struct.unpack_from(">H", f[2], 4)
    qid = f[2][6:6 + idlen]
    value = bytes((ord("tandem-bench-value"[i % 18]) ^ (i // 18)) & 0xFF for i in range(64))
    prefix = struct.pack(">H", idlen) + qid + struct.pack(">HBH", 1, 0x01, 2)  # consistency ONE, VALUES, 2 values
    tail = struct.pack(">i", 64) + value

    def execute(stream, key):
        return frame(stream, 0x0A, prefix + struct.pack(">iq", 8, key) + tail)

    def run(n):
        """n requests, closed loop; returns the number of error responses."""
        free = list(range(a.inflight))
        sent = done = errors = 0
        key = 0
        while done < n:
            if sent < n and len(free) >= min(a.batch, n - sent):
                k = min(len(free), n - sent)
                out = bytearray()
                for _ in range(k):
                    out += execute(free.pop(), key)
                    key += 1
                sock.sendall(out)
                sent += k
                continue
            for stream, op, _ in c.frames():
                free.append(stream)
                done += 1
                errors += op != 0x08
        return errors

    run(a.warmup)
    c0, t0 = cpu(a.sample_pid), time.monotonic()
    errors = run(a.requests)
    c1, t1 = cpu(a.sample_pid), time.monotonic()
    version = sock.version() if a.tls else None
    sock.close()
    print(json.dumps({
        "label": a.label, "tls": a.tls, "tls_version": version,
        "requests": a.requests, "inflight": a.inflight, "batch": a.batch, "errors": errors,
        "seconds": round(t1 - t0, 3), "throughput_rps": round(a.requests / (t1 - t0)),
        "proxy_cpu_us_per_req": round((c1[0] - c0[0]) * 1e6 / a.requests, 2),
        "proxy_sched_us_per_req": round((c1[1] - c0[1]) * 1e6 / a.requests, 2),
    }))


if __name__ == "__main__":
    main()
