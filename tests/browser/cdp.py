"""A small Chrome DevTools Protocol client for the system's headless Chromium.

Used by the browser test of the built site (``test_site.py``) and by ``make pdf``
(``print_pdf.py``). It starts Chromium with no network but loopback (every host name
resolves to nothing), serves a folder on 127.0.0.1 and drives one tab over the DevTools
websocket: navigate, evaluate, collect console errors and requests, screenshot, print to PDF.
Playwright and pyppeteer download a browser of their own, which an offline machine cannot;
this needs only ``websocket-client`` and the ``chromium`` package of the distribution.
"""
from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import websocket

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of the system's Chromium: $CHROMIUM if set, else the first of CHROMIUM_NAMES on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102 - silence the per-request log
        pass


class StaticServer:
    """Serve ``root`` on http://127.0.0.1:<free port>/ from a daemon thread (a context manager)."""

    def __init__(self, root: str | Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> "StaticServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Chromium:
    """One headless Chromium with one tab, driven over the DevTools protocol (a context manager).

    ``events`` collects every protocol event since the last ``clear_events()``; ``send`` returns
    a command's result or raises ``RuntimeError`` with the protocol's error message.
    """

    def __init__(self, width: int = 1280, height: int = 900, timeout: float = 60.0):
        self.binary = find_chromium()
        if self.binary is None:
            raise FileNotFoundError("no Chromium found (apt-get install chromium, or set CHROMIUM=/path/to/chrome)")
        self.width, self.height, self.timeout = width, height, timeout
        self.events: list[dict] = []
        self._id = 0

    def __enter__(self) -> "Chromium":
        self._profile = tempfile.mkdtemp(prefix="factorlab-chromium-")
        args = [
            self.binary, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio",
            "--hide-scrollbars",  # a full-page capture drops the scroll bar: keep the layout width fixed
            # offline: every name resolves to nothing, so any request that leaves loopback fails (and is reported)
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--window-size={self.width},{self.height}", f"--user-data-dir={self._profile}",
            "--remote-debugging-port=0", "--remote-allow-origins=*", "about:blank",
        ]
        if (hasattr(os, "geteuid") and os.geteuid() == 0) or os.environ.get("CI"):
            # Chromium refuses its sandbox as root, and CI runners may forbid the namespaces it needs;
            # the pages it opens are the book's own, served on loopback
            args.insert(1, "--no-sandbox")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with code {self.proc.returncode} before it listened")
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError(f"{self.binary} did not open its DevTools port in {self.timeout:.0f} s")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=self.timeout,
                                              suppress_origin=True)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            try:
                self.ws.close()
            except Exception:  # noqa: BLE001 - closing a dead socket
                pass
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(getattr(self, "_profile", ""), ignore_errors=True)

    # -- protocol ------------------------------------------------------------------------------
    def send(self, method: str, **params) -> dict:
        """Send one command, keep the events that arrive meanwhile, return its result."""
        self._id += 1
        msg_id = self._id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method}: no answer in {self.timeout:.0f} s")
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float | None = None) -> dict:
        """Wait for the next event ``method`` (one already collected counts), return its params."""
        deadline = time.monotonic() + (timeout or self.timeout)
        for ev in self.events:
            if ev["method"] == method and not ev.get("_seen"):
                ev["_seen"] = True
                return ev["params"]
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            finally:
                self.ws.settimeout(self.timeout)
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    msg["_seen"] = True
                    return msg["params"]
        raise TimeoutError(f"no {method} event in {timeout or self.timeout:.0f} s")

    def clear_events(self) -> None:
        self.events = []

    def evaluate(self, expression: str):
        """Evaluate a JavaScript expression in the page (awaiting a promise) and return its value."""
        res = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            details = res["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"JavaScript error: {text}")
        return res["result"].get("value")

    # -- pages ---------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (events are cleared first)."""
        self.clear_events()
        res = self.send("Page.navigate", url=url)
        if res.get("errorText"):
            raise RuntimeError(f"{url}: {res['errorText']}")
        self.wait_for("Page.loadEventFired")

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads since the page was opened."""
        errors = []
        for ev in self.events:
            m, p = ev["method"], ev["params"]
            if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                errors.append("console." + p["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                errors.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append(f"log ({p['entry']['source']}): {p['entry']['text']} {p['entry'].get('url', '')}".rstrip())
        return errors

    def requested_urls(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events if ev["method"] == "Network.requestWillBeSent"]

    def failed_requests(self) -> list[str]:
        by_id = {ev["params"]["requestId"]: ev["params"]["request"]["url"]
                 for ev in self.events if ev["method"] == "Network.requestWillBeSent"}
        return [f"{by_id.get(ev['params']['requestId'], '?')}: {ev['params']['errorText']}"
                for ev in self.events if ev["method"] == "Network.loadingFailed"
                and not ev["params"].get("canceled")]

    def screenshot(self, path: str | Path, max_height: int = 16000) -> None:
        """Write a PNG of the whole page (at most ``max_height`` CSS pixels tall)."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = min(int(size["height"]) + 1, max_height)
        res = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1})
        Path(path).write_bytes(base64.b64decode(res["data"]))

    def print_pdf(self, path: str | Path, **options) -> None:
        """Print the page to a PDF file (Page.printToPDF; the page's @page rules set the size)."""
        opts = dict(printBackground=True, preferCSSPageSize=True, displayHeaderFooter=True,
                    headerTemplate="<span></span>",
                    footerTemplate='<div style="font-size:8px;width:100%;text-align:center">'
                                   '<span class="pageNumber"></span></div>')
        opts.update(options)
        res = self.send("Page.printToPDF", **opts)
        Path(path).write_bytes(base64.b64decode(res["data"]))


def page_name(html_root: Path, page: Path) -> str:
    """``notebooks/x.html`` -> ``notebooks_x`` (a file name for the page's screenshot)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", page.relative_to(html_root).with_suffix("").as_posix())
