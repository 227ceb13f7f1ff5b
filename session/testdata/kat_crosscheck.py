#!/usr/bin/env python3
"""Recompute the deterministic session known-answer vectors of ../kat_test.go
(docs/PROTOCOL.md §9.1) from the spec alone, with Python and
pyca/cryptography instead of Go, and compare: long-term keys (§3.1), client
id (§3.3), key schedule (§3.4) and the sealed-session vector (§7).
Run from anywhere: python3 session/testdata/kat_crosscheck.py
"""
import base64, hashlib, hmac, os, re, struct, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

SECRET = b"pqrelay known-answer CLIENT_ID_SECRET 0123456789"
KAT_ID = bytes(range(16))
KAT_NOW = 1735689600  # 2025-01-01T00:00:00Z

def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()

def hkdf_expand(prk, info, n=32):
    return HKDFExpand(hashes.SHA256(), n, info).derive(prk)

# §3.1
prk = hkdf_extract(b"pqrelay v1 client id secret", SECRET)
psk = hkdf_expand(prk, b"pqrelay v1 psk")
cid_key = hkdf_expand(prk, b"pqrelay v1 client id")
at_rest = hkdf_expand(prk, b"pqrelay v1 at rest")

# §3.3
body = KAT_ID + struct.pack(">Q", KAT_NOW)
client_id = body + hmac.new(cid_key, b"pqrelay v1 client id" + body, hashlib.sha256).digest()[:16]
client_id_text = base64.urlsafe_b64encode(client_id).rstrip(b"=").decode()

# §3.4
th = hashlib.sha256(b"request" + b"response").digest()
prk_s = hkdf_extract(psk, bytes(range(0x80, 0xA0)))
labels = [b"pqrelay v1 request mke", b"pqrelay v1 request mte",
          b"pqrelay v1 response mke", b"pqrelay v1 response mte"]
keys = [hkdf_expand(prk_s, l + th) for l in labels]

mine = {
    "psk": psk, "clientIDKey": cid_key, "atRestKey": at_rest,
    "clientID": client_id, "transcriptHash": th,
}

src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kat_test.go")).read()
src = src[src.index("var sessionKAT"):src.index("func unhex")]

def hexval(name):
    m = re.search(r"\b" + name + r':\s*((?:"[0-9a-f]*"\s*\+?\s*(?://[^\n]*)?\s*)+)', src)
    return bytes.fromhex("".join(re.findall(r'"([0-9a-f]*)"', m.group(1))))

bad = 0
def report(name, ok):
    global bad
    bad += not ok
    print(("ok   " if ok else "DIFF ") + name)

for name, value in mine.items():
    report(name, hexval(name) == value)
report("clientIDText", re.search(r'clientIDText:\s*"([^"]*)"', src).group(1) == client_id_text)
want_keys = re.findall(r'"([0-9a-f]{64})", // (request|response) (MKE|MTE)', src)
report("keys", [bytes.fromhex(k) for k, _, _ in want_keys] == keys)

# §7: the sealed session opens to testSession(katID, katNow, katNow+1h): suite
# P-256 hybrid, keys k[i][j] = 0x40*i + j.
blob = hexval("sealedSession")
state = AESGCM(at_rest).decrypt(blob[:12], blob[12:], b"pqrelay v1 session at rest" + KAT_ID)
ms = KAT_NOW * 1000
want_state = (bytes([1, 2]) + client_id + struct.pack(">qq", ms, ms + 3600_000)
              + bytes((0x40 * i + j) & 0xFF for i in range(4) for j in range(32)))
report("sealedSession", state == want_state)
sys.exit(1 if bad else 0)
