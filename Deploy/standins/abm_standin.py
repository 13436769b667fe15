#!/usr/bin/env python3
"""A stand-in for Apple's device-assignment API (mdmenrollment.apple.com), for Orchard's tests.

As strict as Apple where the tests reach it: every call needs a User-Agent; /session needs an OAuth 1.0a
HMAC-SHA1 Authorization header whose signature oauthlib (an implementation independent of Orchard's)
recomputes, a fresh timestamp and an unused nonce; every other call needs X-Server-Protocol-Version and a
live X-ADM-Auth-Session, and each answer rotates the session (the old one stops working: a client must adopt
the header). Controlled by the tests over /_control (JSON):
  POST /_control/tokens            {"consumer_key", "consumer_secret", "access_token", "access_secret",
                                    "server_name", "org_name"}      a server token ABM knows
  POST /_control/terms             {"consumer_key", "signed": bool} T_C_NOT_SIGNED until signed again
  POST /_control/throttle          {"consumer_key", "count", "retry_after"}  the next count calls get 429
  POST /_control/sessions/expire   every session ends (the next call gets 401)
  POST /_control/devices           {"consumer_key", "devices": [{"serial_number", "model", ...}], "op_type"}
                                   devices assigned (added), changed (modified) or released (deleted): each
                                   change goes on the sync feed; "hidden": true keeps it off the feed (only a
                                   full fetch shows it, as Apple does with some)
  POST /_control/push              {"consumer_key", "serial_number", "profile_push_time"?}  Apple pushed the device its
                                   profile (it ran Setup Assistant): profile_status "pushed", profile_push_time as given or
                                   now (rounded up to the next second), a modified entry on the sync feed
  POST /_control/cursor            {"consumer_key", "echo": n}       the next n sync answers repeat the cursor
                                   given, with more_to_follow true (a bug Apple's API has shown)
  POST /_control/delay             {"consumer_key", "ms"}            each device page answers that much later
  POST /_control/assign            {"consumer_key", "outcomes": {"SERIAL": "FAILED"|"THROTTLED"|"NOT_ACCESSIBLE"},
                                    "retry_after_seconds": n|null}  what the next assignments answer for those
                                   serials (until set again); every other serial of the token: SUCCESS
  POST /_control/profiles          {"consumer_key", "profiles": {profile_uuid: body}}  profiles defined in an earlier run (the
                                   local trial teaches them again: this stand-in keeps nothing across runs, Orchard keeps them)
  GET  /_control/profiles?consumer_key=CK   the profiles defined, by profile_uuid
  GET  /_control/requests?consumer_key=CK   what that token's client sent: [{"method", "path", "status"}]
  GET  /_control/devices?consumer_key=CK    the serial numbers assigned now
  GET  /_control/discovery?consumer_key=CK  the account-driven discovery URL registered (POST /account-driven-enrollment/profile)
Usage: abm_standin.py PORT
"""
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

from oauthlib.oauth1 import SIGNATURE_HMAC, Client

lock = threading.RLock()  # answer() records under it, also from inside a locked block
tokens = {}       # consumer_key -> token dict
sessions = {}     # session token -> consumer_key
nonces = set()
requests_seen = {}  # consumer_key -> [{"method", "path", "status"}]


