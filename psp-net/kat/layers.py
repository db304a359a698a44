"""Independent reference of psp-net's layer crypto (README "Integrity design").

Prints the known-answer vectors checked in by src/crypto/tests.rs:
a 3-hop forward cell (per-hop ChaCha20-Poly1305, shift + zero filler, client-side filler
precomputation) and a 3-hop backward cell (seal at hop 3, ChaCha20 masks at hops 2 and 1).
Needs the Python `cryptography` package.
"""
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

BODY, TAG = 507, 16
L = BODY - TAG


def nonce(domain, ctr):
    return bytes([domain, 0, 0, 0]) + ctr.to_bytes(8, "big")


def keystream(key, n12, offset, length):
    block, skip = divmod(offset, 64)
    c = Cipher(algorithms.ChaCha20(key, block.to_bytes(4, "little") + n12), None).encryptor()
    return c.update(bytes(skip + length))[skip:]


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def seal(key, n12, pt):
    out = ChaCha20Poly1305(key).encrypt(n12, pt, b"")
    return out[-16:] + out[:-16]  # tag || ct


def wrap_forward(fwd_keys, ctr, msg, pad):
    k = len(fwd_keys)
    tail = b""
    for j in range(k - 1):
        off = L - len(tail)
        tail = xor(tail, keystream(fwd_keys[j], nonce(1, ctr), 64 + off, len(tail))) + bytes(16)
    start = L - len(tail)
    pt = msg + pad[: start - len(msg)]
    pt += xor(tail, keystream(fwd_keys[-1], nonce(1, ctr), 64 + start, len(tail)))
    for j in reversed(range(k)):
        pt = seal(fwd_keys[j], nonce(1, ctr), pt[:L])
    return pt


fwd = [bytes([0xA1 + j]) * 32 for j in range(3)]
bwd = [bytes([0xB1 + j]) * 32 for j in range(3)]
pad = keystream(bytes([0x55]) * 32, bytes(12), 0, 1024)
cell = wrap_forward(fwd, 0, b"hello onion", pad)
print("FORWARD3", cell.hex())

pt = (b"pong" + bytes(L))[:L]
body = seal(bwd[2], nonce(2, 0), pt)
for j in (1, 0):
    body = xor(body, keystream(bwd[j], nonce(3, 0), 0, BODY))
print("BACKWARD3", body.hex())
