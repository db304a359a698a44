#!/usr/bin/env python3
"""Writes a few well-formed seed inputs for every fuzz target into psp-net/fuzz/corpus/<target>/,
so the fuzzers start from values that decode instead of having to discover every length field
first (from an empty corpus, `cell` never found the one accepted length, 512, in 20 million runs).
Signatures are zeros: the targets re-sign what decodes with real keys when they need to.

The stream_wire, media_wire and usage_wire targets also get the stored inputs of
psp-net/tests/fuzz_corpus/<target>/: encodings made by the crates' own encoders, real signatures
included.

Usage: python3 psp-net/fuzz/seeds.py [corpus-dir]   (default: corpus/ next to this file)
Existing files are left alone; a seed's name is its content's SHA-1, as libFuzzer names them.
"""
import hashlib
import itertools
import os
import struct
import sys

u8 = lambda v: struct.pack(">B", v)
u16 = lambda v: struct.pack(">H", v)
u32 = lambda v: struct.pack(">I", v)
u64 = lambda v: struct.pack(">Q", v)
SIG = bytes(64)


def record(kind, topic0, value, issued=1_000_000, expires=1_000_600, owner=b"\x11", pub=b"\x22"):
    topic = bytes([topic0]) + bytes(31)
    return (u8(1) + u8(kind) + owner * 32 + topic + pub * 32 + u64(7) + u64(issued)
            + u64(expires) + u16(len(value)) + value + SIG + SIG)


def addresses(addrs):
    out = u8(len(addrs))
    for a in addrs:
        out += u8(len(a)) + a
    return out


def entries(nodes):
    out = u32(len(nodes))
    for n, flags, addrs in nodes:
        out += bytes([n]) * 32 + u8(flags) + addresses(addrs)
    return out


def directory(period, nodes):
    return b"psp/directory/consensus/v1" + u64(period) + u64(100) + u64(200) + entries(nodes)


NODES = [(1, 1, [b"/ip4/10.0.0.1/tcp/30444"]), (2, 3, [b"/ip4/10.0.0.2/tcp/30444", b"/dns/b/tcp/1"]),
         (3, 31, [])]


def cell(circ, cmd, body):
    return (u32(circ) + u8(cmd) + body + bytes(512))[:512]


NTOR_CLIENT = u16(1) + u16(96) + bytes([1]) * 32 + bytes([2]) * 32 + bytes([3]) * 32
NTOR_SERVER = u16(64) + bytes([4]) * 32 + bytes([5]) * 32


def relay(cmd, sid, body):
    return u8(cmd) + u16(sid) + u16(len(body)) + body


def seeds():
    yield "cell", cell(1, 1, NTOR_CLIENT)
    yield "cell", cell(0x80000001, 2, NTOR_SERVER)
    yield "cell", cell(7, 3, bytes(range(256)) * 2)
    yield "cell", cell(7, 4, bytes(507))
    yield "cell", cell(9, 5, u8(1))

    yield "relay_msg", relay(1, 1, b"echo")
    yield "relay_msg", relay(2, 1, b"")
    yield "relay_msg", relay(3, 2, b"some data") + bytes(20)
    yield "relay_msg", relay(4, 2, u8(1))
    yield "relay_msg", relay(5, 0, NTOR_CLIENT)
    yield "relay_msg", relay(6, 0, NTOR_SERVER)
    yield "relay_msg", relay(7, 0, b"")

    yield "handshake", NTOR_CLIENT
    yield "handshake", NTOR_SERVER

    yield "dht_record", record(1, 0x80, b"presence at node 2")
    yield "dht_record", record(2, 0x81, b"")
    yield "dht_record", record(3, 0xc6, b"group" * 10)
    yield "dht_record", record(1, 0x90, bytes(300), issued=5, expires=3000)

    yield "directory", bytes([9]) * 32 + u64(5) + u8(3) + addresses([b"/ip4/1.2.3.4/tcp/1"]) + u64(17) + SIG
    yield "directory", u64(5) + bytes([9]) * 32 + entries(NODES) + SIG
    yield "directory", directory(5, NODES)
    yield "directory", directory(7, NODES[:1]) + u16(2) + bytes([4]) * 32 + SIG + bytes([5]) * 32 + SIG
    yield "directory", u64(5) + bytes([8]) * 32 + bytes([9]) * 32 + SIG

    for k in range(8):
        yield "cert", u8(1) + bytes([1]) * 32 + bytes([(k & 3) | 4 | ((k & 4) << 1)]) + bytes(31) + bytes([3]) * 32 + u64(1_000_000) + SIG
    yield "cert", (u8(1) + u64(42) + bytes([1]) * 32 + u8(0) + bytes([2]) * 32 + u64(100) + u64(200)
                   + bytes([3]) * 32 + SIG)

    # relay_state: op, pick, then the op's bytes (see checks/relay_state.rs).
    begin_echo = bytes([1, 0]) + u16(1) + u8(0)
    data = bytes([1, 0]) + u16(1) + u8(2) + u16(5) + b"hello"
    extend = bytes([9, 0])
    b_back = bytes([3, 0]) + b"\x03\x00\x01\x00\x02hi" + bytes(80)
    to_b = bytes([0, 0]) + u16(12) + b"\x01\x00\x01\x00\x04echo\x00\x00\x00"
    yield "relay_state", begin_echo + data
    yield "relay_state", extend + to_b + b_back
    yield "relay_state", extend + bytes([0x83, 0]) + bytes(600)
    yield "relay_state", bytes([8, 1]) + begin_echo + bytes([7, 0]) + u16(5000) + data * 3
    yield "relay_state", bytes([4, 0]) + bytes(512) + bytes([6, 3])


