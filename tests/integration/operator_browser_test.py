#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's chromium, headless, driven by python3-selenium
through chromium-driver, against a real elasticdns-central on loopback. It loads /ui, enters
the read token, sees the services table, then a write through the API appears on the page
without a reload (a marker set in the page survives); the token is in sessionStorage, never in
the URL; the browser reports no Content-Security-Policy violation. Saves a screenshot as
BUILD_DIR/operator-dashboard.png. Exit 77 (SKIPPED) when chromium, chromedriver or selenium is
missing. The browser reaches nothing but loopback: other hosts go to a dead proxy and resolve
to nothing.
    operator_browser_test.py BUILD_DIR
"""
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
import harness  # noqa: E402  (this directory)

SKIP = 77
DEADLINE = 15  # seconds


def skip(why):
    print("SKIPPED:", why)
    sys.exit(SKIP)


def browser_paths():
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        skip("chromium and chromium-driver are not installed (scripts/install-deps.sh)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        skip("python3-selenium is not installed (scripts/install-deps.sh)")
    return chromium, driver


def open_browser(chromium, driver, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--window-size=1280,900",
                f"--user-data-dir={profile}",
                # Only loopback: every other host goes to a closed port and resolves to nothing.
                "--proxy-server=http://127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def main():
    build = sys.argv[1]
    chromium, driver_path = browser_paths()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ws = harness.Workspace(prefix="edns-browser-")
    profile = tempfile.mkdtemp(prefix="edns-chromium-")
    browser = None
    try:
        central = harness.Central(ws, os.path.join(build, "central", "elasticdns-central"))
        central.start(DEADLINE)
        central.put("servers", "host1", {"address": "127.0.0.1"})
        central.put("containers", "api-1", {"service": "api", "version": "v1",
                                            "server": "host1", "address": "10.0.0.1"})
        browser = open_browser(chromium, driver_path, profile)
        wait = WebDriverWait(browser, DEADLINE)
        browser.get(central.url + "/ui")
        browser.find_element(By.ID, "token").send_keys(central.agent_token)
        browser.find_element(By.ID, "connect").click()
        services = browser.find_element(By.ID, "services")
        wait.until(lambda b: "api" in services.text and "v1" in services.text)
        print("ok: the services table shows api v1")
        browser.execute_script("window.__noReload = 42;")
        central.put("containers", "api-2", {"service": "api", "version": "v2",
                                            "server": "host1", "address": "10.0.0.2"})
        wait.until(lambda b: "v2" in services.text)
        deploys = browser.find_element(By.ID, "deploys").text
        assert "api: v1 1 running → v2 1 running" in deploys, deploys
        assert browser.execute_script("return window.__noReload;") == 42, "the page reloaded"
        print("ok: the write appeared live, without a reload, with the deploy's progress")
        assert central.agent_token not in browser.current_url
        assert browser.execute_script(
            "return sessionStorage.getItem('elasticdns.token');") == central.agent_token
        assert browser.execute_script("return localStorage.length;") == 0
        print("ok: the token is in sessionStorage only, not in the URL")
        shot = os.path.join(build, "operator-dashboard.png")
        browser.save_screenshot(shot)
        print("ok: screenshot", shot)
        problems = [e["message"] for e in browser.get_log("browser")
                    if "Content Security Policy" in e["message"] or e["level"] == "SEVERE"]
        assert not problems, problems
        print("ok: no CSP violation or error in the browser's console")
        return 0
    finally:
        if browser is not None:
            browser.quit()
        ws.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
