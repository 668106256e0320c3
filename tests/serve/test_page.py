"""The search page in a real browser (headless Chromium via Selenium): search with Enter, real thumbnails,
playback from the segment's start, arrow keys between cards; with and without a token."""

from __future__ import annotations

import pytest

from glscl_index.live_index import LiveIndex
from glscl_index.serve import create_app
from glscl_index.serve.thumbnails import ThumbnailCache
from tests.serve.browser import headless_chromium, require_browser, running_server

# Mean and standard deviation of an <img>'s pixels, as the browser decoded it.
IMAGE_STATS = """
const img = arguments[0], canvas = document.createElement("canvas");
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext("2d");
context.drawImage(img, 0, 0);
const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
let sum = 0, squares = 0, n = 0;
for (let i = 0; i < data.length; i += 4)
  for (let c = 0; c < 3; c++) { sum += data[i + c]; squares += data[i + c] ** 2; n++; }
const mean = sum / n;
return [mean, Math.sqrt(squares / n - mean * mean)];
"""
VIDEO_STATE = """
const v = document.getElementById("video");
return {time: v.currentTime, error: v.error && v.error.code, ready: v.readyState, paused: v.paused, hidden: v.hidden,
        start: parseFloat(v.dataset.start)};
"""


@pytest.mark.slow
@pytest.mark.parametrize("token", [None, "s3cret"])
def test_search_thumbnails_and_playback_in_chromium(served_index, tmp_path, token):
    require_browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    app = create_app(LiveIndex(served_index.index), ThumbnailCache(tmp_path / "thumbs"), token)
    with running_server(app) as base, headless_chromium() as driver:
        driver.get(base + ("/?token=" + token if token else "/"))
        box = driver.find_element(By.ID, "q")
        box.send_keys("a square moving to the right", Keys.ENTER)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) == 3)
        cards = driver.find_elements(By.CSS_SELECTOR, ".card")
        thumbs = [card.find_element(By.CSS_SELECTOR, "img.thumb") for card in cards]
        wait.until(lambda d: all(d.execute_script("return arguments[0].complete", img) for img in thumbs))
        for img in thumbs:
            assert driver.execute_script("return arguments[0].naturalWidth", img) > 0
            mean, spread = driver.execute_script(IMAGE_STATS, img)
            assert spread > 5, (mean, spread)  # the coloured square on its background, not a blank image
        names = [card.find_element(By.CSS_SELECTOR, ".name") for card in cards]
        assert {n.text for n in names} == {"red square.mp4", "green.mp4", "long blue.mp4"}
        assert all(n.get_attribute("title").startswith(str(served_index.videos)) for n in names)

        # The card whose segment starts latest: playback must begin there, not at 0.
        starts = [float(card.get_attribute("data-start")) for card in cards]
        chosen = cards[starts.index(max(starts))]
        chosen.click()
        wait.until(lambda d: d.execute_script(VIDEO_STATE)["ready"] >= 1 or d.execute_script(VIDEO_STATE)["error"])
        state = driver.execute_script(VIDEO_STATE)
        assert state["error"] is None and not state["hidden"], state
        assert state["start"] == max(starts)
        assert state["time"] >= max(starts) - 0.05, state
        wait.until(lambda d: d.execute_script(VIDEO_STATE)["time"] > max(starts) + 0.3)  # it plays
        assert driver.execute_script(VIDEO_STATE)["error"] is None

        # Keyboard: from the search box down to the first card, then right to the second.
        box.click()
        box.send_keys(Keys.ARROW_DOWN)
        assert driver.switch_to.active_element == cards[0]
        cards[0].send_keys(Keys.ARROW_RIGHT)
        assert driver.switch_to.active_element == cards[1]
        cards[1].send_keys(Keys.ARROW_LEFT)
        assert driver.switch_to.active_element == cards[0]


@pytest.mark.slow
def test_a_codec_the_browser_cannot_play_leaves_the_thumbnail_and_the_path(served_index, tmp_path):
    """MPEG-4 part 2 (what PyAV writes without libx264): Chromium fires `error`; the card says where the file is."""
    require_browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from glscl_index.model.spec import ModelSpec
    from glscl_index.video.decode_config import DecodeConfig
    from pipelines.index import IndexJobConfig, run_index
    from tests.media import make_clip

    clip = make_clip(tmp_path / "videos" / "old camera.avi", codec="mpeg4", color=(200, 120, 40))
    # In process: what `glscl index VIDEOS --checkpoint CK --workers 1` writes, without an interpreter start-up.
    summary = run_index(IndexJobConfig(paths=[str(clip.parent)], index_dir=tmp_path / "index",
                                       model=ModelSpec(checkpoint=str(served_index.checkpoint)),
                                       decode=DecodeConfig(workers=1)))
    assert summary.added == 1 and summary.failed == 0
    app = create_app(LiveIndex(tmp_path / "index"), ThumbnailCache(tmp_path / "thumbs"))
    with running_server(app) as base, headless_chromium() as driver:
        driver.get(base)
        driver.find_element(By.ID, "q").send_keys("an orange square", Keys.ENTER)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".card"))
        card = driver.find_element(By.CSS_SELECTOR, ".card")
        thumb = card.find_element(By.CSS_SELECTOR, "img.thumb")
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb))
        card.click()
        note = card.find_element(By.CSS_SELECTOR, ".unplayable")
        wait.until(lambda d: note.is_displayed())
        assert str(clip) in note.text
        assert thumb.is_displayed() and driver.execute_script(VIDEO_STATE)["error"] is not None
        assert str(clip) in driver.find_element(By.ID, "player-error").text
