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
Error numbers where Apple's pages give none for a case are this stand-in's own, documented above.
Control (tests only):
  POST /_control/tokens {"orgName", "locationName", "expDate" (optional), "assets": [{"adamId", "pricingParam",
                        "count", "deviceAssignable", "platforms"}]}  → {"sToken"}   a location with its purchased assets
  POST /_control/fail {"status", "times"}   the next `times` API calls answer `status` (503, 429 with Retry-After 1)
  GET  /_control/stats                      calls, associate calls, assignments, per location
Usage: apps_books_standin.py PORT
"""
import base64, json, sys, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

PORT = int(sys.argv[1])
lock = threading.Lock()
locations = {}   # sToken -> {"org", "name", "uid", "exp", "mdmInfo", "assets": {adamId: {...}}, "assignments": set((adamId, serial))}
events = {}      # eventId -> {"reads", "status", "failures", "requested", "completed", "type"}
stats = {"calls": 0, "associate": 0, "assignments": 0, "refused": 0}
fail = {"status": 0, "times": 0}
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
                                         "deviceAssignable": bool(a.get("deviceAssignable", True)), "platforms": a.get("platforms", ["iOS", "watchOS"])}
                      for a in spec.get("assets", [])}
            with lock:
                locations[s_token] = {"org": spec.get("orgName", "Orchard Test Org"), "name": spec.get("locationName", "Main"),
                                      "uid": str(uuid.uuid4().int)[:16], "exp": exp, "mdmInfo": None, "assets": assets, "assignments": set()}
            return self.answer(200, {"sToken": s_token})
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
