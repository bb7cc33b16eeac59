"""Independent verifier of an AgentIdP organization's audit log.

Its own RFC 9162 hashing and proof verification (written from the RFC, sharing nothing with the
server), the C2SP signed-note format parsed by hand, and Ed25519 from `cryptography`. Reads the
server over HTTP; prints one JSON summary line and exits non-zero on the first failure.

usage: verify_audit_log.py BASE_URL TOKEN SAVED_CHECKPOINT_FILE
"""

import base64
import hashlib
import json
import sys

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    """RFC 9162 2.1.1, recursively, over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf, index, size, path, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, proof, first_hash, second_hash):
    """RFC 9162 2.1.4.2."""
    if first == second:
        return not proof and first_hash == second_hash
    if first == 0 or not proof or first > second:
        return False
    if first & (first - 1) == 0:
        proof = [first_hash] + list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def parse_verifier_key(text):
    name, key_hash, key = text.strip().split("+", 2)
    raw = base64.b64decode(key, validate=True)
    assert len(raw) == 33 and raw[0] == 1, "not an Ed25519 verifier key"
    digest = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    assert digest.hex() == key_hash, "verifier key hash mismatch"
    return name, digest, Ed25519PublicKey.from_public_bytes(raw[1:])


def verify_note(note, key):
    """C2SP signed-note + tlog-checkpoint; returns (origin, size, root) or raises."""
    name, key_id, public = key
    body, sep, signatures = note.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise ValueError("not a signed note")
    body += "\n"
    for line in signatures[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise ValueError("bad signature line")
        line_name, text = line[2:].split(" ", 1)
        blob = base64.b64decode(text, validate=True)
        # Only the canonical encoding: Python ignores the unused low bits of the last character.
        if base64.b64encode(blob).decode() != text:
            raise ValueError("non-canonical base64 in a signature line")
        if line_name != name or blob[:4] != key_id:
            continue
        try:
            public.verify(blob[4:], body.encode())
        except InvalidSignature:
            continue
        origin, size, root = body[:-1].split("\n")[:3]
        return origin, int(size), base64.b64decode(root, validate=True)
    raise ValueError("no valid signature")


def flipped(data: bytes, i=0) -> bytes:
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]


def main():
    base, token, saved_file = sys.argv[1:4]
    auth = {"Authorization": f"Bearer {token}"}
    get = lambda path: requests.get(base + path, headers=auth, timeout=30)

    key_text = requests.get(base + "/v1/audit/checkpoints/key", timeout=30).text
    key = parse_verifier_key(key_text)
    saved_note = open(saved_file, encoding="utf-8").read()
    _, saved_size, saved_root = verify_note(saved_note, key)
    response = get("/v1/audit/checkpoints/latest")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    latest_note = response.text
    origin, size, root = verify_note(latest_note, key)

    # A flipped byte anywhere in the note's text must fail its signature (or its parsing).
    for i in range(len(latest_note)):
        if latest_note[i] == "\n":
            continue
        broken = latest_note[:i] + chr(ord(latest_note[i]) ^ 1) + latest_note[i + 1 :]
        try:
            verify_note(broken, key)
        except Exception:
            continue
        raise AssertionError(f"a note with byte {i} flipped verified")

    events = [json.loads(line) for line in get("/v1/audit/export").text.splitlines()]
    events = [e for e in events if e["seq"] <= size]
    assert [e["seq"] for e in events] == list(range(1, size + 1)), "the export is not the whole tree"
    leaves = [leaf_hash(bytes.fromhex(e["hash"])) for e in events]
    assert mth(leaves) == root, "the checkpoint's root is not the tree of the exported events"
    assert mth(leaves[:saved_size]) == saved_root, "the saved checkpoint's root does not match"

    for e in events:
        proof = get(f"/v1/audit/events/{e['seq']}/proof?size={size}").json()
        assert proof["leaf_index"] == e["seq"] - 1 and proof["tree_size"] == size, proof
        path = [base64.b64decode(p, validate=True) for p in proof["audit_path"]]
        leaf = leaf_hash(bytes.fromhex(e["hash"]))
        assert verify_inclusion(leaf, e["seq"] - 1, size, path, root), f"inclusion of {e['seq']}"
        # A flipped byte in the event's hash, or in any element of the proof, must fail.
        assert not verify_inclusion(leaf_hash(flipped(bytes.fromhex(e["hash"]))), e["seq"] - 1, size, path, root)
        for j in range(len(path)):
            bad = path[:j] + [flipped(path[j], j % 32)] + path[j + 1 :]
            assert not verify_inclusion(leaf, e["seq"] - 1, size, bad, root), f"flipped proof of {e['seq']}"

    consistency = get(f"/v1/audit/consistency?from={saved_size}&to={size}").json()
    proof = [base64.b64decode(p, validate=True) for p in consistency["proof"]]
    assert verify_consistency(saved_size, size, proof, saved_root, root), "saved -> latest"
    for j in range(len(proof)):
        bad = proof[:j] + [flipped(proof[j])] + proof[j + 1 :]
        assert not verify_consistency(saved_size, size, bad, saved_root, root), "flipped consistency"
    # Every earlier size is consistent with the latest, too.
    for m in range(1, size + 1):
        c = get(f"/v1/audit/consistency?from={m}&to={size}").json()
        p = [base64.b64decode(x, validate=True) for x in c["proof"]]
        assert verify_consistency(m, size, p, mth(leaves[:m]), root), f"consistency {m} -> {size}"

    print(json.dumps({"origin": origin, "size": size, "saved_size": saved_size, "events_proved": len(events)}))


if __name__ == "__main__":
    main()
