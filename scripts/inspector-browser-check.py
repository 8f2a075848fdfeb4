#!/usr/bin/env python3
"""Drives the inspector page in headless Chromium, as a person would, and reports what it saw.

Debian's `chromium`, spoken to over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
JSON messages separated by NUL bytes on file descriptors 3 and 4; no websocket library, no
downloaded browser). Python's standard library only.

    scripts/inspector-browser-check.py --admin http://127.0.0.1:9090 --token T \
        --webhook http://127.0.0.1:8080/gh --secret gh-secret --screenshot shot.png

Steps: opens `/#token=T`; waits for the page to say it is live; POSTs a GitHub-signed event
and a forged one to --webhook; waits (no reload) until both rows are there; opens the signed
one's detail and reads its headers; screenshots 1280x800; filters the list to `rejected`;
opens the dead letters and replays the first one; checks the page at a phone's width. Prints
one JSON object with what it saw, for the test to check; exits 1 if a step timed out.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


class Browser:
    def __init__(self, width, height):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if not binary:
            raise SystemExit("chromium is not installed")
        self.profile = tempfile.mkdtemp(prefix="inspector-chromium-")
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()
        # The browser reads commands from fd 3 and writes answers to fd 4: the child's ends are
        # moved out of the way first, so placing them cannot overwrite one another.
        child_read, child_write = 100, 101
        os.dup2(to_browser_read, child_read)
        os.dup2(from_browser_write, child_write)
        os.close(to_browser_read)
        os.close(from_browser_write)

        def place():
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage",
             "--user-data-dir=" + self.profile, "--remote-debugging-pipe", f"--window-size={width},{height}",
             "about:blank"],
            pass_fds=(3, 4), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=place)
        os.close(child_read)
        os.close(child_write)
        self.next_id = 0
        self.buffer = b""
        self.session = None
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise SystemExit("chromium closed the pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(what)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))

    def close(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def post(url, body, headers):
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


ROWS = """[...document.querySelectorAll('#rows tr')].map(tr => ({
  seq: Number(tr.dataset.seq), outcome: tr.querySelector('.outcome')?.textContent,
  cause: tr.querySelector('.cause')?.textContent || null, text: tr.textContent }))"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--webhook", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--phone-screenshot")
    arguments = parser.parse_args()
    seen = {}
    browser = Browser(1280, 800)
    step = "open"
    try:
        browser.call("Page.navigate", url=arguments.admin + "/#token=" + arguments.token)
        step = "live"
        # Page.navigate answers before the new document exists: until it does, there is no #live.
        browser.wait("document.getElementById('live')?.textContent === 'live'", "the page never went live")
        seen["fragmentGone"] = browser.evaluate("location.hash === ''")
        # Marks this page load: still there after the events arrive means no reload happened.
        browser.evaluate("window.__sameLoad = true")

        step = "send"
        suffix = str(int(time.time() * 1000))
        signed_id, forged_id = "browser-signed-" + suffix, "browser-forged-" + suffix
        for delivery, secret in ((signed_id, arguments.secret), (forged_id, "not-the-secret")):
            body = json.dumps({"action": "opened", "delivery": delivery, "customer": {"name": "Ada", "plan": "pro"}})
            signature = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
            seen.setdefault("statuses", []).append(post(arguments.webhook, body, {
                "Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signature}))

        step = "rows"
        rows = browser.wait(
            f"(() => {{ const rows = {ROWS}; return rows.some(r => r.text.includes('{signed_id}')) && "
            f"rows.some(r => r.text.includes('browser-forged') || (r.outcome === 'rejected' && r.seq)) && "
            f"rows.filter(r => r.seq).length >= 2 ? rows : null }})()",
            "the two requests never appeared")
        seen["sameLoad"] = browser.evaluate("window.__sameLoad === true")
        signed = next(r for r in rows if signed_id in r["text"])
        forged = next(r for r in rows if r["outcome"] == "rejected")
        seen["signed"] = {"outcome": signed["outcome"], "cause": signed["cause"]}
        seen["forged"] = {"outcome": forged["outcome"], "cause": forged["cause"]}

        step = "detail"
        browser.evaluate(f"document.querySelector('#rows tr[data-seq=\"{signed['seq']}\"]').click()")
        headers = browser.wait(
            "document.getElementById('detail-headers') && [...document.querySelectorAll('#detail-headers tr')]"
            ".map(tr => [...tr.children].map(td => td.textContent))", "the detail never opened")
        seen["headers"] = {name: value for name, value in headers}
        seen["body"] = browser.evaluate("document.getElementById('detail-body').textContent")
        browser.screenshot(arguments.screenshot)

        step = "filter"
        # Changed twice in a row, the first answer made slow: it comes after the second's and
        # must not add its rows (accepted ones) to the list filtered to rejected.
        browser.evaluate("""(() => {
          const original = window.fetch;
          window.fetch = (path, options) => {
            if (!String(path).includes('outcome=accepted')) return original(path, options);
            return new Promise((done) => setTimeout(done, 700)).then(() => original(path, options)).then((response) => {
              const json = response.json.bind(response);
              response.json = () => json().then((value) => { setTimeout(() => { window.__staleHandled = true; }, 0); return value; });
              return response;
            });
          };
          const s = document.getElementById('f-outcome');
          s.value = 'accepted'; s.dispatchEvent(new Event('change'));
          s.value = 'rejected'; s.dispatchEvent(new Event('change'));
        })()""")
        browser.wait("window.__staleHandled === true", "the slow answer never came")
        outcomes = browser.wait(
            f"(() => {{ const rows = {ROWS}; return rows.length"
            " ? rows.map(r => r.outcome) : null })()", "the filter never applied")
        seen["filtered"] = outcomes

        step = "dead letters"
        browser.evaluate("document.getElementById('tab-dead').click()")
        letter = browser.wait(
            "(() => { const tr = document.querySelector('#dead-rows tr'); return tr && tr.querySelector('button.replay')"
            " ? { offset: tr.dataset.offset, text: tr.textContent } : null })()", "no dead letter to replay")
        seen["deadLetter"] = letter
        browser.evaluate(f"document.querySelector('#dead-rows tr[data-offset=\"{letter['offset']}\"] button.replay').click()")
        seen["replay"] = browser.wait(
            f"(() => {{ const tr = document.querySelector('#dead-rows tr[data-offset=\"{letter['offset']}\"]');"
            " const done = tr && tr.querySelector('.outcome.o-accepted, .outcome.o-rejected');"
            " return done && done.textContent.startsWith('replay') ? done.textContent : null })()",
            "the replay never finished")
        seen["notice"] = browser.evaluate("document.getElementById('dead-notice').textContent")

        step = "phone"
        browser.evaluate("document.getElementById('tab-requests').click()")
        browser.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
        time.sleep(0.3)
        seen["phoneOverflow"] = browser.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if arguments.phone_screenshot:
            browser.screenshot(arguments.phone_screenshot)
        seen["ok"] = True
    except (TimeoutError, RuntimeError) as error:
        seen["ok"] = False
        seen["failedAt"] = step
        seen["error"] = str(error)
        try:
            seen["page"] = browser.evaluate("document.body.innerText")[:2000]
        except Exception:
            pass
    finally:
        browser.close()
    print(json.dumps(seen))
    return 0 if seen["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
