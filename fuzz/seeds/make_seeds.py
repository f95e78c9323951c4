#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target into seeds/<target>/, in the targets' input formats
(see the comment at the top of each fuzz_targets/<target>.rs). Run from anywhere."""

import base64, hashlib, hmac, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = b"the fuzz targets' secret, 32b+!!"
FAR = 4102444800  # 2100-01-01
BARE_HEADER = "eyJhbGciOiJIUzI1NiJ9"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: str, claims: dict) -> str:
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


def cut(part: bytes) -> bytes:
    assert len(part) < 256
    return bytes([len(part)]) + part


def write(target: str, seeds: dict) -> None:
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(HERE, target, name), "wb") as f:
            f.write(data)


GET, POST = 0, 3
write("credential", {
    # flags0 = auth mode | user mode << 3 | method << 5; flags1 = path | twice << 3 | user << 4
    "valid_header_form": bytes([2 | 2 << 3 | GET << 5, 0]) + cut(b"") + cut(b""),
    "valid_suffix_form": bytes([2 | GET << 5, 0]) + cut(b":bob@acme.test") + cut(b""),
    "both_forms": bytes([2 | 1 << 3, 0]) + cut(b":Bob@acme.test") + cut(b"bob@acme.test"),
    "read_only_post": bytes([3 | 2 << 3 | POST << 5, 0]) + cut(b"") + cut(b""),
    "cards_only_users": bytes([4 | 2 << 3, 1]) + cut(b"") + cut(b""),
    "revoked": bytes([5 | 2 << 3, 0]) + cut(b"") + cut(b""),
    "unknown_uuid": bytes([6 | 2 << 3, 0]) + cut(b"9e0b2b17-5a76-44ef-b726-09d556b04318") + cut(b""),
    "raw_authorization": bytes([1, 0]) + cut(b"bEaReR GINT:IMP:9e0b2b17-5a76-44ef-b726-09d556b04318:ada") + cut(b""),
    "jwt_with_user": bytes([7 | 1 << 3, 0]) + cut(b"eyJ.eyJ.sig") + cut(b"ada"),
    "spoofed_user": bytes([0 | 1 << 3, 0]) + cut(b"") + cut(b"ada@acme.test"),
    "raw_path": bytes([2 | 2 << 3, 7]) + cut(b"") + cut(b"") + b"/api/v1/cards/../users?x=1",
    "twice": bytes([2 | 2 << 3, 8]) + cut(b"") + cut(b""),
})

bob = {"user_id": "b-1", "exp": FAR}
write("jwt", {
    "raw_valid": bytes([0]) + cut(signed(BARE_HEADER, bob).encode()) + cut(b""),
    "seed_claims": bytes([3]) + cut(json.dumps(bob).encode()) + cut(b""),
    "full_claims": bytes([3]) + cut(json.dumps({
        "user_id": "b-1", "exp": FAR, "iat": 1, "jti": "x", "org": "acme",
        "act": {"sub": "a-1"}, "roles": ["read:*"]}).encode()) + cut(b""),
    "alg_none": bytes([2]) + cut(b'{"alg":"none"}') + cut(json.dumps(bob).encode()),
    "hs384": bytes([2]) + cut(b'{"alg":"HS384","typ":"JWT"}') + cut(json.dumps(bob).encode()),
    "kid": bytes([2]) + cut(b'{"alg":"HS256","kid":"k1"}') + cut(json.dumps(bob).encode()),
    "unsigned": bytes([1]) + cut(json.dumps(bob).encode()) + cut(b"\0" * 32),
    "other_key": bytes([4]) + cut(json.dumps(bob).encode()) + cut(b""),
    "tampered": bytes([6]) + cut(b"\xf0A\x10B") + cut(b""),
    "valid_plus": bytes([7]) + cut(b"") + cut(b""),
})

# The EdDSA (1), ES256 (2) and mixed (3: ES256 signing, EdDSA and HS256 previous) key sets, in
# mode bits 3-4.
EDDSA, ES256, MIXED = 1 << 3, 2 << 3, 3 << 3
write("jwt", {
    "eddsa_valid": bytes([7 | EDDSA]) + cut(b"") + cut(b""),
    "eddsa_signed_claims": bytes([3 | EDDSA]) + cut(json.dumps(bob).encode()) + cut(b""),
    "eddsa_stranger": bytes([4 | EDDSA]) + cut(json.dumps(bob).encode()) + cut(b""),
    "eddsa_unsigned": bytes([1 | EDDSA]) + cut(json.dumps(bob).encode()) + cut(b"\0" * 64),
    "eddsa_tampered": bytes([6 | EDDSA]) + cut(b"\xf0A\x10B") + cut(b""),
    "eddsa_header_es256": bytes([2 | EDDSA]) + cut(b'{"alg":"ES256"}') + cut(json.dumps(bob).encode()),
    "es256_valid": bytes([7 | ES256]) + cut(b"") + cut(b""),
    "es256_signed_claims": bytes([3 | ES256]) + cut(json.dumps(bob).encode()) + cut(b""),
    "es256_stranger": bytes([4 | ES256]) + cut(json.dumps(bob).encode()) + cut(b""),
    "es256_no_kid": bytes([2 | ES256]) + cut(b'{"alg":"ES256"}') + cut(json.dumps(bob).encode()),
    "mixed_hs256_seed_token": bytes([0 | MIXED]) + cut(signed(BARE_HEADER, bob).encode()) + cut(b""),
    "mixed_eddsa_header_es256_signature": bytes([2 | MIXED]) + cut(b'{"alg":"EdDSA"}') + cut(json.dumps(bob).encode()),
    **{f"{name}_confusion_{i}": bytes([5 | family]) + cut(json.dumps(bob).encode()) + cut(bytes([i]))
       for name, family in [("eddsa", EDDSA), ("es256", ES256), ("mixed", MIXED)] for i in range(4)},
})

write("token_body", {
    "empty": b"",
    "named_read_only": b'{"name": "XYZ Integration Token", "roles": ["read:*"]}',
    "expiry": b'{"expiresAt": "2030-01-31T12:00:00Z"}',
    "expiry_millis": b'{"roles": ["read:cards", "write:*", "default"], "expiresAt": "2030-01-31T12:00:00.000+0000"}',
    "nulls": b'{"name": null, "roles": null, "expiresAt": null}',
    "array": b"[]",
})

def doc(user, reason="Reason"):
    return json.dumps({"data": {"type": "impersonation", "attributes": {"reason": reason, "user": user}}}).encode()

write("organization_body", {
    "bob_by_email": doc("bob@acme.test"),
    "bob_by_id": doc("b-1"),
    "bob_by_name": doc("Bob", None),
    "carol_elsewhere": doc("carol@globex.test"),
    "wrong_type": b'{"data": {"type": "users", "attributes": {"user": "b-1"}}}',
    "no_data": b'{"errors": []}',
})
