#!/usr/bin/env python3
"""tandem: a tiny CQL native-protocol v4 client for the cluster scripts (standard library only).

The cluster scripts use it before any virtualenv exists, so it must not import the driver.

  cqlprobe.py ready HOST [PORT]
      exit 0 when HOST:PORT answers OPTIONS with SUPPORTED (the node serves CQL), else 1
  cqlprobe.py query HOST [PORT] [-u USER -p PASS] -e STATEMENT [-e STATEMENT ...]
      runs each statement at CL ONE; prints each row as tab-separated text, exit 1 on error

Environment: CQLPROBE_TLS=1 wraps the socket in TLS (no verification: readiness and setup
only; real clients verify against build/cassandra/tls/node.crt). CQLPROBE_TIMEOUT (s, def. 5).
"""
import os
import socket
import ssl
import struct
import sys
import uuid

VERSION = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE = 0x00, 0x01, 0x02, 0x03
OP_OPTIONS, OP_SUPPORTED, OP_QUERY, OP_RESULT = 0x05, 0x06, 0x07, 0x08
OP_AUTH_RESPONSE, OP_AUTH_SUCCESS = 0x0F, 0x10


class CqlError(Exception):
    pass


def string_map(d):
    out = struct.pack(">H", len(d))
    for k, v in d.items():
        for s in (k, v):
            b = s.encode()
            out += struct.pack(">H", len(b)) + b
    return out


class Conn:
    def __init__(self, host, port):
        timeout = float(os.environ.get("CQLPROBE_TIMEOUT", "5"))
        s = socket.create_connection((host, port), timeout=timeout)
        if os.environ.get("CQLPROBE_TLS") == "1":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        self.sock = s
        self.stream = 0

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise CqlError("connection closed by the node")
            buf += chunk
        return buf

    def request(self, opcode, body=b""):
        self.stream = (self.stream + 1) % 0x7FFF
        self.sock.sendall(struct.pack(">BBhBI", VERSION, 0, self.stream, opcode, len(body)) + body)
        while True:
            ver, _flags, stream, op, length = struct.unpack(">BBhBI", self._recv(9))
            payload = self._recv(length)
            if ver != (0x80 | VERSION):
                raise CqlError("unexpected response version 0x%02x" % ver)
            if stream != self.stream:  # events (stream -1) and strays
                continue
            if op == OP_ERROR:
                code, = struct.unpack(">i", payload[:4])
                mlen, = struct.unpack(">H", payload[4:6])
                raise CqlError("error 0x%04x: %s" % (code, payload[6:6 + mlen].decode(errors="replace")))
            return op, payload

    def handshake(self, user=None, password=None):
        op, _ = self.request(OP_STARTUP, string_map({"CQL_VERSION": "3.0.0"}))
        if op == OP_AUTHENTICATE:
            if user is None:
                raise CqlError("the node requires authentication: pass -u and -p")
            token = b"\0" + user.encode() + b"\0" + password.encode()
            op, _ = self.request(OP_AUTH_RESPONSE, struct.pack(">i", len(token)) + token)
            if op != OP_AUTH_SUCCESS:
                raise CqlError("authentication did not succeed (opcode 0x%02x)" % op)
        elif op != OP_READY:
            raise CqlError("unexpected opcode 0x%02x after STARTUP" % op)

    def query(self, cql):
        q = cql.encode()
        body = struct.pack(">i", len(q)) + q + struct.pack(">HB", 0x0001, 0x00)  # CL ONE, no flags
        op, payload = self.request(OP_QUERY, body)
        if op != OP_RESULT:
            raise CqlError("unexpected opcode 0x%02x for QUERY" % op)
        r = Reader(payload)
        if r.int() != 2:  # void, set keyspace, schema change: no rows
            return []
        flags, ncols = r.int(), r.int()
        if flags & 0x0002:  # has_more_pages: skip the paging state
            r.bytes()
        types = []
        if not flags & 0x0004:
            if flags & 0x0001:  # global table spec
                r.string(), r.string()
            for _ in range(ncols):
                if not flags & 0x0001:
                    r.string(), r.string()
                r.string()  # column name
                types.append(r.type_option())
        rows = []
        for _ in range(r.int()):
            rows.append([render(types[i] if types else None, r.bytes()) for i in range(ncols)])
        return rows


class Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise CqlError("truncated response")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def string(self):
        return self.take(self.short()).decode()

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def type_option(self):
        tid = self.short()
        if tid == 0x0000:
            self.string()
        elif tid in (0x20, 0x22):
            self.type_option()
        elif tid == 0x21:
            self.type_option(), self.type_option()
        elif tid == 0x30:
            self.string(), self.string()
            for _ in range(self.short()):
                self.string(), self.type_option()
        elif tid == 0x31:
            for _ in range(self.short()):
                self.type_option()
        return tid


TEXT_TYPES = (0x01, 0x0D)          # ascii, varchar
INT_TYPES = (0x02, 0x05, 0x09, 0x0E, 0x13, 0x14, 0x0B)  # bigint counter int varint smallint tinyint timestamp


def render(tid, raw):
    if raw is None:
        return "null"
    if tid in TEXT_TYPES:
        return raw.decode("utf-8", errors="replace")
    if tid in INT_TYPES:
        return str(int.from_bytes(raw, "big", signed=True))
    if tid == 0x04:
        return "true" if raw != b"\0" else "false"
    if tid == 0x10:
        return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
    if tid in (0x0C, 0x0F):
        return str(uuid.UUID(bytes=raw))
    return "0x" + raw.hex()


def main(argv):
    if len(argv) < 2 or argv[0] not in ("ready", "query"):
        sys.stderr.write(__doc__)
        return 64
    mode, host = argv[0], argv[1]
    rest = argv[2:]
    port = 9042
    if rest and not rest[0].startswith("-"):
        port = int(rest.pop(0))
    if mode == "ready":
        try:
            c = Conn(host, port)
            op, _ = c.request(OP_OPTIONS)
            return 0 if op == OP_SUPPORTED else 1
        except (OSError, CqlError, struct.error):
            return 1
    user = password = None
    stmts = []
    while rest:
        flag = rest.pop(0)
        if not rest:
            sys.stderr.write("cqlprobe: %s needs a value\n" % flag)
            return 64
        val = rest.pop(0)
        if flag == "-u":
            user = val
        elif flag == "-p":
            password = val
        elif flag == "-e":
            stmts.append(val)
        else:
            sys.stderr.write("cqlprobe: unknown option %s\n" % flag)
            return 64
    try:
        c = Conn(host, port)
        c.handshake(user, password)
        for s in stmts:
            for row in c.query(s):
                print("\t".join(row))
    except (OSError, CqlError, struct.error) as e:
        sys.stderr.write("cqlprobe: %s:%d: %s\n" % (host, port, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
