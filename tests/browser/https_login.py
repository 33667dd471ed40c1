#!/usr/bin/python3
"""A real browser (headless Chromium through chromedriver and selenium) against a hub that
serves HTTPS with a certificate of swarmhub's own CA.

1. Without the CA trusted, opening the hub's login page must show Chromium's certificate
   interstitial (net::ERR_CERT_AUTHORITY_INVALID), not the login form.
2. With the CA imported into an NSS database of a temporary HOME (what
   `certutil -d sql:$HOME/.pki/nssdb -A -t 'C,,' -n swarmhub-ca -i ca.pem` does for a user), it
   logs in through the hub's login form at the URL the hub is configured with, waits for
   JupyterLab's shell, saves a file through the UI's own contents API (fetch PUT from the page,
   the _xsrf cookie as X-XSRFToken), starts a kernel and runs `print(6 * 7)` in it over the
   kernel's wss:// WebSocket (what a notebook cell needs, through the hub's TLS front), opens the
   file in JupyterLab's editor and saves a screenshot.

Never --ignore-certificate-errors: the certificate is really checked. Prints one JSON line with
what it saw; exits 1 with the reason (and a screenshot of the failure when there is a page).

Run with the system python: /usr/bin/python3 (Debian's python3-selenium, chromium,
chromium-driver, libnss3-tools).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# JupyterLab's shell: the element the lab renders once it runs
LAB_SHELL = "#jp-main-dock-panel"


def fail(msg, driver=None, shot=None):
    if driver is not None and shot:
        try:
            driver.save_screenshot(shot)
            msg += f" (screenshot of the failure: {shot}; URL {driver.current_url})"
        except WebDriverException:
            pass
    print(json.dumps({"ok": False, "error": msg}), flush=True)
    sys.exit(1)


def browser(home):
    """Chromium with HOME=home, so its NSS database is home/.pki/nssdb."""
    os.environ["HOME"] = home
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
    ):
        opts.add_argument(a)
    service = Service(CHROMEDRIVER, log_path=os.path.join(home, "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(60)
    return driver


def nssdb(home, ca):
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db, exist_ok=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True)
    if ca:
        subprocess.run(
            ["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "swarmhub-ca", "-i", ca],
            check=True,
        )


def untrusted(url, shot_dir):
    """The login page without the CA: the certificate interstitial, no login form."""
    home = tempfile.mkdtemp(prefix="swarmhub-browser-untrusted-")
    nssdb(home, None)
    driver = browser(home)
    try:
        try:
            driver.get(url + "hub/login")
        except WebDriverException as e:
            # some chromedriver versions report the interstitial as a navigation error
            text = str(e)
            if "ERR_CERT" in text:
                return text.split("\n")[0]
            raise
        page = driver.page_source
        forms = driver.find_elements(By.ID, "username_input")
        shot = os.path.join(shot_dir, "browser-untrusted.png")
        driver.save_screenshot(shot)
        if forms:
            fail("the login form loaded without the CA trusted: the certificate was not checked")
        if "ERR_CERT_AUTHORITY_INVALID" not in page:
            fail(f"no ERR_CERT_AUTHORITY_INVALID interstitial without the CA; page: {page[:400]!r}", driver, shot)
        return f"net::ERR_CERT_AUTHORITY_INVALID interstitial (screenshot {shot})"
    finally:
        driver.quit()


def trusted(args):
    home = tempfile.mkdtemp(prefix="swarmhub-browser-")
    nssdb(home, args.ca)
    driver = browser(home)
    shot_fail = os.path.join(args.shots, "browser-failure.png")
    try:
        driver.get(args.url + "hub/login")
        try:
            WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "username_input")))
        except TimeoutException:
            fail(f"no login form at {args.url}hub/login: {driver.page_source[:400]!r}", driver, shot_fail)
        if not driver.current_url.startswith("https://"):
            fail(f"the login page is not on https: {driver.current_url}", driver, shot_fail)
        driver.find_element(By.ID, "username_input").send_keys(args.user)
        driver.find_element(By.ID, "password_input").send_keys(args.password)
        driver.find_element(By.ID, "login_submit").click()
        started = time.monotonic()
        prefix = f"{args.url}user/{args.user}/"
        # the hub spawns the server (or finds it running) and sends the browser to it
        try:
            WebDriverWait(driver, args.spawn_seconds).until(lambda d: d.current_url.startswith(prefix))
        except TimeoutException:
            fail(f"the browser did not reach {prefix} within {args.spawn_seconds} s", driver, shot_fail)
        # JupyterLab itself, whatever the image's default page is
        if not driver.current_url.startswith(prefix + "lab"):
            driver.get(prefix + "lab")
        try:
            WebDriverWait(driver, 120).until(
                ec.presence_of_element_located((By.CSS_SELECTOR, LAB_SHELL))
            )
        except TimeoutException:
            fail(f"JupyterLab's shell ({LAB_SHELL}) did not appear at {prefix}lab", driver, shot_fail)
        lab_took = time.monotonic() - started
        lab_url = driver.current_url
        script = """
            const [url, content, done] = arguments;
            const m = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
            const xsrf = m ? decodeURIComponent(m[1]) : "";
            fetch(url, {
                method: "PUT",
                credentials: "same-origin",
                headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf},
                body: JSON.stringify({type: "file", format: "text", content: content}),
            }).then(r => r.text().then(t => done({status: r.status, body: t, xsrf: xsrf !== ""})))
              .catch(e => done({status: 0, body: String(e), xsrf: xsrf !== ""}));
        """
        driver.set_script_timeout(60)
        put_url = f"{prefix}api/contents/{args.file}"
        r = driver.execute_async_script(script, put_url, args.content)
        if r["status"] not in (200, 201):
            fail(f"PUT {put_url} from the page: HTTP {r['status']} {r['body'][:300]} (xsrf cookie: {r['xsrf']})", driver, shot_fail)
        # a kernel from the page, and code run in it over its WebSocket (wss:// through the hub's
        # TLS front and the proxy): what running a notebook cell needs
        kernel = """
            const [base, done] = arguments;
            let finished = false;
            const end = (r) => { if (!finished) { finished = true; done(r); } };
            const m = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
            const hdr = {"Content-Type": "application/json",
                         "X-XSRFToken": m ? decodeURIComponent(m[1]) : ""};
            (async () => {
                const r = await fetch(base + "api/kernels", {
                    method: "POST", credentials: "same-origin", headers: hdr, body: "{}"});
                if (r.status !== 201) {
                    return end({ok: false, step: "start the kernel", status: r.status,
                                body: (await r.text()).slice(0, 300)});
                }
                const k = await r.json();
                const session = crypto.randomUUID();
                const url = base.replace(/^http/, "ws") + "api/kernels/" + k.id
                    + "/channels?session_id=" + session;
                const ws = new WebSocket(url);
                const timer = setTimeout(() => end({ok: false, step: "no output", url}), 150000);
                ws.onerror = () => { clearTimeout(timer); end({ok: false, step: "WebSocket error", url}); };
                ws.onclose = (e) => { clearTimeout(timer);
                    end({ok: false, step: "WebSocket closed " + e.code, url}); };
                ws.onopen = () => ws.send(JSON.stringify({
                    header: {msg_id: crypto.randomUUID(), username: "", session,
                             msg_type: "execute_request", version: "5.3",
                             date: new Date().toISOString()},
                    parent_header: {}, metadata: {}, channel: "shell", buffers: [],
                    content: {code: "print(6 * 7)", silent: false, store_history: false,
                              user_expressions: {}, allow_stdin: false, stop_on_error: true}}));
                ws.onmessage = async (e) => {
                    if (typeof e.data !== "string") return;
                    const msg = JSON.parse(e.data);
                    if (msg.msg_type === "stream" && msg.content.text.includes("42")) {
                        clearTimeout(timer);
                        ws.onclose = null;
                        ws.close();
                        await fetch(base + "api/kernels/" + k.id, {
                            method: "DELETE", credentials: "same-origin", headers: hdr});
                        end({ok: true, url, output: msg.content.text.trim()});
                    }
                };
            })().catch(e => end({ok: false, step: "exception", error: String(e)}));
        """
        driver.set_script_timeout(180)
        ran = driver.execute_async_script(kernel, prefix)
        if not ran.get("ok") or not ran["url"].startswith("wss://"):
            fail(f"a kernel's code over its WebSocket from the page: {ran}", driver, shot_fail)
        # the saved file, opened in JupyterLab's editor: what the picture shows
        driver.get(f"{prefix}lab/tree/{args.file}")
        first_line = args.content.splitlines()[0]
        try:
            WebDriverWait(driver, 120).until(
                lambda d: any(
                    first_line in e.text for e in d.find_elements(By.CSS_SELECTOR, ".cm-content")
                )
            )
        except TimeoutException:
            fail(f"JupyterLab's editor did not show {args.file} with its content", driver, shot_fail)
        shot = os.path.join(args.shots, "jupyterlab-https.png")
        driver.save_screenshot(shot)
        return {
            "lab_url": lab_url,
            "login_to_lab_seconds": round(lab_took, 1),
            "screenshot": shot,
            "put": put_url,
            "put_status": r["status"],
            "kernel_websocket": ran["url"].split("?")[0],
            "kernel_output": ran["output"],
        }
    finally:
        driver.quit()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="the hub's configured URL, https://host:port/")
    p.add_argument("--ca", required=True, help="the CA (PEM) the hub's certificate comes from")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--file", required=True, help="path to save, relative to the server's root")
    p.add_argument("--content", required=True)
    p.add_argument("--shots", required=True, help="directory for screenshots")
    p.add_argument("--spawn-seconds", type=int, default=300)
    args = p.parse_args()
    if not args.url.endswith("/"):
        args.url += "/"
    os.makedirs(args.shots, exist_ok=True)
    seen = {"untrusted": untrusted(args.url, args.shots)}
    seen.update(trusted(args))
    seen["ok"] = True
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
