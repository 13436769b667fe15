#!/usr/bin/env python3
"""A stand-in OpenID Connect provider, for Orchard's tests of a domain whose users sign in elsewhere.

It publishes what a real provider does -- /.well-known/openid-configuration (issuer, authorization_endpoint,
token_endpoint, jwks_uri) and /jwks (its RSA public keys) -- and mints RS256-signed JWT access tokens for the tests
over /_control (its own sign-in page is not Orchard's concern). Signatures are made by the openssl tool, an
implementation independent of Orchard's verifier.
  POST /_control/token   {"claims": {...}, "kid": "k1"|"k2"|"unknown", "alg": "RS256"}  a signed token ("k2" is a key
                         that /jwks does not publish: a forgery)
Usage: oidc_standin.py PORT
"""
import base64, json, os, subprocess, sys, tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
ISSUER = f"http://127.0.0.1:{PORT}"
WORK = tempfile.mkdtemp(prefix="orchard-oidc-")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(name):
    path = os.path.join(WORK, name + ".pem")
    subprocess.run(["openssl", "genrsa", "-out", path, "2048"], check=True, capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", path, "-noout", "-modulus"], check=True, capture_output=True,
                             text=True).stdout.strip().split("=", 1)[1]
    return path, {"kty": "RSA", "kid": name, "use": "sig", "alg": "RS256",
                  "n": b64url(bytes.fromhex(modulus)), "e": b64url((65537).to_bytes(3, "big"))}


KEYS = {"k1": make_key("k1"), "k2": make_key("k2")}


def sign(claims, kid):
    key_path = KEYS["k1" if kid == "unknown" else kid][0]
    header = {"alg": "RS256", "typ": "at+jwt", "kid": kid}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=signing_input.encode(),
                               check=True, capture_output=True).stdout
    return signing_input + "." + b64url(signature)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            self.answer(200, {"issuer": ISSUER, "authorization_endpoint": ISSUER + "/authorize",
                              "token_endpoint": ISSUER + "/token", "jwks_uri": ISSUER + "/jwks",
                              "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"]})
        elif self.path == "/jwks":
            self.answer(200, {"keys": [KEYS["k1"][1]]})
        else:
            self.answer(404, {"error": "not_found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if self.path == "/_control/token":
            self.answer(200, {"token": sign(body.get("claims", {}), body.get("kid", "k1"))})
        else:
            self.answer(404, {"error": "not_found"})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
