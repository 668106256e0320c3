"""docs/serve.png: the search page on a generated index, in headless Chromium.

Usage: .venv/bin/python -m tests.serve.screenshot docs/serve.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.cli.helpers import run_glscl
from tests.conftest import TINY_ARCH
from tests.media import default_codec, make_clip
from tests.serve.browser import headless_chromium, running_server

CLIPS = {  # name: (colour, background, seconds)
    "holiday 2023/beach/sunset over the bay.mp4": ((250, 150, 40), (30, 60, 120), 4),
    "holiday 2023/beach/kids building a sandcastle.mp4": ((230, 200, 120), (40, 120, 180), 3),
    "holiday 2023/mountains/cable car.mp4": ((200, 30, 30), (120, 160, 200), 75),
    "garden/tomatoes ripening.mp4": ((220, 40, 30), (40, 110, 40), 3),
    "garden/the cat on the fence.mp4": ((60, 60, 60), (150, 200, 120), 3),
    "birthdays/cake and candles.mp4": ((250, 230, 120), (90, 40, 90), 3),
    "cooking/pasta night.mp4": ((240, 220, 160), (120, 60, 30), 3),
    "cooking/pouring rice.mp4": ((245, 245, 235), (70, 70, 80), 3),
}


def main(out: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from glscl_index.live_index import LiveIndex
    from glscl_index.serve import create_app
    from glscl_index.serve.thumbnails import ThumbnailCache

    work = Path(tempfile.gettempdir()) / "glscl-screenshot"  # a fixed name, so the picture shows stable paths
    shutil.rmtree(work, ignore_errors=True)
    videos = work / "Videos"
    try:
        for name, (color, background, seconds) in CLIPS.items():
            make_clip(videos / name, color=color, background=background, seconds=seconds, fps=4 if seconds > 10 else 10,
                      size=(192, 108), codec=default_codec())
        (videos / "phone backup").mkdir()
        shutil.copy(videos / "garden/the cat on the fence.mp4", videos / "phone backup/VID_20230612.mp4")
        for args in (("checkpoint", "random", str(work / "ck"), "--model", TINY_ARCH, "--decoder-ffn", "64"),
                     ("index", str(videos), "--index", str(work / "index"), "--checkpoint", str(work / "ck"))):
            done = run_glscl(*args)
            assert done.returncode == 0, done.stderr
        app = create_app(LiveIndex(work / "index"), ThumbnailCache(work / "thumbs"))
        with running_server(app) as base, headless_chromium(1280, 1000) as driver:
            driver.get(base)
            driver.find_element(By.ID, "q").send_keys("a red cable car climbing a mountain", Keys.ENTER)
            wait = WebDriverWait(driver, 60)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) == len(CLIPS))
            wait.until(lambda d: d.execute_script(
                "return [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"))
            cards = driver.find_elements(By.CSS_SELECTOR, ".card")
            target = next(c for c in cards if "cable car" in c.text)
            target.click()
            wait.until(lambda d: d.execute_script("return document.getElementById('video').currentTime") > 1.5)
            driver.execute_script("document.getElementById('video').pause(); window.scrollTo(0, 0)")
            driver.execute_script("arguments[0].focus()", target)
            time.sleep(0.5)
            driver.save_screenshot(out)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/serve.png")
