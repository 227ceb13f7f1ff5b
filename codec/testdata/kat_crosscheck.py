#!/usr/bin/env python3
"""Recompute the codec known-answer vectors of ../kat_test.go (and of
docs/PROTOCOL.md §9.2) from the spec alone, with pyca/cryptography instead of
Go, and compare. Run from anywhere: python3 codec/testdata/kat_crosscheck.py
"""
import os, re, struct, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

def seq(start, n):
    return bytes((start + i) & 0xFF for i in range(n))

MKE, MTE, CLIENT_ID = seq(0x00, 32), seq(0x20, 32), seq(0x40, 40)
T = 1735689600000  # 2025-01-01T00:00:00Z in Unix ms
RESPONDER = 0x5EED1234

def header(kind, mode, counter, ms):  # §4: version, kind, mode, flags, counter, then
    tail = struct.pack(">q", ms) if kind == 1 else struct.pack(">II", RESPONDER, 0)  # time | responder, 0
    return bytes([1, kind, mode, 0]) + struct.pack(">Q", counter) + tail

def nonce(kind, counter):  # §4.1: kind || 0 0 0 || counter, or responder || counter
    prefix = bytes([kind, 0, 0, 0]) if kind == 1 else struct.pack(">I", RESPONDER)
    return prefix + struct.pack(">Q", counter)

def mte_key(kind, counter):  # §4.1: HKDF-Expand(base, "pqrelay v1 mte" || kind || counter)
    info = b"pqrelay v1 mte" + bytes([kind]) + struct.pack(">Q", counter)
    return HKDFExpand(hashes.SHA256(), 32, info).derive(MTE)

def request_env():  # §5.1
    return (bytes([3]) + b"GET" + struct.pack(">I", 8) + b"/v1/ping" + struct.pack(">H", 1)
            + struct.pack(">H", 6) + b"accept" + struct.pack(">I", 16) + b"application/json"
            + struct.pack(">I", 0))

def response_env():  # §5.2
    return (struct.pack(">HH", 200, 1) + struct.pack(">H", 12) + b"content-type"
            + struct.pack(">I", 10) + b"text/plain" + struct.pack(">I", 4) + b"pong")

def pad(env):  # §5.3: both envelopes fall in the 256-byte bucket
    return env + bytes(256 - len(env))

def seal(key, kind, mode, ms, env, bind=bytes(16)):  # §4.2: ad = header || client id || bind
    h = header(kind, mode, 1, ms)
    return h + AESGCM(key).encrypt(nonce(kind, 1), env, h + CLIENT_ID + bind)

req_mke = seal(MKE, 1, 1, T, request_env())
req_mte = seal(mte_key(1, 1), 1, 2, T, pad(request_env()))
mine = {
    "requestEnv": request_env(),
    "responseEnv": response_env(),
    "requestMKE": req_mke,
    "responseMKE": seal(MKE, 2, 1, None, response_env(), req_mke[-16:]),
    "mteKeyRequest1": mte_key(1, 1),
    "mteKeyResponse1": mte_key(2, 1),
    "requestMTE": req_mte,
    "responseMTE": seal(mte_key(2, 1), 2, 2, None, pad(response_env()), req_mte[-16:]),
}

src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kat_test.go")).read()
body = src[src.index("var codecKAT"):]
bad = 0
for name, value in mine.items():
    m = re.search(r"\b" + name + r':\s*((?:"[0-9a-f]*"\s*\+?\s*)+)', body)
    want = bytes.fromhex("".join(re.findall(r'"([0-9a-f]*)"', m.group(1))))
    ok = want == value
    bad += not ok
    print(("ok   " if ok else "DIFF ") + name + ("" if ok else "  mine: " + value.hex()))
sys.exit(1 if bad else 0)
