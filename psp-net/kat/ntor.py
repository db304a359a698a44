import hmac, hashlib
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives import serialization as s
raw=lambda k: k.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
P=b"psp-ntor-x25519-sha256-1"
H=lambda key,msg: hmac.new(key,msg,hashlib.sha256).digest()
b=X25519PrivateKey.from_private_bytes(bytes([0x22])*32); B=raw(b.public_key())
x=X25519PrivateKey.from_private_bytes(bytes([0x33])*32); X=raw(x.public_key())
y=X25519PrivateKey.from_private_bytes(bytes([0x44])*32); Y=raw(y.public_key())
ID=bytes([0x11])*32
si=y.exchange(X25519PublicKey.from_public_bytes(X))+b.exchange(X25519PublicKey.from_public_bytes(X))+ID+B+X+Y+P
seed=H(P+b":key_extract",si); verify=H(P+b":verify",si)
auth=H(P+b":mac",verify+ID+B+Y+X+P+b"Server")
# HKDF expand
okm=b"";t=b"";i=1
while len(okm)<64:
    t=H(seed,t+P+b":key_expand"+bytes([i])); okm+=t; i+=1
print("B",B.hex());print("X",X.hex());print("Y",Y.hex());print("AUTH",auth.hex());print("KF",okm[:32].hex());print("KB",okm[32:64].hex())
