#!/usr/bin/env python3
"""A stand-in for the Apple Business Manager API (the 2025 "Apple School Manager and Apple Business API"), as strict as
Apple documents it, for Orchard's tests and benchmarks.

OAuth 2 client credentials with a signed JWT client assertion (RFC 7523):
  POST /auth/oauth2/token  form: grant_type=client_credentials, client_id, client_assertion_type=
      urn:ietf:params:oauth:client-assertion-type:jwt-bearer, client_assertion, scope (business.api or school.api).
      The assertion: header alg ES256 and the account's kid; claims sub = iss = client_id, aud =
      https://account.apple.com/auth/oauth2/v2/token, iat, exp (after now, at most 180 days after iat), jti.
      The signature is checked with the account's public key by the openssl tool (not Orchard's code).
      Errors: 400 {"error": "invalid_client" | "invalid_grant" | "invalid_scope" | "unsupported_grant_type" | "invalid_request"}.
      Answer: {"access_token", "token_type": "Bearer", "expires_in", "scope"}.
The API (JSON:API documents), each call with Authorization: Bearer <access token> (401 otherwise, and once it expired):
  GET  /v1/orgDevices?limit=1..1000&cursor=   the organisation's devices, 100 by default, links.next and meta.paging
  GET  /v1/mdmServers?limit=&cursor=          the organisation's device management services
  POST /v1/orgDeviceActivities                ASSIGN_DEVICES / UNASSIGN_DEVICES for one mdmServer and 1..1000 devices
  GET  /v1/orgDeviceActivities/{id}           IN_PROGRESS at first, then COMPLETED (COMPLETED_WITH_FAILURES when a
                                              serial is not the organisation's)
Rate limit: more than RATE calls per second for one client answers 429 with Retry-After.
Control (tests only):
  POST /_control/accounts {"client_id", "key_id", "public_key_pem", "scope"}     an API account
  POST /_control/devices {"prefix", "count"}                                     that many devices, serials prefix+index
  POST /_control/servers {"servers": [{"id", "name"}]}
  POST /_control/token-lifetime {"seconds"}  POST /_control/rate {"per_second"}  POST /_control/tokens/expire {}
  GET  /_control/stats                      tokens issued, API calls, 429s, per client
Usage: abm_api_standin.py PORT
"""
import base64, json, os, subprocess, sys, tempfile, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

PORT = int(sys.argv[1])
AUDIENCE = "https://account.apple.com/auth/oauth2/v2/token"
WORK = tempfile.mkdtemp(prefix="orchard-abm-api-")
lock = threading.Lock()
accounts = {}        # client_id -> {"key_id", "pem_path", "scope"}
tokens = {}          # access token -> (client_id, expires_at)
devices = []         # [{"serial", "model", "family", "server"}], in order
device_index = {}    # serial -> device
servers = [{"id": "MDM-ORCHARD", "name": "Orchard"}, {"id": "MDM-OTHER", "name": "Another MDM"}]
activities = {}      # id -> {"status", "sub", "created", "reads", "serials", "server", "type"}
stats = {"tokens": 0, "calls": 0, "throttled": 0, "token_refusals": 0}
token_lifetime = [3600]
rate = [400]
window = {}          # client_id -> (second, count)
MODELS = [("iPhone 16", "iPhone", "MTX83LL/A"), ("MacBook Air 13-inch (M3)", "Mac", "MRXN3LL/A"), ("iPad Air 11-inch (M2)", "iPad", "MUWD3LL/A")]


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der_signature(raw):
    """JWS ES256 signature (r || s, 32 bytes each) as the DER ECDSA-Sig-Value openssl verifies."""
    def integer(b):
        b = b.lstrip(b"\x00") or b"\x00"
        if b[0] & 0x80:
            b = b"\x00" + b
        return b"\x02" + bytes([len(b)]) + b
    body = integer(raw[:32]) + integer(raw[32:])
    return b"\x30" + bytes([len(body)]) + body


