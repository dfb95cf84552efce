#!/usr/bin/env python3
"""tandem: rebuilds the fuzz seed corpora in tests/fuzz/corpus/<target>/ from tests/data/vectors.

  python3 tests/fuzz/corpus/make_seeds.py        (standard library only)

Each seed starts with the mode byte(s) its target reads (see the target's header comment):
  fuzz_frame     [limit selector] + frames          (v3/v4 captures, and v5's unframed handshake)
  fuzz_segment   [mode][split] + segments           (v5 captures after the handshake, driver segments)
  fuzz_compress  [algorithm] + one compressed body  (lz4 / snappy bodies of flagged v4 frames)
"""
import glob
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
VEC = os.path.join(ROOT, "tests", "data", "vectors")
MAX_SEED = 16384  # bytes; libFuzzer's default -max_len is derived from the corpus


def read_hex(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(bytes.fromhex(line))
    return b"".join(out)


def frames(data):
    """Splits unframed CQL bytes into (header dict, raw frame) until the bytes run out."""
    off = 0
    while off + 9 <= len(data):
        version, flags, stream, opcode, length = struct.unpack(">BBhBi", data[off:off + 9])
        if off + 9 + length > len(data):
            break
        yield dict(version=version, flags=flags, opcode=opcode, length=length), data[off:off + 9 + length]
        off += 9 + length


def unframed_prefix(data, response):
    """Length of a v5 connection's unframed part: through STARTUP (client) or READY/AUTHENTICATE (server)."""
    off = 0
    for h, raw in frames(data):
        off += len(raw)
        if (not response and h["opcode"] == 0x01) or (response and h["opcode"] in (0x02, 0x03)):
            return off
    return off


class Corpus:
    def __init__(self, target):
        self.dir = os.path.join(HERE, target)
        os.makedirs(self.dir, exist_ok=True)
        for old in glob.glob(os.path.join(self.dir, "seed-*")):
            os.remove(old)
        self.count = 0

    def add(self, name, data):
        data = data[:MAX_SEED]
        digest = hashlib.sha1(data).hexdigest()[:10]
        with open(os.path.join(self.dir, "seed-%s-%s" % (name, digest)), "wb") as f:
            f.write(data)
        self.count += 1


def main():
    ff, fs, fc = Corpus("fuzz_frame"), Corpus("fuzz_segment"), Corpus("fuzz_compress")
    for path in sorted(glob.glob(os.path.join(VEC, "*.hex"))):
        name = os.path.basename(path)[:-4]
        data = read_hex(path)
        if name.startswith("drv-seg-"):
            lz4 = 1 if "lz4" in name else 0
            fs.add(name + "-crc", bytes([0x02 | lz4, 0]) + data)
            fs.add(name + "-nocrc-split", bytes([0x04 | lz4 | 0x20, 3]) + data)
            continue
        response = name.endswith(".s2c")
        if name.startswith("v5-"):
            cut = unframed_prefix(data, response)
            ff.add(name + "-handshake", b"\x03" + data[:cut])
            lz4 = 1 if "lz4" in name else 0
            fs.add(name, bytes([0x02 | lz4, 0]) + data[cut:])
            fs.add(name + "-nocrc", bytes([0x04 | lz4, 5]) + data[cut:])
            continue
        ff.add(name, b"\x03" + data)
        for i, (h, raw) in enumerate(frames(data)):
            ff.add("%s-%d" % (name, i), b"\x02" + raw)
            if h["flags"] & 0x01 and ("lz4" in name or "snappy" in name):
                fc.add("%s-%d" % (name, i), (b"\x00" if "lz4" in name else b"\x01") + raw[9:])
    # small hand-made bodies so the compress target has both algorithms even without captures
    fc.add("lz4-hello", b"\x00" + bytes.fromhex("000000055068656c6c6f"))
    fc.add("snappy-hello", b"\x01" + bytes.fromhex("051068656c6c6f"))
    fc.add("lz4-match", b"\x00" + bytes.fromhex("00000011356162630300506162636162"))
    print("seeds: fuzz_frame %d, fuzz_segment %d, fuzz_compress %d" % (ff.count, fs.count, fc.count))


if __name__ == "__main__":
    main()
