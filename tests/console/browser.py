"""A headless Chromium for the console tests (Debian's chromium and
chromium-driver, driven by python3-selenium).

The browser keeps two logs that the tests read: the console (JavaScript
errors, failed loads) and the performance log, whose Network events name
every request the page made. Both drain when read; Browser.drain() keeps
what it read so that a test can look at its own share.
"""
import json
import os
import shutil
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 900


class Browser:
    def __init__(self, base):
        self.base = base
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=%d,%d" % (WIDTH, HEIGHT), "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-default-apps", "--disable-sync", "--metrics-recording-only",
                  "--no-proxy-server", "--lang=en-US"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.d = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
        self.d.set_page_load_timeout(20)

    def quit(self):
        self.d.quit()

    # ---- pages

    def open(self, path):
        self.d.get(self.base + path)

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def wait(self, pred, timeout=10.0, what="condition"):
        """Calls pred() until it returns something true (and returns that);
        fails at the deadline."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = pred()
                if last:
                    return last
            except (StaleElementReferenceException, WebDriverException) as e:
                last = e
            if time.monotonic() > deadline:
                raise AssertionError("%s not reached in %.1fs (last: %r); page:\n%s"
                                     % (what, timeout, last, self.text()[:2000]))
            time.sleep(0.05)

    def wait_css(self, css, timeout=10.0):
        return self.wait(lambda: self.finds(css), timeout, "an element %s" % css)[0]

    def text(self):
        try:
            return self.find("body").text
        except WebDriverException:
            return ""

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def sign_in(self, email, password):
        self.open("/console/workflows")
        self.wait_css("#signin")
        self.find("#signin input[name=email]").send_keys(email)
        self.find("#signin input[name=password]").send_keys(password)
        self.find("#signin button[type=submit]").click()
        self.wait(lambda: email in self.find("#who").text, what="signed in as " + email)

    def as_user(self, email, password):
        """Makes sure the browser is signed in as email (the tests run alone too)."""
        self.open("/console/workflows")
        self.wait(lambda: self.finds("#signin") or self.finds("#who"), what="the page")
        if self.finds("#who") and email in self.find("#who").text:
            return
        if self.finds("#who"):
            self.sign_out()
        self.sign_in(email, password)

    def sign_out(self):
        self.find("#signout").click()
        self.wait_css("#signin")

    def mark(self):
        """Marks the page; marked() stays true until the page is loaded again."""
        self.js("window.__aopMark = 1")

    def marked(self):
        return self.js("return window.__aopMark === 1")

    # ---- logs

    def console_log(self):
        return self.d.get_log("browser")

    def requests(self):
        """The URLs of every request the page sent since the last call."""
        urls = []
        for entry in self.d.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                urls.append(msg["params"]["request"]["url"])
        return urls

    def screenshot(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        png = self.d.get_screenshot_as_png()
        with open(path, "wb") as f:
            f.write(png)
        return len(png)

    def canvas_painted(self, css):
        """How many pixels of the canvas under css are not blank."""
        return self.js("""
            const c = document.querySelector(arguments[0]);
            if (!c) return -1;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
            return n;""", css)