def frame2(body):
    """A psp-stream (psp-rendezvous) frame: 2-byte body length, body."""
    return u16(len(body)) + body


def stream_record(count=2):
    return (u8(1) + bytes([0x31]) * 32 + u8(1) + bytes([0x32]) * 32 + u64(1_000_000)
            + u64(1_000_600) + u8(count) + b"".join(bytes([0x40 + i]) * 32 for i in range(count))
            + SIG)


def receipt():
    # version 2, key id, epoch, lifetime, bitrate class (2: standard), distribution nodes,
    # landing, spend id, prefix, signature length and signature (RSA-2048).
    return (u8(2) + bytes([4]) * 32 + u64(9) + u32(3_600) + u8(2) + u8(2) + bytes([5]) * 32
            + bytes([6]) * 32 + bytes([7]) * 32 + u16(256) + bytes(256))


def stream_seeds():
    # psp-stream: oracle (version 1) and landing messages, the stream record.
    yield frame2(u8(1) + u8(1) + u16(186) + bytes([0x0c]) * 186 + bytes([4]) * 32 + u16(256)
                 + bytes([0x0b]) * 256 + SIG)
    yield frame2(u8(1) + u8(2) + u16(256) + bytes([0x0e]) * 256)
    yield frame2(u8(1) + u8(3) + u8(7))
    r = receipt()
    yield frame2(u8(1) + u8(1) + u16(len(r)) + r + u8(1) + u8(2) + bytes([2]) * 32 + bytes([3]) * 32)
    rec = stream_record()
    yield frame2(u8(1) + u8(2) + bytes([0x31]) * 32 + u16(len(rec)) + rec)
    yield frame2(u8(1) + u8(3) + u8(11))
    yield rec
    yield stream_record(32)
    yield r


def frame4(ty, body):
    """A psp-media link message: 4-byte length of type and body, type, body."""
    return u32(1 + len(body)) + u8(ty) + body


LOAD = bytes([0x61]) * 32 + bytes([1]) * 32 + u32(3) + u64(250_000) + u64(1_000_000) + u64(1_800_000_000_000) + SIG


def media_seeds():
    yield frame4(1, bytes([1]) * 32 + bytes([2]) * 32)
    yield frame4(2, u8(0x15) + bytes(29))
    yield frame4(3, LOAD)
    yield frame4(4, u8(2))
    yield frame4(5, u8(2) + bytes([3]) * 32 + bytes([4]) * 32)
    yield frame4(6, u8(4) + b"full")
    yield LOAD
    yield u8(0x15) + bytes(29)
    yield frame4(4, u8(1)) + frame4(2, u8(0x08) + bytes(20)) + frame4(3, LOAD)


GENESIS = bytes([0x9e]) * 32
NOW = 1_800_000_000


def ticket(valid_from=NOW, valid_until=NOW + 3_600):
    return (u8(1) + GENESIS + bytes([0x5a]) * 32 + bytes([0x0a]) * 32 + u64(valid_from)
            + u64(valid_until) + SIG)


TOKEN = u8(1) + bytes([9]) * 32 + u64(7) + bytes([0x5a]) * 32 + bytes([1]) * 32 + u16(256) + bytes(256)


def usage_seeds():
    # psp-usage: solution, ticket, admission, consumer token, relay and client halves. The
    # usage_wire check re-signs tickets and halves with real keys.
    yield u8(1) + bytes([0xb1]) * 32 + bytes([0x5e]) * 32 + u64(17)
    yield ticket()
    yield u8(1) + ticket() + bytes([0x5e]) * 32 + SIG
    yield u8(1) + ticket(NOW, NOW + 90_000) + bytes([0x5e]) * 32 + SIG
    yield TOKEN
    usage = u64(40_000) + u64(NOW * 1_000) + u64(NOW * 1_000 + 9_001)
    yield u8(1) + u8(1) + u32(7) + bytes([0x5a]) * 32 + bytes([0x7e]) * 32 + usage + SIG + ticket()
    yield (u8(1) + u8(2) + u32(7) + bytes([0x5e]) * 32 + bytes([0x7e]) * 32 + usage + SIG
           + u16(len(TOKEN)) + TOKEN)


def stored_inputs(target):
    """The stored inputs of psp-net/tests/fuzz_corpus/<target>/ (made by the crates' own
    encoders, with real signatures), if any."""
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz_corpus", target)
    if os.path.isdir(d):
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                yield f.read()


def more_seeds():
    for target, gen in (("stream_wire", stream_seeds), ("media_wire", media_seeds),
                        ("usage_wire", usage_seeds)):
        for data in gen():
            yield target, data
        for data in stored_inputs(target):
            yield target, data


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    n = 0
    for target, data in itertools.chain(seeds(), more_seeds()):
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, hashlib.sha1(data).hexdigest())
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            n += 1
    print(f"{n} new seed files under {root}")


if __name__ == "__main__":
    main()
