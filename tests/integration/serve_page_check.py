#!/usr/bin/env python3
"""Loads a page in headless Chromium and waits until a JavaScript condition holds, then writes the DOM and a
screenshot. Used by tests/integration/serve_command_test.cpp for the live page of `execution-sentinel serve`.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages ending in NUL on
file descriptors 3 and 4), so nothing but the standard library is needed, and the page's live connections (an
EventSource never finishes loading) do not stop it from being inspected.

Usage: serve_page_check.py CHROMIUM URL CONDITION_JS TIMEOUT_SECONDS DOM_OUT PNG_OUT
Exit status: 0 the condition held (DOM and screenshot written), 1 it did not within the timeout (DOM and
screenshot written all the same), 77 Chromium could not start.
"""
import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--remote-debugging-pipe", "--window-size=1280,900",
             "--user-data-dir=" + profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0

    def call(self, method, params=None, session=None, timeout=20):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self.next_id:
                    if "error" in answer:
                        raise RuntimeError(method + ": " + json.dumps(answer["error"]))
                    return answer.get("result", {})
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(method + ": no answer")
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if ready:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe")
                self.buffer += chunk

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main():
    chromium, url, condition, timeout, dom_out, png_out = sys.argv[1:7]
    with tempfile.TemporaryDirectory() as profile:
        try:
            browser = Browser(chromium, profile)
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            browser.call("Page.enable", session=session)
            browser.call("Page.navigate", {"url": url}, session=session)
        except Exception as e:
            print("chromium could not start: %s" % e, file=sys.stderr)
            return 77
        held = False
        deadline = time.time() + float(timeout)
        while time.time() < deadline:
            result = browser.call("Runtime.evaluate", {"expression": "Boolean(" + condition + ")",
                                                       "returnByValue": True}, session=session)
            if result.get("result", {}).get("value") is True:
                held = True
                break
            time.sleep(0.2)
        dom = browser.call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML",
                                                "returnByValue": True}, session=session)
        with open(dom_out, "w") as f:
            f.write(dom["result"]["value"])
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
        with open(png_out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        browser.close()
        return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
