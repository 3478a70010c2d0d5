"""The server for real: uvicorn on 127.0.0.1, concurrent clients, a headless browser."""

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import numpy as np
import pytest

from segmnv3 import Segmenter
from segmnv3.data.synthetic import CLASSES, PALETTE, SyntheticSegmentation
from segmnv3.serve import Limits


@pytest.fixture(scope="module")
def image_png():
    scene = SyntheticSegmentation("val", 1, size=(96, 128)).load(0)[0]
    return cv2.imencode(".png", cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))[1].tobytes()


def test_a_full_queue_gets_503_with_retry_after(seg, image_png, live_server):
    entered, gate = threading.Event(), threading.Event()

    class Slow:
        name, precision, device = "slow", "fp32", "cpu"

        def lowres_logits(self, batch):
            entered.set()
            gate.wait(30)
            return seg.backend.lowres_logits(batch)

    slow = Segmenter(Slow(), CLASSES, PALETTE)
    with live_server(slow, Limits(workers=1, queue=0)) as server:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, f"{server.url}/v1/segment", content=image_png,
                                timeout=60)  # fmt: skip
            assert entered.wait(30)  # the only worker is busy
            busy = httpx.post(f"{server.url}/v1/segment", content=image_png, timeout=60)
            gate.set()
            assert first.result().status_code == 200
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert "busy" in busy.json()["error"]


def test_bounded_load_run_every_request_answered(seg, image_png, live_server):
    """300 requests from 8 concurrent clients: each gets an answer, no 5xx but 503."""
    with live_server(seg, Limits(workers=1, queue=4)) as server:

        def one(i: int) -> int:
            with httpx.Client(timeout=60) as client:
                fmt = ("png", "json", "overlay")[i % 3]
                return client.post(f"{server.url}/v1/segment?format={fmt}",
                                   content=image_png).status_code  # fmt: skip

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one, range(300)))
        health = httpx.get(f"{server.url}/healthz", timeout=10).status_code
    assert len(codes) == 300 and set(codes) <= {200, 503}
    assert codes.count(200) > 0 and health == 200


@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs Debian's chromium-driver "
                    "(.ci/run installs it)")  # fmt: skip
def test_the_page_in_a_real_browser(seg, tmp_path, image_png, live_server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "scene.png").write_bytes(image_png)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    with live_server(seg) as server:
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            driver.get(server.url + "/")
            WebDriverWait(driver, 30).until(
                lambda d: "classes" in d.find_element(By.ID, "model").text
            )
            driver.find_element(By.ID, "file").send_keys(str(tmp_path / "scene.png"))
            WebDriverWait(driver, 60).until(
                lambda d: (
                    d.find_element(By.ID, "overlay").get_attribute("naturalWidth") != "0"
                    and d.find_element(By.ID, "overlay").is_displayed()
                )
            )
            overlay = driver.find_element(By.ID, "overlay")
            assert overlay.get_attribute("naturalWidth") == "128"
            assert overlay.get_attribute("src").startswith("data:image/png;base64,")
            legend = driver.find_element(By.ID, "legend").text
            assert any(name in legend for name in CLASSES) and "%" in legend
            driver.save_screenshot(str(tmp_path / "page.png"))
        finally:
            driver.quit()
    shot = cv2.imread(str(tmp_path / "page.png"))
    assert shot is not None and shot.shape[0] > 100 and np.std(shot) > 5