def oauth_params(header):
    if not header or not header.startswith("OAuth "):
        return None
    params = {}
    for part in header[6:].split(","):
        if "=" not in part:
            return None
        key, value = part.strip().split("=", 1)
        if not (value.startswith('"') and value.endswith('"')):
            return None
        params[key] = unquote(value[1:-1])
    return params


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=None, consumer_key=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        if consumer_key:
            with lock:
                requests_seen.setdefault(consumer_key, []).append(
                    {"method": self.command, "path": urlparse(self.path).path, "status": status})

    def send_error(self, code, message=None, explain=None):
        print("send_error", code, message, repr(getattr(self, "raw_requestline", b"")[:200]), flush=True)
        super().send_error(code, message, explain)

    def body(self):
        # Read once (a keep-alive connection's next request starts where this body ends), kept for a second call.
        if getattr(self, "_body_for", None) is not self.raw_requestline:
            length = int(self.headers.get("Content-Length") or 0)
            self._body, self._body_for = (self.rfile.read(length) if length else b""), self.raw_requestline
        return self._body

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        path = urlparse(self.path).path
        if path.startswith("/_control/"):
            return self.control(method, path)
        if not self.headers.get("User-Agent"):
            return self.answer(400, b"USER_AGENT_MISSING")
        if path == "/session":
            return self.session(method)
        return self.api(method, path)

    def control(self, method, path):
        if method == "GET" and path == "/_control/requests":
            key = parse_qs(urlparse(self.path).query).get("consumer_key", [""])[0]
            with lock:
                return self.answer(200, requests_seen.get(key, []))
        if method == "GET" and path == "/_control/profiles":
            key = parse_qs(urlparse(self.path).query).get("consumer_key", [""])[0]
            with lock:
                return self.answer(200, tokens.get(key, {}).get("profiles", {}))
        if method == "GET" and path == "/_control/discovery":
            key = parse_qs(urlparse(self.path).query).get("consumer_key", [""])[0]
            with lock:
                return self.answer(200, {"mdm_service_discovery_url": tokens.get(key, {}).get("discovery_url")})
        if method == "GET" and path == "/_control/locks":
            key = parse_qs(urlparse(self.path).query).get("consumer_key", [""])[0]
            with lock:
                return self.answer(200, tokens.get(key, {}).get("locks", {}))
        if method == "GET" and path == "/_control/devices":
            key = parse_qs(urlparse(self.path).query).get("consumer_key", [""])[0]
            with lock:
                return self.answer(200, sorted(tokens.get(key, {}).get("devices", {})))
        try:
            data = json.loads(self.body() or b"{}")
        except ValueError:
            return self.answer(400, {"error": "bad JSON"})
        with lock:
            if path == "/_control/tokens":
                tokens[data["consumer_key"]] = dict(data, terms_signed=True, throttle=0, retry_after=1, devices={}, feed=[], echo=0)
            elif path == "/_control/terms":
                tokens[data["consumer_key"]]["terms_signed"] = bool(data["signed"])
            elif path == "/_control/throttle":
                tokens[data["consumer_key"]].update(throttle=int(data["count"]), retry_after=int(data["retry_after"]))
            elif path == "/_control/sessions/expire":
                sessions.clear()
            elif path == "/_control/devices":
                token = tokens[data["consumer_key"]]
                op = data.get("op_type", "added")
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                for device in data["devices"]:
                    serial = device["serial_number"]
                    if op == "deleted":
                        token["devices"].pop(serial, None)
                    else:
                        merged = dict(token["devices"].get(serial, {}), **device)
                        merged.setdefault("profile_status", "empty")
                        token["devices"][serial] = merged
                    if not data.get("hidden"):
                        token["feed"].append(dict(token["devices"].get(serial, device), op_type=op, op_date=stamp))
            elif path == "/_control/push":
                token = tokens[data["consumer_key"]]
                device = token["devices"].get(data["serial_number"])
                if device is None:
                    return self.answer(404, {"error": "no such device"})
                pushed = data.get("profile_push_time") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(time.time()) + 1))
                device.update(profile_status="pushed", profile_push_time=pushed)
                token["feed"].append(dict(device, op_type="modified", op_date=pushed))
            elif path == "/_control/assign":
                token = tokens[data["consumer_key"]]
                token["assign_outcomes"] = dict(data.get("outcomes") or {})
                token["assign_retry_after"] = data.get("retry_after_seconds")
            elif path == "/_control/delay":
                tokens[data["consumer_key"]]["delay_ms"] = int(data["ms"])
            elif path == "/_control/cursor":
                tokens[data["consumer_key"]]["echo"] = int(data["echo"])
            elif path == "/_control/profiles":
                tokens[data["consumer_key"]].setdefault("profiles", {}).update(data.get("profiles") or {})
            else:
                return self.answer(404, {"error": "unknown control"})
        return self.answer(204, b"")

    def session(self, method):
        if method != "GET":
            return self.answer(405, b"METHOD_NOT_ALLOWED")
        params = oauth_params(self.headers.get("Authorization"))
        if params is None:
            return self.answer(401, b"UNAUTHORIZED")
        required = {"oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_signature",
                    "oauth_timestamp", "oauth_nonce", "oauth_version"}
        if not required.issubset(params) or params["oauth_signature_method"] != "HMAC-SHA1" or params["oauth_version"] != "1.0":
            return self.answer(400, b"BAD_REQUEST")
        with lock:
            token = tokens.get(params["oauth_consumer_key"])
        if not token or token["access_token"] != params["oauth_token"]:
            return self.answer(401, b"UNAUTHORIZED")
        key = params["oauth_consumer_key"]
        try:
            fresh = abs(time.time() - int(params["oauth_timestamp"])) < 600
        except ValueError:
            fresh = False
        expected = Client(key, client_secret=token["consumer_secret"], resource_owner_key=token["access_token"],
                          resource_owner_secret=token["access_secret"], signature_method=SIGNATURE_HMAC,
                          timestamp=params["oauth_timestamp"], nonce=params["oauth_nonce"],
                          realm=params.get("realm"))
        url = "http://%s%s" % (self.headers.get("Host"), self.path)
        signed = oauth_params(expected.sign(url, http_method="GET")[1]["Authorization"])
        with lock:
            replayed = params["oauth_nonce"] in nonces
            nonces.add(params["oauth_nonce"])
        if not fresh or replayed or signed["oauth_signature"] != params["oauth_signature"]:
            return self.answer(401, b"UNAUTHORIZED", consumer_key=key)
        if not token["terms_signed"]:
            return self.answer(403, {"code": "T_C_NOT_SIGNED"}, consumer_key=key)
        session = str(uuid.uuid4())
        with lock:
            sessions[session] = key
        return self.answer(200, {"auth_session_token": session}, consumer_key=key)

    def api(self, method, path):
        self.body()  # every answer below, refusals included, leaves the connection at the next request
        with lock:
            key = sessions.get(self.headers.get("X-ADM-Auth-Session") or "")
        if key is None:
            self.body()
            return self.answer(401, b"UNAUTHORIZED")
        if not self.headers.get("X-Server-Protocol-Version"):
            return self.answer(400, b"X_SERVER_PROTOCOL_VERSION_MISSING", consumer_key=key)
        with lock:
            token = tokens[key]
            if not token["terms_signed"]:
                return self.answer(403, {"code": "T_C_NOT_SIGNED"}, consumer_key=key)
            if token["throttle"] > 0:
                token["throttle"] -= 1
                return self.answer(429, b"TOO_MANY_REQUESTS", {"Retry-After": str(token["retry_after"])}, consumer_key=key)
            # Rotate: the session just used ends, the answer carries the next one.
            del sessions[self.headers["X-ADM-Auth-Session"]]
            rotated = str(uuid.uuid4())
            sessions[rotated] = key
        headers = {"X-ADM-Auth-Session": rotated}
        if method == "GET" and path == "/account":
            return self.answer(200, {
                "server_name": token.get("server_name", "Orchard"), "server_uuid": token.setdefault("server_uuid", str(uuid.uuid4()).upper()),
                "admin_id": "admin@example.com", "org_name": token.get("org_name", "Example"), "org_email": "it@example.com",
                "org_phone": "+1 555 0100", "org_address": "1 Example Way", "org_id": "1234567", "org_type": "org",
                "org_version": "v2"}, headers, consumer_key=key)
        if method == "POST" and path in ("/server/devices", "/devices/sync"):
            try:
                request = json.loads(self.body() or b"{}")
            except ValueError:
                return self.answer(400, b"MALFORMED_REQUEST_BODY", headers, consumer_key=key)
            limit = request.get("limit", 100)
            if not isinstance(limit, int) or limit < 1 or limit > 1000:
                return self.answer(400, b"INVALID_LIMIT", headers, consumer_key=key)
            cursor = request.get("cursor")
            return self.devices(path, cursor, limit, token, headers, key)
        if path == "/account-driven-enrollment/profile":
            if method == "POST":
                try:
                    url = json.loads(self.body() or b"{}").get("mdm_service_discovery_url")
                except ValueError:
                    return self.answer(400, b"MALFORMED_REQUEST_BODY", headers, consumer_key=key)
                if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                    return self.answer(400, b"INVALID_MDM_SERVICE_DISCOVERY_URL", headers, consumer_key=key)
                with lock:
                    token["discovery_url"] = url
                return self.answer(200, {"mdm_service_discovery_url": url}, headers, consumer_key=key)
            if method == "GET":
                if not token.get("discovery_url"):
                    return self.answer(404, b"NOT_FOUND", headers, consumer_key=key)
                return self.answer(200, {"mdm_service_discovery_url": token["discovery_url"]}, headers, consumer_key=key)
            if method == "DELETE":
                with lock:
                    token.pop("discovery_url", None)
                return self.answer(200, {}, headers, consumer_key=key)
        if path in ("/profile", "/profile/devices", "/devices", "/devices/disown", "/device/activationlock"):
            return self.profiles(method, path, token, headers, key)
        self.body()  # read, or the next request on this connection would start inside it
        return self.answer(404, b"NOT_FOUND", headers, consumer_key=key)

    PROFILE_KEYS = {"profile_name", "url", "configuration_web_url", "allow_pairing", "anchor_certs", "supervising_host_certs",
                    "auto_advance_setup", "await_device_configured", "is_supervised", "is_mandatory", "is_mdm_removable",
                    "is_multi_user", "is_return_to_service", "do_not_use_profile_from_backup", "language", "region",
                    "department", "org_magic", "support_phone_number", "support_email_address", "skip_setup_items", "devices"}

    def profiles(self, method, path, token, headers, key):
        """Define and fetch profiles, assign them, device details and disown: ABM's rules as REFERENCE §4.3-4.5 has them."""
        if method == "GET" and path == "/profile":
            uuid_ = parse_qs(urlparse(self.path).query).get("profile_uuid", [""])[0]
            with lock:
                profile = token.setdefault("profiles", {}).get(uuid_)
            if profile is None:
                return self.answer(404, b"PROFILE_NOT_FOUND", headers, consumer_key=key)
            return self.answer(200, dict(profile, profile_uuid=uuid_), headers, consumer_key=key)
        try:
            request = json.loads(self.body() or b"")
        except ValueError:
            return self.answer(400, b"MALFORMED_REQUEST_BODY", headers, consumer_key=key)
        if not isinstance(request, dict):
            return self.answer(400, b"MALFORMED_REQUEST_BODY", headers, consumer_key=key)
        if method == "POST" and path == "/device/activationlock":
            # One device per call: {"device", "escrow_key" (hex, optional), "lost_message" (optional)}.
            serial, escrow = request.get("device"), request.get("escrow_key")
            if not isinstance(serial, str) or (escrow is not None and not isinstance(escrow, str)) or set(request) - {"device", "escrow_key", "lost_message"}:
                return self.answer(400, b"MALFORMED_REQUEST_BODY", headers, consumer_key=key)
            with lock:
                if serial not in token["devices"]:
                    status = "NOT_ACCESSIBLE"
                elif serial in token.setdefault("locks", {}):
                    status = "DEVICE_ALREADY_LOCKED"
                else:
                    token["locks"][serial] = {"escrow_key": escrow, "lost_message": request.get("lost_message")}
                    status = "SUCCESS"
            return self.answer(200, {"serial_number": serial, "response_status": status}, headers, consumer_key=key)
        serials = request.get("devices", [])
        if not isinstance(serials, list) or not all(isinstance(s, str) for s in serials):
            return self.answer(400, b"MALFORMED_REQUEST_BODY", headers, consumer_key=key)
        if len(serials) > 1000:
            return self.answer(400, b"DEVICE_ID_LIMIT_EXCEEDED", headers, consumer_key=key)
        with lock:
            if method == "POST" and path == "/profile":
                if set(request) - self.PROFILE_KEYS:
                    return self.answer(400, b"MALFORMED_REQUEST_BODY", headers, consumer_key=key)
                if not isinstance(request.get("profile_name"), str) or not isinstance(request.get("url"), str):
                    return self.answer(400, b"MALFORMED_REQUEST_BODY", headers, consumer_key=key)
                if request.get("is_mdm_removable") is False and request.get("is_supervised") is not True:
                    return self.answer(400, b"FLAGS_INVALID", headers, consumer_key=key)
                profile_uuid = uuid.uuid4().hex.upper()
                token.setdefault("profiles", {})[profile_uuid] = {k: v for k, v in request.items() if k != "devices"}
                return self.answer(200, {"profile_uuid": profile_uuid, "devices": self.assign(token, profile_uuid, serials)[0]},
                                   headers, consumer_key=key)
            if method in ("POST", "PUT") and path == "/profile/devices":
                profile_uuid = request.get("profile_uuid")
                if not serials:
                    return self.answer(400, b"DEVICE_ID_REQUIRED", headers, consumer_key=key)
                if profile_uuid not in token.setdefault("profiles", {}):
                    return self.answer(400, b"PROFILE_NOT_FOUND", headers, consumer_key=key)
                outcomes, retry_after = self.assign(token, profile_uuid, serials)
                answer = {"profile_uuid": profile_uuid, "devices": outcomes}
                if retry_after is not None:
                    answer["retry_after_seconds"] = retry_after
                return self.answer(200, answer, headers, consumer_key=key)
            if method == "POST" and path == "/devices":
                if not serials:
                    return self.answer(400, b"DEVICE_ID_REQUIRED", headers, consumer_key=key)
                details = {s: dict(token["devices"][s], response_status="SUCCESS") if s in token["devices"]
                           else {"response_status": "NOT_ACCESSIBLE"} for s in serials}
                return self.answer(200, {"devices": details}, headers, consumer_key=key)
            if method == "DELETE" and path == "/profile/devices":
                # Apple's "Remove a Profile": the device keeps no profile; it comes back on the feed as removed.
                if not serials:
                    return self.answer(400, b"DEVICE_ID_REQUIRED", headers, consumer_key=key)
                outcomes = {}
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                for s in serials:
                    device = token["devices"].get(s)
                    if device is None:
                        outcomes[s] = "NOT_ACCESSIBLE"
                        continue
                    device.update(profile_status="removed")
                    token["feed"].append(dict(device, op_type="modified", op_date=stamp))
                    outcomes[s] = "SUCCESS"
                return self.answer(200, {"devices": outcomes}, headers, consumer_key=key)
            if method == "POST" and path == "/devices/disown":
                outcomes = {}
                for s in serials:
                    outcomes[s] = "SUCCESS" if token["devices"].pop(s, None) is not None else "NOT_ACCESSIBLE"
                return self.answer(200, {"devices": outcomes}, headers, consumer_key=key)
        return self.answer(405, b"METHOD_NOT_ALLOWED", headers, consumer_key=key)

    def assign(self, token, profile_uuid, serials):
        """Per-serial outcomes (under the lock); a successful assignment goes on the sync feed as ABM's does."""
        forced = token.get("assign_outcomes", {})
        outcomes = {}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for serial in serials:
            if serial in forced:
                outcomes[serial] = forced[serial]
            elif serial not in token["devices"]:
                outcomes[serial] = "NOT_ACCESSIBLE"
            else:
                outcomes[serial] = "SUCCESS"
                device = token["devices"][serial]
                device.update(profile_uuid=profile_uuid, profile_status="assigned", profile_assign_time=stamp)
                token["feed"].append(dict(device, op_type="modified", op_date=stamp))
        token.setdefault("assignments", []).append({"profile_uuid": profile_uuid, "count": len(serials)})
        retry = token.get("assign_retry_after") if any(o != "SUCCESS" for o in outcomes.values()) else None
        return outcomes, retry

    def devices(self, path, cursor, limit, token, headers, key):
        """Fetch cursors are f:<offset>:<feed length when the fetch began>; sync cursors s:<epoch>:<feed position>. The
        epoch is this process's: the stand-in keeps nothing across runs while Orchard keeps its cursor (the local trial
        restarts it), so a sync cursor of another run reads this run's feed from its start, as Apple's would hand over
        every change made since."""
        time.sleep(token.get("delay_ms", 0) / 1000.0)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with lock:
            if path == "/server/devices":
                if cursor is None:
                    offset, start = 0, len(token["feed"])
                elif cursor.startswith("f:"):
                    _, offset, start = cursor.split(":")
                    offset, start = int(offset), int(start)
                else:
                    return self.answer(400, b"INVALID_CURSOR", headers, consumer_key=key)
                serials = sorted(token["devices"])
                if cursor is not None and offset >= len(serials):
                    return self.answer(400, b"EXHAUSTED_CURSOR", headers, consumer_key=key)
                page = [token["devices"][s] for s in serials[offset:offset + limit]]
                more = offset + limit < len(serials)
                # The fetch's own cursor; once it is exhausted, it serves as the sync cursor from where the fetch began.
                next_cursor = "f:%d:%d" % (offset + len(page), start) if more else "s:%s:%d" % (EPOCH, start)
                return self.answer(200, {"devices": page, "cursor": next_cursor, "fetched_until": now, "more_to_follow": more},
                                   headers, consumer_key=key)
            if not cursor:
                return self.answer(400, b"CURSOR_REQUIRED", headers, consumer_key=key)
            if cursor.startswith("f:"):
                cursor = "s:%s:%s" % (EPOCH, cursor.split(":")[2])
            parts = cursor.split(":")
            if parts[0] != "s" or len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[1:]):
                return self.answer(400, b"INVALID_CURSOR", headers, consumer_key=key)
            if len(parts) == 2 or parts[1] != EPOCH:
                cursor = "s:%s:0" % EPOCH  # a cursor of an earlier run of the stand-in

            if token["echo"] > 0:
                token["echo"] -= 1
                return self.answer(200, {"devices": [], "cursor": cursor, "fetched_until": now, "more_to_follow": True},
                                   headers, consumer_key=key)
            position = int(cursor.split(":")[2])
            page = token["feed"][position:position + limit]
            more = position + limit < len(token["feed"])
            return self.answer(200, {"devices": page, "cursor": "s:%s:%d" % (EPOCH, position + len(page)), "fetched_until": now,
                                     "more_to_follow": more}, headers, consumer_key=key)


EPOCH = str(time.time_ns())

if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("abm stand-in listening on 127.0.0.1:%s" % sys.argv[1], flush=True)
    server.serve_forever()