def check_assertion(assertion, client_id):
    """None when the assertion is good for client_id; otherwise the OAuth error."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return "invalid_client"
    try:
        header, claims, signature = json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1])), b64url_decode(parts[2])
    except Exception:
        return "invalid_client"
    account = accounts.get(client_id)
    if account is None or header.get("alg") != "ES256" or header.get("kid") != account["key_id"]:
        return "invalid_client"
    if claims.get("sub") != client_id or claims.get("iss") != client_id or claims.get("aud") != AUDIENCE or not claims.get("jti"):
        return "invalid_client"
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or exp <= now or exp - iat > 180 * 86400:
        return "invalid_grant"
    if len(signature) != 64:
        return "invalid_client"
    path = os.path.join(WORK, uuid.uuid4().hex)
    with open(path, "wb") as f:
        f.write(der_signature(signature))
    try:
        result = subprocess.run(["openssl", "dgst", "-sha256", "-verify", account["pem_path"], "-signature", path],
                                input=(parts[0] + "." + parts[1]).encode(), capture_output=True)
    finally:
        os.unlink(path)
    return None if result.returncode == 0 else "invalid_client"


def page(items, query, render):
    try:
        limit = int(query.get("limit", ["100"])[0])
        start = int(base64.urlsafe_b64decode(query["cursor"][0]).decode()) if "cursor" in query else 0
    except Exception:
        return 400, {"errors": [{"status": "400", "code": "PARAMETER_ERROR.INVALID", "detail": "limit or cursor is not valid"}]}
    if not 1 <= limit <= 1000 or start < 0:
        return 400, {"errors": [{"status": "400", "code": "PARAMETER_ERROR.INVALID", "detail": "limit must be 1 to 1000"}]}
    chunk = items[start:start + limit]
    body = {"data": [render(x) for x in chunk], "links": {"self": "/"}, "meta": {"paging": {"limit": limit}}}
    if start + limit < len(items):
        cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        body["links"]["next"] = f"?cursor={cursor}&limit={limit}"
        body["meta"]["paging"]["nextCursor"] = cursor
    return 200, body


def render_device(d):
    return {"type": "orgDevices", "id": d["serial"], "attributes": {
        "serialNumber": d["serial"], "deviceModel": d["model"], "productFamily": d["family"], "productType": d["family"],
        "partNumber": d["part"], "orderNumber": "ORD-" + d["serial"][-6:], "purchaseSourceType": "APPLE", "purchaseSourceId": "1234567",
        "status": "ASSIGNED" if d["server"] else "UNASSIGNED", "color": "SILVER", "deviceCapacity": "256GB",
        "addedToOrgDateTime": "2026-01-05T10:00:00Z", "updatedDateTime": "2026-11-30T10:00:00Z", "orderDateTime": "2026-01-02T10:00:00Z"},
        "relationships": {"assignedServer": {"links": {"self": f"/v1/orgDevices/{d['serial']}/relationships/assignedServer"}}}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        url = urlparse(self.path)
        if url.path.startswith("/_control/"):
            return self.control(method, url.path)
        if url.path == "/auth/oauth2/token" and method == "POST":
            return self.token()
        return self.api(method, url.path, parse_qs(url.query))

    def control(self, method, path):
        if method == "GET" and path == "/_control/stats":
            with lock:
                return self.answer(200, dict(stats))
        request = json.loads(self.body() or b"{}")
        with lock:
            if path == "/_control/accounts":
                pem_path = os.path.join(WORK, uuid.uuid4().hex + ".pem")
                with open(pem_path, "w") as f:
                    f.write(request["public_key_pem"])
                accounts[request["client_id"]] = {"key_id": request["key_id"], "pem_path": pem_path, "scope": request.get("scope", "business.api")}
            elif path == "/_control/devices":
                for i in range(int(request["count"])):
                    model, family, part = MODELS[i % len(MODELS)]
                    d = {"serial": f"{request['prefix']}{i:07d}", "model": model, "family": family, "part": part, "server": None}
                    if d["serial"] not in device_index:
                        devices.append(d)
                        device_index[d["serial"]] = d
            elif path == "/_control/servers":
                servers[:] = request["servers"]
            elif path == "/_control/tokens/expire":
                for token in tokens:
                    tokens[token] = (tokens[token][0], 0)
            elif path == "/_control/token-lifetime":
                token_lifetime[0] = int(request["seconds"])
            elif path == "/_control/rate":
                rate[0] = int(request["per_second"])
            else:
                return self.answer(404, {"error": "no such control"})
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def token(self):
        form = {k: v[0] for k, v in parse_qs(self.body().decode()).items()}
        if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return self.answer(400, {"error": "invalid_request"})
        if form.get("grant_type") != "client_credentials":
            return self.answer(400, {"error": "unsupported_grant_type"})
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return self.answer(400, {"error": "invalid_request"})
        client_id = form.get("client_id", "")
        with lock:
            error = check_assertion(form.get("client_assertion", ""), client_id)
            if error is None and form.get("scope") != accounts[client_id]["scope"]:
                error = "invalid_scope"
            if error:
                stats["token_refusals"] += 1
                return self.answer(400, {"error": error})
            token = uuid.uuid4().hex + uuid.uuid4().hex
            tokens[token] = (client_id, time.time() + token_lifetime[0])
            stats["tokens"] += 1
        self.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": token_lifetime[0], "scope": form["scope"]})

    def api(self, method, path, query):
        auth = self.headers.get("Authorization", "")
        with lock:
            entry = tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            if entry is None or entry[1] <= time.time():
                return self.answer(401, {"errors": [{"status": "401", "code": "NOT_AUTHORIZED", "detail": "the access token is missing or expired"}]})
            client = entry[0]
            second = int(time.time())
            last = window.get(client, (second, 0))
            count = last[1] + 1 if last[0] == second else 1
            window[client] = (second, count)
            if count > rate[0]:
                stats["throttled"] += 1
                return self.answer(429, {"errors": [{"status": "429", "code": "RATE_LIMIT_EXCEEDED"}]}, [("Retry-After", "1")])
            stats["calls"] += 1
            if method == "GET" and path == "/v1/orgDevices":
                status, body = page(devices, query, render_device)
                return self.answer(status, body)
            if method == "GET" and path == "/v1/mdmServers":
                status, body = page(servers, query, lambda s: {"type": "mdmServers", "id": s["id"], "attributes": {
                    "serverName": s["name"], "serverType": "MDM", "createdDateTime": "2026-01-01T00:00:00Z", "updatedDateTime": "2026-01-01T00:00:00Z"}})
                return self.answer(status, body)
            if method == "POST" and path == "/v1/orgDeviceActivities":
                return self.start_activity()
            if method == "GET" and path.startswith("/v1/orgDeviceActivities/"):
                activity = activities.get(path.rsplit("/", 1)[1])
                if activity is None:
                    return self.answer(404, {"errors": [{"status": "404", "code": "NOT_FOUND"}]})
                activity["reads"] += 1
                if activity["reads"] > 1 and activity["status"] == "IN_PROGRESS":
                    activity["status"] = "COMPLETED"
                    for serial in activity["serials"]:
                        if serial in device_index:
                            device_index[serial]["server"] = activity["server"] if activity["type"] == "ASSIGN_DEVICES" else None
                return self.answer(200, self.render_activity(activity))
        self.answer(404, {"errors": [{"status": "404", "code": "NOT_FOUND"}]})

    def start_activity(self):
        try:
            data = json.loads(self.body())["data"]
            kind = data["attributes"]["activityType"]
            server = data["relationships"]["mdmServer"]["data"]["id"]
            serials = [d["id"] for d in data["relationships"]["devices"]["data"] if d["type"] == "orgDevices"]
            assert data["type"] == "orgDeviceActivities" and kind in ("ASSIGN_DEVICES", "UNASSIGN_DEVICES") and 1 <= len(serials) <= 1000
        except Exception:
            return self.answer(400, {"errors": [{"status": "400", "code": "ENTITY_ERROR", "detail": "not an orgDeviceActivities document"}]})
        if server not in {s["id"] for s in servers}:
            return self.answer(404, {"errors": [{"status": "404", "code": "NOT_FOUND", "detail": "no such mdmServer"}]})
        activity = {"id": uuid.uuid4().hex, "status": "IN_PROGRESS", "reads": 0, "serials": serials, "server": server, "type": kind,
                    "sub": "COMPLETED_WITH_FAILURES" if any(s not in device_index for s in serials) else "COMPLETED",
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        activities[activity["id"]] = activity
        self.answer(201, self.render_activity(activity))

    @staticmethod
    def render_activity(a):
        attributes = {"status": a["status"], "subStatus": a["sub"] if a["status"] == "COMPLETED" else "SUBMITTED",
                      "createdDateTime": a["created"], "activityType": a["type"]}
        if a["status"] == "COMPLETED":
            attributes["completedDateTime"] = a["created"]
        return {"data": {"type": "orgDeviceActivities", "id": a["id"], "attributes": attributes}}


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
