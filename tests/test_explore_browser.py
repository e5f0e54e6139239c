"""The explorer in a real browser (headless Chromium from Debian, driven by Selenium through
chromedriver): the page loads, a slider move changes the decoded picture, the level of a hierarchy
and the class of a conditional model switch, an upload is reconstructed or refused with the
product's message, and the page asks nothing of any host but its own (Chromium's network log).

Run with ``pytest --browser`` (CI does, after installing chromium and chromium-driver)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaezoo.explore import Explorer, serve

from test_explore import held_out, tiny_model

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("VAEZOO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VAEZOO_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver (or set VAEZOO_CHROMIUM and "
                        f"VAEZOO_CHROMEDRIVER)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 # no name resolves but this machine's: a request elsewhere fails, and the log shows it
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser):
    servers = []

    def open_page(model, **kwargs):
        images, labels = held_out()
        explorer = Explorer(model, "tiny", images, labels, card={"classes": ["a", "b", "c", "d"]}, **kwargs)
        server, _ = serve(explorer)
        servers.append(server)
        browser.get_log("performance")  # start the network log afresh
        browser.get(server.url)
        wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        return server

    yield open_page
    for server in servers:
        server.shutdown()
        server.server_close()


def wait(driver, condition, seconds: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def source(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).get_attribute("src") or ""


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def move_first_slider(driver, steps: int = 20) -> None:
    from selenium.webdriver.common.keys import Keys

    slider = driver.find_element("css selector", "#sliders input[type=range]")
    slider.click()
    for _ in range(steps):
        slider.send_keys(Keys.ARROW_RIGHT)


def test_a_slider_moves_the_picture_and_an_upload_is_reconstructed(browser, page, tmp_path):
    from vaezoo.schemas import DataConfig

    from _tiny_training import TINY_DATASET, register

    register()
    server = page(tiny_model("vae"), data=DataConfig.model_validate({"dataset": TINY_DATASET, "val_size": 0}))
    assert browser.find_element("id", "title").text == "tiny"
    # samples of the model's prior and, beside them, of the mixture fitted on the training images
    wait(browser, lambda d: source(d, "gmm-image").startswith("data:image/png"))
    assert source(browser, "gmm-image") != source(browser, "samples-image")
    assert "family vae" in browser.find_element("id", "facts").text
    sliders = browser.find_elements("css selector", "#sliders input[type=range]")
    assert len(sliders) == 4  # the tiny model's four dimensions, ranked
    before = source(browser, "decoded")
    assert before.startswith("data:image/png;base64,")
    move_first_slider(browser)
    wait(browser, lambda d: source(d, "decoded") != before)
    assert source(browser, "decoded") != before
    # an image of the model's size is reconstructed; another size is refused with what the model takes
    fits, wrong = tmp_path / "fits.png", tmp_path / "wrong.png"
    Image.fromarray((np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)).save(fits)
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(wrong)
    browser.find_element("id", "reconstruct-file").send_keys(str(fits))
    wait(browser, lambda d: source(d, "reconstruct-image").startswith("data:image/png"))
    browser.find_element("id", "reconstruct-file").send_keys(str(wrong))
    wait(browser, lambda d: "this model takes" in d.find_element("id", "reconstruct-error").text)
    assert "20 x 20" in browser.find_element("id", "reconstruct-error").text
    assert browser.save_screenshot(str(tmp_path / "explore.png")) and (tmp_path / "explore.png").stat().st_size > 0
    # every network request went to the page's own server (its images are data URLs; chrome:// is the
    # browser's own new-tab page, never the network)
    urls = requested_urls(browser)
    network = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp")]
    assert any(u.startswith(server.url + "api/") for u in network)
    assert [u for u in network if not u.startswith(server.url)] == []
    # and nothing the page tried was stopped by its Content-Security-Policy (an attempt to load from elsewhere)
    refused = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []


def test_a_hierarchy_switches_its_level(browser, page):
    page(tiny_model("hvae"))
    level = browser.find_element("id", "level")
    assert level.is_displayed() and level.get_attribute("value") == "z2"  # the top level first
    from selenium.webdriver.support.ui import Select

    Select(level).select_by_value("z1")
    wait(browser, lambda d: "z1[" in d.find_element("css selector", "#sliders label").text)
    before = source(browser, "decoded")
    move_first_slider(browser)
    wait(browser, lambda d: source(d, "decoded") != before)


def test_a_conditional_model_switches_its_class(browser, page):
    page(tiny_model("cvae", conditional_prior=True))
    from selenium.webdriver.support.ui import Select

    label = Select(browser.find_element("id", "label"))
    assert [o.text for o in label.options] == ["0: a", "1: b", "2: c", "3: d"]
    before = source(browser, "decoded")
    label.select_by_value("3" if label.first_selected_option.get_attribute("value") != "3" else "0")
    wait(browser, lambda d: source(d, "decoded") != before)
