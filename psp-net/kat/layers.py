"""Independent reference of psp-net's layer crypto (README "Integrity design").

Prints the known-answer vectors checked in by onion/src/crypto/tests.rs:
a 3-hop forward cell (per-hop AES-256-GCM, shift + zero filler, client-side filler
precomputation) and a 3-hop backward cell (ct || tag sealed at hop 3, AES-256-CTR masks at hops 2 and 1),
then the second cell (counter 1) of each circuit.
Needs the Python `cryptography` package (AESGCM, AES-CTR, ChaCha20 for the client padding).
"""
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BODY, TAG = 507, 16
L = BODY - TAG


def nonce(domain, ctr):
    return bytes([domain, 0, 0, 0]) + ctr.to_bytes(8, "big")


def gcm_keystream(key, n12, offset, length):
    """The keystream GCM encrypts with: AES-256-CTR from counter block n12 || 2 (J0 + 1)."""
    block, skip = divmod(offset, 16)
    iv = n12 + (2 + block).to_bytes(4, "big")
    c = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return c.update(bytes(skip + length))[skip:]


def chacha_keystream(key, n12, length):
    c = Cipher(algorithms.ChaCha20(key, bytes(4) + n12), None).encryptor()
    return c.update(bytes(length))


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def seal(key, n12, pt):
    """A forward layer: tag || ct."""
    out = AESGCM(key).encrypt(n12, pt, b"")
    return out[-16:] + out[:-16]


def wrap_forward(fwd_keys, ctr, msg, pad):
    k = len(fwd_keys)
    tail = b""
    for j in range(k - 1):
        off = L - len(tail)
        tail = xor(tail, gcm_keystream(fwd_keys[j], nonce(1, ctr), off, len(tail))) + bytes(16)
    start = L - len(tail)
    pt = msg + pad[: start - len(msg)]
    pt += xor(tail, gcm_keystream(fwd_keys[-1], nonce(1, ctr), start, len(tail)))
    for j in reversed(range(k)):
        pt = seal(fwd_keys[j], nonce(1, ctr), pt[:L])
    return pt


def backward(bwd_keys, ctr, msg):
    body = AESGCM(bwd_keys[-1]).encrypt(nonce(2, ctr), (msg + bytes(L))[:L], b"")  # ct || tag
    for j in reversed(range(len(bwd_keys) - 1)):
        body = xor(body, gcm_keystream(bwd_keys[j], nonce(3, ctr), 0, BODY))
    return body


fwd = [bytes([0xA1 + j]) * 32 for j in range(3)]
bwd = [bytes([0xB1 + j]) * 32 for j in range(3)]
pad = chacha_keystream(bytes([0x55]) * 32, bytes(12), 1024)
print("FORWARD3", wrap_forward(fwd, 0, b"hello onion", pad).hex())
print("BACKWARD3", backward(bwd, 0, b"pong").hex())
# A second cell on each circuit (counter 1): the padding stream continues where cell 0 left it.
used = L - 16 * 2 - len(b"hello onion")
print("FORWARD3_CTR1", wrap_forward(fwd, 1, b"again", pad[used:]).hex())
print("BACKWARD3_CTR1", backward(bwd, 1, b"pong again").hex())
