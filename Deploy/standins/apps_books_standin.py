#!/usr/bin/env python3
"""A stand-in for Apple's Apps and Books for Organizations API (app licences, https://vpp.itunes.apple.com/mdm/v2), as
strict as Apple documents it, for Orchard's tests and benchmarks.

A content token (the .vpptoken file) is base64 of {"token", "expDate", "orgName"}; every call carries it whole as
`Authorization: Bearer <sToken>` (401 {"errorNumber": 9622, "errorMessage": ...} when unknown or expired).
  GET  /mdm/v2/client/config          countryISO2ACode, locationName, mdmInfo (once set), tokenExpirationDate, uId
  POST /mdm/v2/client/config          {"mdmInfo": {"id" (1..100), "name" (1..100), "metadata" (0..255)}} (JSON only)
  GET  /mdm/v2/service/config         limits (maxAssets 25, maxSerialNumbers 1000, ...), no token needed
  GET  /mdm/v2/assets                 the location's assets with their counts
  POST /mdm/v2/assets/associate       {"assets": [{"adamId", "pricingParam"}] (1..25), "serialNumbers": [...] (≤1000),
                                      "clientUserIds": [...]} → {"eventId", "tokenExpirationDate", "uId"}; an asset the
                                      location does not own, or one not device-assignable, is a 400 (errorNumber 9632 /
                                      9618); serials past the available count fail in the event (9616 "no licenses available")
  GET  /mdm/v2/status?eventId=        PENDING on the first read, then COMPLETE (or FAILED with failures[].errorInfo)
  GET  /mdm/v2/assignments?serialNumber=&adamId=   the location's assignments
And Apple's Apps and Books Metadata for Organizations API (https://api.ent.apple.com/v1):
  GET  /v1/catalog/{storefront}/stoken-authenticated-apps?ids=&platform=   the location's apps: every request carries a
       developer token (`Authorization: Bearer` JWT, ES256, `kid` a registered key id, `iss` its team id, `iat`, `exp`
       not past and at most 15777000 s after `iat`; the signature checked with the openssl tool) and the content token as
       the cookie `itvt`; `ids` (1..100) and `platform` are required. 401 {"errors": [...]} for a bad token, 400 for a bad
       query. Only the location's assets are returned, with `deviceFamilies`, `watchBundleId` (when it has a watch app),
       `isB2BCustomApp` and `platformAttributes.ios.bundleId`, as Apple's example response has them.
Error numbers where Apple's pages give none for a case are this stand-in's own, documented above.
Control (tests only):
  POST /_control/tokens {"orgName", "locationName", "expDate" (optional), "assets": [{"adamId", "pricingParam",
                        "count", "deviceAssignable", "platforms"}]}  → {"sToken"}   a location with its purchased assets
  POST /_control/developer-key {"keyId", "teamId", "publicKeyPEM"}   a developer key the metadata API accepts
                        (assets may carry "name", "bundleId", "watchBundleId", "deviceFamilies", "customApp")
  POST /_control/fail {"status", "times"}   the next `times` API calls answer `status` (503, 429 with Retry-After 1)
  GET  /_control/stats                      calls, associate calls, assignments, per location
Usage: apps_books_standin.py PORT
"""
import base64, json, os, subprocess, sys, tempfile, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

PORT = int(sys.argv[1])
lock = threading.Lock()
locations = {}   # sToken -> {"org", "name", "uid", "exp", "mdmInfo", "assets": {adamId: {...}}, "assignments": set((adamId, serial))}
events = {}      # eventId -> {"reads", "status", "failures", "requested", "completed", "type"}
stats = {"calls": 0, "associate": 0, "assignments": 0, "refused": 0}
fail = {"status": 0, "times": 0}
developer_keys = {}  # kid -> {"teamId", "pem"}
PLATFORMS = {"appletv", "ipad", "iphone", "mac", "realityDevice", "web"}


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der_integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b


