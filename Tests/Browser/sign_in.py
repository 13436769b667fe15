#!/usr/bin/python3
"""Drives the account-driven sign-in page in a real headless browser (Debian's chromium) over the DevTools protocol,
as the device's web view would: opens URL, checks what the page offers, types the password, presses the button, and
reports how the sign-in ended -- the 308 to apple-remotemanagement-user-login://... or the page's error.

usage: sign_in.py URL PASSWORD SCREENSHOT.png [USER-TO-TYPE]
prints one JSON object: prefilled, labelled, status, location, error.
"""
import json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
import websocket  # Debian's python3-websocket

url, password, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]
typed_user = sys.argv[4] if len(sys.argv) > 4 else None

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

port = free_port()
profile = tempfile.mkdtemp(prefix="orchard-chromium-")
browser = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-dev-shm-usage", f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
                            "--window-size=430,932", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.time() + 60
    target = None
    while time.time() < deadline and target is None:
        try:
            pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2))
            target = next((p for p in pages if p.get("type") == "page"), None)
        except Exception:
            time.sleep(0.2)
    if target is None:
        raise SystemExit("chromium did not start")
    ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
    ids = iter(range(1, 10**6))
    events = []

    def call(method, **params):
        i = next(ids)
        ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            m = json.loads(ws.recv())
            if m.get("id") == i:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            events.append(m)

    def wait_for(predicate, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            for m in list(events):
                if predicate(m):
                    events.remove(m)
                    return m
            ws.settimeout(max(0.1, end - time.time()))
            events.append(json.loads(ws.recv()))
        raise RuntimeError("timed out")

    def evaluate(expression):
        return call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    call("Page.enable")
    call("Page.navigate", url=url)
    wait_for(lambda m: m.get("method") == "Page.loadEventFired")
    # Hold the answer to the form's POST, to read its status and Location before the browser follows it.
    call("Fetch.enable", patterns=[{"urlPattern": "*account/sign-in*", "requestStage": "Response"}])
    prefilled = evaluate("document.getElementById('user').value")
    labelled = evaluate("""[...document.querySelectorAll('input:not([type=hidden])')].every(i =>
        document.querySelector('label[for="' + i.id + '"]') !== null)""")
    if typed_user is not None:
        evaluate(f"document.getElementById('user').value = {json.dumps(typed_user)}")
    evaluate(f"document.getElementById('password').value = {json.dumps(password)}")
    shot = call("Page.captureScreenshot", format="png")
    with open(screenshot, "wb") as f:
        import base64
        f.write(base64.b64decode(shot["data"]))
    evaluate("document.querySelector('button[type=submit]').click()")
    answer = wait_for(lambda m: m.get("method") == "Fetch.requestPaused" and m["params"]["request"]["method"] == "POST")
    params = answer["params"]
    status = params.get("responseStatusCode")
    headers = {h["name"].lower(): h["value"] for h in params.get("responseHeaders", [])}
    result = {"prefilled": prefilled, "labelled": labelled, "status": status, "location": headers.get("location"), "error": None}
    if status == 308:
        call("Fetch.failRequest", requestId=params["requestId"], errorReason="Aborted")
    else:
        call("Fetch.continueRequest", requestId=params["requestId"])
        wait_for(lambda m: m.get("method") == "Page.loadEventFired")
        result["error"] = evaluate("(document.querySelector('[role=alert]') || {}).textContent || null")
    print(json.dumps(result))
    ws.close()
finally:
    browser.terminate()
    try:
        browser.wait(timeout=10)
    except subprocess.TimeoutExpired:
        browser.kill()
    shutil.rmtree(profile, ignore_errors=True)
