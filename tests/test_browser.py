"""The search page in a real browser: Debian's Chromium, headless, driven by Selenium, against the app
served on 127.0.0.1 over an index made by the real pipeline. Screenshots land in test-artifacts/."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from recording_index.index.database import Index
from recording_index.models import Chunk, Recording, Segment

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="no Chromium here: apt-get install chromium chromium-driver (.ci/run does)"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory, cache_dir, sample_mp3):
    path = tmp_path_factory.mktemp("web") / "index.db"
    env = {**os.environ, "RECORDING_INDEX_CACHE_DIR": str(cache_dir),
           "ARGOS_PACKAGES_DIR": str(tmp_path_factory.mktemp("no-argos"))}
    result = subprocess.run([sys.executable, "-m", "recording_index.cli", "run", "--catalog", "config/demo.toml",
                             "--db", str(path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    evil = '<script>document.title="pwned"</script> "><img src=x onerror="document.title=\'pwned\'">'
    with Index(path) as ix:
        rec = Recording(id="evil", source=str(sample_mp3), title="Piège " + evil, media_path=str(sample_mp3),
                        duration=34.1, content_hash="evil")
        seg = Segment(0, 0.5, 5.0, "piège " + evil, text_en="trap " + evil)
        ix.add(rec, [seg], [Chunk("evil", 0, 0.5, 5.0, seg.text, seg.text_en)])
    return path


@contextlib.contextmanager
def serving(app):
    """`app` served by uvicorn on a free port of 127.0.0.1, in a thread."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not running.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(db):
    from recording_index.web import create_app

    with serving(create_app(db)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1100,900", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver, script, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def test_search_click_a_hit_and_the_player_lands_on_it(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(server + "/")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("traduction automatique", Keys.ENTER)
    link = wait_for(browser, "return document.querySelector('a.hit-link')")
    from urllib.parse import parse_qs, urlsplit

    moment = float(parse_qs(urlsplit(link.get_attribute("href")).query)["t"][0])
    assert "passage" in browser.find_element(By.ID, "count").text
    assert "traduction" in browser.find_element(By.CSS_SELECTOR, ".snippet mark").text
    browser.save_screenshot(str(ARTIFACTS / "search.png"))
    link.click()
    marked = wait_for(browser, "return document.querySelector('#transcript mark')")
    assert marked.text.lower() in ("traduction", "automatique")  # the words searched for, marked
    wait_for(browser, "const p = document.getElementById('player'); return p && p.readyState >= 1")
    now = wait_for(browser, f"const t = document.getElementById('player').currentTime; "
                            f"return Math.abs(t - {moment}) < 0.3 ? t : null")
    assert now == pytest.approx(moment, abs=0.3)
    # The English subtitle track is the default one and is loaded (TextTrack readyState 2: LOADED).
    assert wait_for(browser, "const t = document.querySelector('track[srclang=en]'); return t && t.readyState === 2")
    cues = browser.execute_script("return document.getElementById('player').textTracks[1].cues.length")
    assert cues >= 5
    # The current line follows playback; a click on another line seeks there.
    assert wait_for(browser, "return document.querySelector('#transcript tr.current')")
    rows = browser.find_elements(By.CSS_SELECTOR, "#transcript tr[data-start]")
    target = float(rows[-1].get_attribute("data-start"))
    rows[-1].click()
    wait_for(browser, f"return Math.abs(document.getElementById('player').currentTime - {target}) < 1.0")
    wait_for(browser, "const rows = document.querySelectorAll('#transcript tr[data-start]'); "
                      "return rows[rows.length - 1].classList.contains('current')")
    browser.save_screenshot(str(ARTIFACTS / "recording.png"))


def test_an_english_query_finds_what_was_said_in_french(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/search?q=programmer&lang=en")
    hits = browser.find_elements(By.CSS_SELECTOR, "a.hit-link")
    assert hits and "Éric Joanis" in browser.find_element(By.CSS_SELECTOR, ".hit").text


def test_markup_in_transcripts_and_titles_is_shown_as_text(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/search?q=piège")
    assert '<script>document.title="pwned"</script>' in browser.find_element(By.CSS_SELECTOR, ".hit").text
    browser.get(server + "/recordings/evil")
    # Shown literally in the title, and no script replaced it.
    assert browser.title.startswith('Piège <script>document.title="pwned"</script>') and browser.title != "pwned"
    assert '<img src=x onerror=' in browser.find_element(By.ID, "transcript").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#transcript img")
    browser.save_screenshot(str(ARTIFACTS / "escaped.png"))


def test_the_home_page_lists_the_archive_and_audio_shows_its_captions(server, browser):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(server + "/")
    listed = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#archive a")}
    assert listed and all("/recordings/" in href for href in listed.values())
    assert "recording" in browser.find_element(By.CSS_SELECTOR, "#archive h2").text
    browser.save_screenshot(str(ARTIFACTS / "home.png"))
    browser.get(next(href for title, href in listed.items() if "Joanis" in title))
    wait_for(browser, "const p = document.getElementById('player'); return p && p.readyState >= 1")
    # Browsers draw no captions for <audio>: the page shows the current cue of each language under it.
    browser.execute_script("document.getElementById('player').currentTime = 10")
    french = wait_for(browser, "return document.getElementById('caption-fr').textContent.trim() || null")
    english = wait_for(browser, "return document.getElementById('caption-en').textContent.trim() || null")
    assert french != english and len(french) > 5 and len(english) > 5
    browser.save_screenshot(str(ARTIFACTS / "captions.png"))
    browser.find_element(By.ID, "show-captions").click()
    assert not browser.find_element(By.ID, "caption-fr").is_displayed()
    # A phone: one column, the player still in view after scrolling the transcript.
    browser.set_window_size(390, 844)
    try:
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        top = browser.execute_script("return document.getElementById('player').getBoundingClientRect().top")
        assert 0 <= top < 100
        widths = browser.execute_script("return Array.from(document.querySelectorAll('#transcript td[lang]'))"
                                        ".map((td) => td.getBoundingClientRect().width)")
        assert widths and min(widths) > 300  # each language the phone's width, not a third of it
        browser.save_screenshot(str(ARTIFACTS / "recording-phone.png"))
        # Paused on a silence: no empty band where captions would be.
        browser.find_element(By.ID, "show-captions").click()  # captions shown again
        browser.execute_script("const p = document.getElementById('player'); p.pause(); "
                               "document.getElementById('caption-fr').textContent = ''")
        assert browser.execute_script("return document.getElementById('caption-fr').getBoundingClientRect().height") == 0
        # The home page on a phone: each recording a card, each of its fields named.
        browser.get(server + "/")
        labels = browser.execute_script(
            "return Array.from(document.querySelectorAll('#archive td[data-label]:not(:first-child)'))"
            ".map((td) => getComputedStyle(td, '::before').content)")
        assert labels and all(label.startswith('"') and label.endswith(': "') for label in labels), labels[:3]
        browser.save_screenshot(str(ARTIFACTS / "home-phone.png"))
    finally:
        browser.set_window_size(1100, 900)


@pytest.fixture(scope="module")
def editing_server(db, tmp_path_factory, cache_dir):
    """A copy of the index, served with corrections allowed (serve --allow-edits)."""
    import sqlite3

    from recording_index.config import Settings
    from recording_index.web import create_app

    copy = tmp_path_factory.mktemp("editable") / "index.db"
    with contextlib.closing(sqlite3.connect(db)) as source, contextlib.closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    settings = Settings(cache_dir=str(cache_dir), progress=False)
    with serving(create_app(copy, allow_edits=True, settings=settings)) as url:
        yield url, copy


def test_a_sentence_is_corrected_in_the_page_and_a_cross_site_request_is_refused(editing_server, browser):
    from selenium.webdriver.common.by import By

    from http_server import LocalServer

    url, copy = editing_server
    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(url + "/recordings/ej-fra")
    cell = browser.find_element(By.CSS_SELECTOR, "#s0 td[lang=fr]")
    cell.find_element(By.CSS_SELECTOR, "details.edit summary").click()
    box = cell.find_element(By.NAME, "text")
    assert "Bonjour" in box.get_attribute("value")
    corrected = box.get_attribute("value").replace("Bonjour", "Salut")
    box.clear()
    box.send_keys(corrected)
    cell.find_element(By.NAME, "by").send_keys("Anne")
    browser.save_screenshot(str(ARTIFACTS / "recording-edit.png"))
    cell.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, "return document.getElementById('saved')")
    # The edited sentence and its confirmation are in view, below the sticky player, not under it.
    assert browser.execute_script("""
        const saved = document.getElementById('saved').getBoundingClientRect();
        const player = document.querySelector('.player').getBoundingClientRect();
        return saved.top >= player.bottom - 1 && saved.bottom <= window.innerHeight;""")
    row = browser.find_element(By.CSS_SELECTOR, "#s0 td[lang=fr]")
    assert row.text.startswith("Salut") and "corrected" in row.find_element(By.CSS_SELECTOR, ".origin").text
    assert "by Anne" in row.find_element(By.CSS_SELECTOR, ".origin").get_attribute("title")
    browser.save_screenshot(str(ARTIFACTS / "recording-corrected.png"))
    # Said once: the address no longer carries it, and a reload does not say it again.
    assert "saved=" not in browser.current_url and browser.current_url.endswith("/recordings/ej-fra#s0")
    browser.refresh()
    assert not browser.find_elements(By.ID, "saved")
    browser.get(url + "/search?q=salut")
    assert browser.find_elements(By.CSS_SELECTOR, "a.hit-link")

    # Another site's page posts an edit to the archive as the person browses it: refused.
    with LocalServer() as other:
        other.site.pages["/attack.html"] = f"""<html><body>
            <form method="post" action="{url}/recordings/ej-fra/sentences/0">
            <input name="lang" value="fr"><input name="text" value="Piraté par un autre site.">
            <input name="token" value="{'0' * 64}"></form>
            <script>document.forms[0].submit()</script></body></html>"""
        browser.get(other.url("/attack.html").replace("127.0.0.1", "localhost"))
        answer = wait_for(browser, "return document.body && document.body.innerText.includes('refused') && "
                                   "document.body.innerText")
    assert "cross-site request" in answer
    browser.save_screenshot(str(ARTIFACTS / "cross-site-refused.png"))
    with Index(copy, readonly=True) as index:
        assert index.get("ej-fra")[1][0].text.startswith("Salut")
        assert [c.origin for c in index.corrections("ej-fra")] == ["web"]


# --- the static site (recording-index site), served by python -m http.server from a sub-folder ----

@pytest.fixture(scope="module")
def site(db, tmp_path_factory):
    """The site of the same index, served as a plain static host would, from /archive/."""
    from http_server import free_port, wait_until_answering

    from recording_index.publish.site import build_site

    parent = tmp_path_factory.mktemp("host")
    build_site(db, parent / "archive")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(parent)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/archive/"
    wait_until_answering(url + "index.html", server, 30, lambda: "http.server did not start")
    yield url
    server.terminate()
    server.wait(timeout=10)


def test_the_static_site_searches_in_french_without_accents_and_opens_the_sentence(site, browser):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    browser.set_window_size(1100, 900)
    browser.get(site + "search.html?q=piege")  # "piège" typed without its accent
    wait_for(browser, "return document.querySelectorAll('.pagefind-ui__result-link').length")
    browser.save_screenshot(str(ARTIFACTS / "site-search.png"))
    link = browser.find_element(By.CSS_SELECTOR, ".pagefind-ui__result-link")
    target = link.get_attribute("href")
    assert "recordings/evil.html#t=0.5" in target and browser.title != "pwned"
    link.click()
    wait_for(browser, "return location.pathname.endsWith('/recordings/evil.html')")
    moment = wait_for(browser, "const p = document.getElementById('player'); "
                               "return p && p.readyState >= 1 && p.currentTime > 0 ? p.currentTime : 0")
    assert abs(moment - 0.5) < 1.0
    assert browser.title.startswith("Piège <script>")  # shown as text, never run (it would set "pwned")


def test_the_static_site_searches_the_english_and_shows_captions_as_it_plays(site, browser):
    from selenium.webdriver.common.by import By

    browser.get(site + "search-en.html?q=programmer")
    wait_for(browser, "return document.querySelectorAll('.pagefind-ui__result-link').length")
    link = browser.find_element(By.CSS_SELECTOR, ".pagefind-ui__result-link")
    assert "recordings/ej-fra.html#t=" in link.get_attribute("href") and "lang=en" in link.get_attribute("href")
    link.click()
    browser.execute_script("document.getElementById('player').play()")
    wait_for(browser, "return document.getElementById('caption-en').textContent.length > 0 && "
                      "document.getElementById('caption-fr').textContent.length > 0", timeout=20)
    browser.execute_script("document.getElementById('player').pause()")
    browser.save_screenshot(str(ARTIFACTS / "site-recording.png"))
    # Keyboard: the first Tab reaches the link that skips to the content, and it shows its focus.
    browser.get(site + "index.html")
    from selenium.webdriver.common.keys import Keys

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.execute_script("return document.activeElement.className") == "skip"
    try:
        browser.set_window_size(390, 844)
        browser.get(site + "index.html")
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.save_screenshot(str(ARTIFACTS / "site-home-phone.png"))
        browser.get(site + "recordings/ej-fra.html")
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.save_screenshot(str(ARTIFACTS / "site-recording-phone.png"))
    finally:
        browser.set_window_size(1100, 900)
