"""The explorer's screenshot in the docs: one published model's page in headless Chromium.

    python scripts/explore_screenshot.py [NAME] [-o docs/images/explore.png]

Needs Debian's chromium and chromium-driver and selenium (the test extra). The page starts from test
image 0 (samples of the prior and of the fitted mixture beside them), its most informative slider is
moved to +2, and an interpolation is drawn, as a user would.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

import vaezoo
from vaezoo.cli.explore import key_figures
from vaezoo.data import fashion_mnist
from vaezoo.explore import Explorer, serve
from vaezoo.hub.index import get_entry

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1500,1100",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="fashion-conv64")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/images/explore.png"))
    args = parser.parse_args(argv)
    data = fashion_mnist(None)
    entry = get_entry(args.name)
    explorer = Explorer(vaezoo.load(args.name), args.name, data.test_images[:1000].float() / 255,
                        data.test_labels[:1000], card={**key_figures(entry), "classes": data.classes},
                        data=entry.recipe.data)
    server, _ = serve(explorer)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(server.url)
            WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
            before = driver.find_element("id", "decoded").get_attribute("src")
            driver.execute_script("const s = document.querySelector('#sliders input[type=range]'); s.value = 2; "
                                  "s.dispatchEvent(new Event('input'));")
            WebDriverWait(driver, 30).until(lambda d: d.find_element("id", "decoded").get_attribute("src") != before)
            driver.find_element("id", "path-button").click()
            WebDriverWait(driver, 30).until(lambda d: d.find_element("id", "path-image").get_attribute("src"))
            args.output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.output))
        finally:
            driver.quit()
            server.shutdown()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
