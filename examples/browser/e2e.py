#!/usr/bin/env python3
"""Clicks through the browser example in headless Chromium, over WebDriver (stdlib only).

Serves examples/browser on 127.0.0.1 (a free port), starts chromedriver (a free port) with a
fresh Chromium profile, then: the page opens an empty store; a write shows the value and 1
version; a second write shows 2; after a reload the second value and both versions are still
there; a removal shows no value and a third version, a removal. Exits non-zero on the first failed check. Run it through e2e.sh, which builds first.

Environment: CHROMEDRIVER (default: chromedriver on PATH), CHROME_BIN (default:
/usr/lib/chromium/chromium if present; Debian's /usr/bin/chromium is a wrapper script that
chromedriver cannot drive), KV_E2E_TIMEOUT (seconds for the whole run, default 90).
"""

import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
# Same flags as the wasm test runner's (../shared/wasm/webdriver.json).
CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-first-run",
    "--metrics-recording-only", "--disable-features=Translate,OptimizationHints,MediaRouter",
]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
STEP_TIMEOUT = 20.0  # seconds a page state may take to appear


class Failed(Exception):
    """A check of the page failed."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class WebDriver:
    """The handful of W3C WebDriver commands the test needs."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.load(resp).get("value")
        except urllib.error.HTTPError as e:
            raise Failed(f"WebDriver {method} {path}: {e.read().decode(errors='replace')}")

    def wait_ready(self, deadline):
        while time.monotonic() < deadline:
            try:
                if (self.call("GET", "/status", timeout=2) or {}).get("ready"):
                    return
            except (OSError, Failed):
                pass
            time.sleep(0.1)
        raise Failed("chromedriver did not start")

    def start(self, chrome_options):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": chrome_options,
            "timeouts": {"pageLoad": 30000, "script": 10000},
        }}}
        self.session = self.call("POST", "/session", caps, timeout=60)["sessionId"]

    def cmd(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", f"/session/{self.session}", timeout=10)
            except (OSError, Failed):
                pass
            self.session = None

    def find(self, css):
        return self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def type_into(self, css, text):
        el = self.find(css)
        self.cmd("POST", f"/element/{el}/clear", {})
        self.cmd("POST", f"/element/{el}/value", {"text": text})

    def click(self, css):
        self.cmd("POST", f"/element/{self.find(css)}/click", {})

    def page(self):
        """The page's state: status, value, count and version lines."""
        return self.cmd("POST", "/execute/sync", {"script": """
            const text = (id) => (document.getElementById(id) || {}).textContent;
            return {
                status: text("status"), value: text("value"), count: text("count"),
                versions: [...document.querySelectorAll("#versions li")].map(li => li.textContent),
            };""", "args": []})


def expect(driver, what, value, versions):
    """Waits until the page is ready and shows `value` and `versions` versions."""
    deadline = time.monotonic() + STEP_TIMEOUT
    count = "1 version" if versions == 1 else f"{versions} versions"
    state = None
    while time.monotonic() < deadline:
        state = driver.page()
        if (state["status"] or "").startswith("error"):
            raise Failed(f"{what}: the page reports {state['status']!r}")
        if (state["status"] == "ready" and state["value"] == value and state["count"] == count
                and len(state["versions"]) == versions):
            print(f"e2e: {what}: ok ({state['value']!r}, {state['count']})")
            return state
        time.sleep(0.1)
    raise Failed(f"{what}: expected value {value!r} and {count}; the page shows {state}")


def run(driver, url):
    driver.cmd("POST", "/url", {"url": url})
    expect(driver, "first load (empty store)", "(none)", 0)

    driver.type_into("#value-input", "first value")
    driver.click("#save")
    state = expect(driver, "first write", "first value", 1)
    if not state["versions"][0].startswith("#1 "):
        raise Failed(f"first write: version line {state['versions'][0]!r}")

    driver.type_into("#value-input", "second value")
    driver.click("#save")
    expect(driver, "second write", "second value", 2)

    driver.cmd("POST", "/refresh", {})
    state = expect(driver, "after reload", "second value", 2)
    lines = state["versions"]
    if not (lines[0].startswith("#2 ") and lines[0].endswith('= "second value"')
            and lines[1].startswith("#1 ") and lines[1].endswith('= "first value"')):
        raise Failed(f"after reload: version lines {lines}")

    driver.click("#remove")
    state = expect(driver, "removal", "(none)", 3)
    if not (state["versions"][0].startswith("#3 ") and state["versions"][0].endswith("removed")):
        raise Failed(f"removal: version line {state['versions'][0]!r}")


def main():
    total = float(os.environ.get("KV_E2E_TIMEOUT", "90"))
    # SIGTERM (from `timeout`) and the alarm unwind through the cleanup below.
    def stop(signum, _frame):
        raise Failed(f"stopped by signal {signum} (time limit {total:.0f} s?)")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(int(total))

    if not os.path.exists(os.path.join(HERE, "pkg", "kv_browser_example.js")):
        print("e2e: pkg/ is missing: run build.sh first", file=sys.stderr)
        return 1
    chromedriver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromedriver:
        print("e2e: chromedriver not found (set CHROMEDRIVER)", file=sys.stderr)
        return 1
    options = {"args": list(CHROME_ARGS)}
    binary = os.environ.get("CHROME_BIN") or "/usr/lib/chromium/chromium"
    if os.path.exists(binary):
        options["binary"] = binary

    started = time.monotonic()
    profile = tempfile.mkdtemp(prefix="kv-e2e-chromium-")
    options["args"].append(f"--user-data-dir={profile}")
    log = tempfile.NamedTemporaryFile(prefix="kv-e2e-chromedriver-", suffix=".log", delete=False)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=HERE))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    port = free_port()
    # Its own process group, so that cleanup also reaches the Chromium it starts.
    proc = subprocess.Popen([chromedriver, f"--port={port}", "--allowed-ips=127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    driver = WebDriver(port)
    status = 1
    try:
        driver.wait_ready(time.monotonic() + 20)
        driver.start(options)
        run(driver, url)
        print(f"e2e: passed in {time.monotonic() - started:.1f} s")
        status = 0
    except (Failed, OSError, KeyError, TypeError) as e:
        print(f"e2e: FAILED: {e}", file=sys.stderr)
        print(f"e2e: chromedriver log: {log.name}", file=sys.stderr)
    finally:
        signal.alarm(0)
        driver.quit()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)
        log.close()
        if status == 0:
            os.unlink(log.name)
    return status


if __name__ == "__main__":
    sys.exit(main())