def developer_token_problem(auth):
    """Why a developer token is refused, or None: ES256 JWT, a registered kid, iss its team, iat/exp in range, signed."""
    if not auth.startswith("Bearer "):
        return "missing developer token"
    parts = auth[7:].strip().split(".")
    if len(parts) != 3:
        return "developer token is not a JWT"
    try:
        header, claims, signature = json.loads(b64url(parts[0])), json.loads(b64url(parts[1])), b64url(parts[2])
    except ValueError:
        return "developer token is not a JWT"
    if header.get("alg") != "ES256":
        return "developer token alg must be ES256"
    with lock:
        key = developer_keys.get(header.get("kid"))
    if key is None:
        return "unknown kid"
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if claims.get("iss") != key["teamId"]:
        return "iss is not the key's team"
    if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or exp <= now or exp - iat > 15777000:
        return "iat/exp out of range"
    if len(signature) != 64:
        return "bad signature"
    der = der_integer(signature[:32]) + der_integer(signature[32:])
    der = b"\x30" + bytes([len(der)]) + der
    with tempfile.TemporaryDirectory() as d:
        for name, data in (("pub.pem", key["pem"].encode()), ("sig", der), ("data", (parts[0] + "." + parts[1]).encode())):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        ok = subprocess.run(["openssl", "dgst", "-sha256", "-verify", os.path.join(d, "pub.pem"), "-signature", os.path.join(d, "sig"),
                             os.path.join(d, "data")], capture_output=True).returncode == 0
    return None if ok else "bad signature"
LIMITS = {"maxAssets": 25, "maxClientUserIds": 1000, "maxSerialNumbers": 1000, "maxRevokeClientUserIds": 100,
          "maxRevokeSerialNumbers": 100, "maxMdmNameLength": 100, "maxMdmMetadataLength": 255, "maxMdmIdLength": 100,
          "maxNotificationLength": 512, "maxUsers": 100}


