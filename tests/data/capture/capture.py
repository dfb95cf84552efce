#!/usr/bin/env python3
"""tandem: a small recording TCP relay for making protocol test vectors (standard library only).

It listens on a local port, relays every connection to a real node and records each direction's
bytes; it runs a command (the driver script) with TDM_CAPTURE_HOST / TDM_CAPTURE_PORT pointing at
the relay, and when the command has exited and every relayed connection has closed, writes hex files:

  capture.py --upstream 127.0.0.2:9042 --out DIR --name v4-lz4 [--conn 2] -- python drive.py ...

  --conn N   keep only the Nth connection accepted (1-based), written as NAME.c2s.hex / NAME.s2c.hex
  (default)  keep all, written as NAME.cN.c2s.hex / NAME.cN.s2c.hex

Hex files hold the raw bytes, 32 per line, after '#' comment lines saying what they are. tandem's
tests read them with tdm_test_hex_file() (tests/lib/testlib.h).
"""
import argparse
import os
import socket
import subprocess
import sys
import threading
import time


class Relay:
    def __init__(self, listen_host, listen_port, upstream):
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((listen_host, listen_port))
        self.sock.listen(16)
        self.addr = self.sock.getsockname()
        self.conns = []  # [c2s bytearray, s2c bytearray, done Event] in accept order
        self.lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return  # listener closed
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError as e:
                print("capture: cannot reach %s:%d: %s" % (self.upstream + (e,)), file=sys.stderr)
                client.close()
                continue
            rec = [bytearray(), bytearray(), threading.Event()]
            with self.lock:
                self.conns.append(rec)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            left = [2]

            def pump(src, dst, buf, rec=rec, left=left):
                while True:
                    try:
                        data = src.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    buf += data
                    try:
                        dst.sendall(data)
                    except OSError:
                        break
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                with self.lock:
                    left[0] -= 1
                    if left[0] == 0:
                        src.close()
                        dst.close()
                        rec[2].set()

            threading.Thread(target=pump, args=(client, server, rec[0]), daemon=True).start()
            threading.Thread(target=pump, args=(server, client, rec[1]), daemon=True).start()

    def close(self, timeout):
        self.sock.close()
        deadline = time.time() + timeout
        for rec in list(self.conns):
            rec[2].wait(max(0.0, deadline - time.time()))
        return all(rec[2].is_set() for rec in self.conns)


def write_hex(path, data, comment):
    with open(path, "w") as f:
        for line in comment:
            f.write("# %s\n" % line)
        for i in range(0, len(data), 32):
            f.write(data[i:i + 32].hex() + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the real node")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (default: a free port)")
    ap.add_argument("--out", required=True, help="directory for the hex files")
    ap.add_argument("--name", required=True, help="file name stem, e.g. v4-lz4")
    ap.add_argument("--conn", type=int, default=0, help="keep only this connection (1-based accept order)")
    ap.add_argument("--note", default="", help="extra comment line for the files")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run against the relay")
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("a command to run is required (after --)")
    uh, up = a.upstream.rsplit(":", 1)
    lh, lp = a.listen.rsplit(":", 1)
    relay = Relay(lh, int(lp), (uh, int(up)))
    env = dict(os.environ, TDM_CAPTURE_HOST=relay.addr[0], TDM_CAPTURE_PORT=str(relay.addr[1]))
    rc = subprocess.call(cmd, env=env)
    if not relay.close(timeout=15):
        print("capture: some connections did not close; writing what was recorded", file=sys.stderr)
    if rc != 0:
        print("capture: command exited with %d; nothing written" % rc, file=sys.stderr)
        return rc
    os.makedirs(a.out, exist_ok=True)
    picked = list(enumerate(relay.conns, 1))
    if a.conn:
        if a.conn > len(picked):
            print("capture: only %d connection(s) recorded" % len(picked), file=sys.stderr)
            return 1
        picked = [picked[a.conn - 1]]
    for idx, (c2s, s2c, _) in picked:
        stem = a.name if a.conn else "%s.c%d" % (a.name, idx)
        for direction, data in (("c2s", c2s), ("s2c", s2c)):
            comment = ["%s, connection %d of %d, %s (%s), %d bytes" % (
                a.name, idx, len(relay.conns), direction,
                "client to server" if direction == "c2s" else "server to client", len(data))]
            if a.note:
                comment.append(a.note)
            comment.append("recorded by tests/data/capture/capture.py; see tests/data/capture/README.md")
            write_hex(os.path.join(a.out, "%s.%s.hex" % (stem, direction)), bytes(data), comment)
        print("capture: %s: c2s %d bytes, s2c %d bytes" % (stem, len(c2s), len(s2c)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