def now_text(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(t))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, number, message):
        with lock:
            stats["refused"] += 1
        self.answer(status, {"errorNumber": number, "errorMessage": message})

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return raw

    def json_body(self):
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            self.error(400, 9600, "Content-Type must be application/json")
            return None
        try:
            value = json.loads(self.body() or b"null")
        except ValueError:
            self.error(400, 9600, "Invalid JSON")
            return None
        if not isinstance(value, dict):
            self.error(400, 9600, "The request body must be a JSON object")
            return None
        return value

    def location(self):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            self.error(401, 9622, "Missing authentication token")
            return None
        with lock:
            loc = locations.get(auth[7:].strip())
        if loc is None or loc["exp"] < time.time():
            self.error(401, 9622, "Invalid authentication token")
            return None
        return loc

    def injected(self):
        with lock:
            stats["calls"] += 1
            if fail["times"] > 0:
                fail["times"] -= 1
                return fail["status"]
        return 0

    def authorized(self):
        """The caller's location, after an injected failure (answered here) and the token check; None when answered."""
        status = self.injected()
        if status:
            self.answer(status, {"errorNumber": 9601, "errorMessage": "Service unavailable"}, {"Retry-After": "1"} if status == 429 else None)
            return None
        return self.location()

    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        if url.path == "/_control/stats":
            with lock:
                per = {l["name"]: {"assignments": len(l["assignments"]), "mdmInfo": l["mdmInfo"],
                                   "assets": {a: v["assigned"] for a, v in l["assets"].items()}} for l in locations.values()}
                return self.answer(200, dict(stats, locations=per))
        if url.path.startswith("/v1/catalog/"):
            return self.metadata(url, q)
        if url.path == "/mdm/v2/service/config":
            return self.answer(200, {"limits": LIMITS, "errorCodes": []})
        loc = self.authorized()
        if loc is None:
            return
        base = {"tokenExpirationDate": now_text(loc["exp"]), "uId": loc["uid"]}
        if url.path == "/mdm/v2/client/config":
            config = dict(base, countryISO2ACode="US", defaultPlatform="volumestore", locationName=loc["name"])
            if loc["mdmInfo"]:
                config["mdmInfo"] = loc["mdmInfo"]
            return self.answer(200, config)
        if url.path == "/mdm/v2/assets":
            with lock:
                assets = [{"adamId": a, "pricingParam": v["pricingParam"], "assignedCount": v["assigned"],
                           "availableCount": v["count"] - v["assigned"], "totalCount": v["count"], "retiredCount": 0,
                           "deviceAssignable": v["deviceAssignable"], "revocable": True, "productType": "App",
                           "supportedPlatforms": v["platforms"]} for a, v in sorted(loc["assets"].items())]
            return self.answer(200, dict(base, assets=assets, currentPageIndex=0, size=len(assets), totalPages=1))
        if url.path == "/mdm/v2/status":
            event_id = (q.get("eventId") or [""])[0]
            with lock:
                event = events.get(event_id)
                if event is None or event["location"] is not loc:
                    return self.error(400, 9630, "Invalid eventId")
                event["reads"] += 1
                if event["reads"] == 1:
                    answer = dict(base, eventStatus="PENDING", eventType=event["type"], numCompleted=0, numRequested=event["requested"])
                else:
                    answer = dict(base, eventStatus="FAILED" if event["failures"] else "COMPLETE", eventType=event["type"],
                                  numCompleted=event["completed"], numRequested=event["requested"])
                    if event["failures"]:
                        answer["failures"] = event["failures"]
            return self.answer(200, answer)
        if url.path == "/mdm/v2/assignments":
            serial = (q.get("serialNumber") or [None])[0]
            adam = (q.get("adamId") or [None])[0]
            with lock:
                items = [{"adamId": a, "serialNumber": s, "pricingParam": loc["assets"][a]["pricingParam"]}
                         for (a, s) in sorted(loc["assignments"]) if (serial is None or s == serial) and (adam is None or a == adam)]
            return self.answer(200, dict(base, assignments=items, currentPageIndex=0, size=len(items), totalPages=1))
        self.error(404, 9600, "Not found")

    def apple_error(self, status, title, detail):
        with lock:
            stats["refused"] += 1
        self.answer(status, {"errors": [{"id": str(uuid.uuid4()), "title": title, "detail": detail, "status": str(status),
                                         "code": str(status * 100)}]})

    def metadata(self, url, q):
        parts = url.path.split("/")
        if len(parts) != 5 or parts[4] != "stoken-authenticated-apps" or len(parts[3]) != 2:
            return self.apple_error(404, "Not Found", "no such resource")
        status = self.injected()
        if status:
            return self.answer(status, {"errors": []}, {"Retry-After": "1"} if status == 429 else None)
        problem = developer_token_problem(self.headers.get("Authorization") or "")
        if problem:
            return self.apple_error(401, "Unauthorized", problem)
        cookies = dict(c.strip().split("=", 1) for c in (self.headers.get("Cookie") or "").split(";") if "=" in c)
        with lock:
            loc = locations.get(cookies.get("itvt", ""))
        if loc is None or loc["exp"] < time.time():
            return self.apple_error(401, "Unauthorized", "missing or invalid itvt cookie (the content token)")
        ids = [i for i in ",".join(q.get("ids", [])).split(",") if i]
        platform = (q.get("platform") or [""])[0]
        if not ids or len(ids) > 100 or not all(i.isdigit() for i in ids):
            return self.apple_error(400, "Invalid Parameter Value", "ids: 1 to 100 numeric identifiers")
        if platform not in PLATFORMS:
            return self.apple_error(400, "Invalid Parameter Value", "platform is required: " + ", ".join(sorted(PLATFORMS)))
        data = []
        with lock:
            for adam in ids:
                a = loc["assets"].get(adam)
                if a is None:
                    continue
                families = a.get("deviceFamilies") or ([f for p in a["platforms"] for f in {"iOS": ["iphone", "ipad", "ipod"], "watchOS": ["watch"]}.get(p, [])])
                attributes = {"name": a.get("name", "app %s" % adam), "deviceFamilies": families, "isB2BCustomApp": bool(a.get("customApp")),
                              "isVppDeviceBasedLicensingEnabled": a["deviceAssignable"], "url": "https://apps.apple.com/app/id%s" % adam,
                              "platformAttributes": {"ios": {"bundleId": a["bundleId"]} if a.get("bundleId") else {}}}
                if a.get("watchBundleId"):
                    attributes["watchBundleId"] = a["watchBundleId"]
                data.append({"id": adam, "type": "apps", "href": "/v1/catalog/%s/apps/%s" % (parts[3], adam), "attributes": attributes})
        return self.answer(200, {"data": data})

    def do_POST(self):
        url = urlparse(self.path)
        if url.path == "/_control/tokens":
            spec = json.loads(self.body() or b"{}")
            exp = time.time() + 365 * 86400
            if spec.get("expDate"):
                exp = time.mktime(time.strptime(spec["expDate"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            raw = json.dumps({"token": base64.b64encode(uuid.uuid4().bytes * 3).decode(), "expDate": now_text(exp),
                              "orgName": spec.get("orgName", "Orchard Test Org")}).encode()
            s_token = base64.b64encode(raw).decode()
            assets = {str(a["adamId"]): {"pricingParam": a.get("pricingParam", "STDQ"), "count": int(a.get("count", 10)), "assigned": 0,
                                         "deviceAssignable": bool(a.get("deviceAssignable", True)), "platforms": a.get("platforms", ["iOS", "watchOS"]),
                                         **{k: a[k] for k in ("name", "bundleId", "watchBundleId", "deviceFamilies", "customApp") if k in a}}
                      for a in spec.get("assets", [])}
            with lock:
                locations[s_token] = {"org": spec.get("orgName", "Orchard Test Org"), "name": spec.get("locationName", "Main"),
                                      "uid": str(uuid.uuid4().int)[:16], "exp": exp, "mdmInfo": None, "assets": assets, "assignments": set()}
            return self.answer(200, {"sToken": s_token})
        if url.path == "/_control/developer-key":
            spec = json.loads(self.body() or b"{}")
            with lock:
                developer_keys[spec["keyId"]] = {"teamId": spec["teamId"], "pem": spec["publicKeyPEM"]}
            return self.answer(200, {})
        if url.path == "/_control/fail":
            spec = json.loads(self.body() or b"{}")
            with lock:
                fail["status"], fail["times"] = int(spec.get("status", 503)), int(spec.get("times", 1))
            return self.answer(200, {})
        loc = self.authorized()
        if loc is None:
            return
        body = self.json_body()
        if body is None:
            return
        base = {"tokenExpirationDate": now_text(loc["exp"]), "uId": loc["uid"]}
        if url.path == "/mdm/v2/client/config":
            info = body.get("mdmInfo")
            if info is not None:
                if not isinstance(info, dict) or not isinstance(info.get("id"), str) or not (1 <= len(info["id"]) <= 100) \
                        or not isinstance(info.get("name"), str) or not (1 <= len(info["name"]) <= 100) \
                        or len(str(info.get("metadata", ""))) > 255 or set(info) - {"id", "name", "metadata"}:
                    return self.error(400, 9600, "Invalid mdmInfo")
                with lock:
                    loc["mdmInfo"] = info
            config = dict(base, countryISO2ACode="US", defaultPlatform="volumestore", locationName=loc["name"])
            if loc["mdmInfo"]:
                config["mdmInfo"] = loc["mdmInfo"]
            return self.answer(200, config)
        if url.path == "/mdm/v2/assets/associate":
            assets, serials, users = body.get("assets"), body.get("serialNumbers", []), body.get("clientUserIds", [])
            if set(body) - {"assets", "serialNumbers", "clientUserIds"}:
                return self.error(400, 9600, "Unknown keys in the request")
            if not isinstance(assets, list) or not (1 <= len(assets) <= LIMITS["maxAssets"]):
                return self.error(400, 9600, "assets must list 1 to 25 assets")
            if not isinstance(serials, list) or len(serials) > LIMITS["maxSerialNumbers"] or not all(isinstance(s, str) and s for s in serials):
                return self.error(400, 9600, "serialNumbers must list at most 1000 serial numbers")
            if not isinstance(users, list) or (not serials and not users):
                return self.error(400, 9600, "serialNumbers or clientUserIds are required")
            failures = []
            completed = 0
            with lock:
                for asset in assets:
                    adam = asset.get("adamId") if isinstance(asset, dict) else None
                    owned = loc["assets"].get(adam) if isinstance(adam, str) else None
                    if owned is None or asset.get("pricingParam", owned["pricingParam"]) != owned["pricingParam"]:
                        return self.error(400, 9632, "Asset not found: %s" % adam)
                    if serials and not owned["deviceAssignable"]:
                        return self.error(400, 9618, "Asset is not device assignable: %s" % adam)
                for asset in assets:
                    adam = asset["adamId"]
                    owned = loc["assets"][adam]
                    no_licence = []
                    for serial in serials:
                        if (adam, serial) in loc["assignments"]:
                            completed += 1
                        elif owned["assigned"] < owned["count"]:
                            loc["assignments"].add((adam, serial))
                            owned["assigned"] += 1
                            stats["assignments"] += 1
                            completed += 1
                        else:
                            no_licence.append(serial)
                    if no_licence:
                        failures.append({"errorNumber": 9616, "errorMessage": "No licenses available for asset %s" % adam,
                                         "errorInfo": {"assets": [{"adamId": adam, "pricingParam": owned["pricingParam"]}],
                                                       "serialNumbers": no_licence}})
                    if users:
                        failures.append({"errorNumber": 9609, "errorMessage": "Registered user not found",
                                         "errorInfo": {"clientUserIds": users}})
                event_id = str(uuid.uuid4())
                events[event_id] = {"location": loc, "reads": 0, "failures": failures, "requested": len(serials) * len(assets) + len(users),
                                    "completed": completed, "type": "ASSOCIATE"}
                stats["associate"] += 1
            return self.answer(200, dict(base, eventId=event_id))
        self.error(404, 9600, "Not found")


ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("apps-and-books stand-in on port %d" % PORT, flush=True)
server.serve_forever()
