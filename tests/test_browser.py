"""The app in a real browser: Debian's Chromium driven by Playwright, used as a person would use each tab.

Screenshots land in test-artifacts/. Outside CI these tests skip when Chromium or Playwright is missing; under CI
(`CI` set) they must run, so a missing browser is a failure.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import app
from sentiment.checkpoint import CHECKPOINT_DIR

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r tests/requirements.txt)"
    return None


@pytest.fixture(scope="module")
def page(app_url):
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(app_url)
        page.get_by_role("heading", name="LSTM Sentiment Lab").wait_for()
        yield page
        browser.close()


def _plot_sizes(page) -> list[tuple[float, float]]:
    boxes = [p.bounding_box() for p in page.locator(".js-plotly-plot").all() if p.is_visible()]
    return [(b["width"], b["height"]) for b in boxes if b]


def test_header_says_which_device_runs_the_model(page):
    assert "Running on" in page.get_by_text("Running on").first.inner_text()
    assert "CPU" in page.content() or "CUDA" in page.content()


def test_predict_tab_shows_label_tokens_and_plots(page):
    page.get_by_role("tab", name="Predict").click()
    page.get_by_label("Review").fill("Not what I hoped: <script>alert(1)</script> the handle broke &amp; it leaks. Waste of money.")
    page.get_by_role("button", name="Predict and explain").click()
    summary = page.get_by_text("P(positive) =")
    summary.wait_for()
    assert "Negative" in summary.inner_text()
    # The review's markup is shown as the characters typed, never run or rendered.
    tokens = page.locator("#token-effects")
    page.wait_for_function("document.querySelector('#token-effects').innerText.includes('leaks')")
    text = tokens.inner_text()
    assert "script" in text and "<" in text and "&" in text and "amp" in text
    assert page.evaluate("document.querySelectorAll('#token-effects script, #token-effects b').length") == 0
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 5")
    sizes = _plot_sizes(page)
    assert len(sizes) >= 5 and all(w > 100 and h > 100 for w, h in sizes)
    # Hovering a gate heatmap names the token (as text, with its position), the unit and the gate's value.
    gates = page.locator(".js-plotly-plot").filter(has_text="Gates of layer 1")
    gates.locator(".nsewdrag").first.hover()
    hover = gates.locator(".hoverlayer .hovertext")
    hover.wait_for()
    label = hover.text_content()
    assert re.search(r"\S \(\d+\) · unit \d+", label) and "input = " in label, label
    page.screenshot(path=str(ARTIFACTS / "predict.png"), full_page=True)


def test_bad_input_shows_a_message_not_a_traceback(page, tmp_path):
    page.get_by_role("tab", name="Predict").click()
    page.get_by_label("Review").fill("   ")
    page.get_by_role("button", name="Predict and explain").click()
    page.get_by_text("The review is empty").first.wait_for()
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Upload a file").check()
    binary = tmp_path / "reviews.txt"
    binary.write_bytes(bytes(range(256)) * 16)
    page.locator("input[type=file]").set_input_files(str(binary))
    page.get_by_text("reviews.txt").first.wait_for()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("it looks binary (NUL bytes)").first.wait_for()
    assert "Traceback" not in page.content()
    page.screenshot(path=str(ARTIFACTS / "bad-input.png"), full_page=True)
    page.get_by_label("Bundled Amazon sample").check()


def test_memory_tab_compares_rnn_gru_and_lstm(page):
    page.get_by_role("tab", name="Memory").click()
    page.get_by_role("button", name="Compare").click()
    page.get_by_text("falls by").first.wait_for()
    for name in ("rnn.pt (RNN)", "gru.pt (GRU)", "default.pt (LSTM)"):
        assert page.get_by_text(name).count() >= 1
    page.wait_for_function("[...document.querySelectorAll('.js-plotly-plot')].filter(p => p.offsetParent).length >= 3")
    sizes = _plot_sizes(page)
    assert len(sizes) >= 3 and all(w > 100 and h > 100 for w, h in sizes)
    page.screenshot(path=str(ARTIFACTS / "memory.png"), full_page=True)


def test_playground_tab_shows_the_shape_table(page):
    page.get_by_role("tab", name="LSTM playground").click()
    page.get_by_label("sequence length", exact=True).fill("3")
    page.get_by_role("button", name="Show shapes").click()
    page.wait_for_function("document.querySelector('#shape-table').innerText.includes('(1, 3, 10)')")
    cells = [c.strip() for c in page.locator("#shape-table span.text").all_inner_texts()]
    shape_of = {cells[i]: cells[i + 1] for i in range(len(cells) - 1)}
    assert shape_of["output"] == "(1, 3, 10)" and shape_of["h_n"] == shape_of["c_n"] == "(1, 1, 10)"
    page.get_by_label("hidden size", exact=True).fill("0")
    page.get_by_role("button", name="Show shapes").click()
    page.get_by_text("hidden_size must be between").first.wait_for()
    page.get_by_label("hidden size", exact=True).fill("10")
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


def test_train_tab_streams_curves_and_stops(page):
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("button", name="Quick CPU run (~1 min)").click()
    page.get_by_label("Row limit (0 = every review)").fill("4000")
    page.get_by_label("Checkpoint name").fill("browser-test")
    page.get_by_role("button", name="Start training").click()
    status = page.locator("#train-status")
    page.wait_for_function("document.querySelector('#train-status').innerText.includes('reviews/s')")
    first = status.inner_text()
    assert "step" in first and "ETA" in first
    # The live status (and the chart with it) moves on while the run goes.
    page.wait_for_function("s => { const t = document.querySelector('#train-status').innerText;"
                           " return t.includes('reviews/s') && t !== s; }", arg=first)
    assert any(w > 100 and h > 100 for w, h in _plot_sizes(page))
    page.screenshot(path=str(ARTIFACTS / "train-running.png"), full_page=True)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Test report").wait_for(timeout=120_000)
    assert "Stopped" in status.inner_text()
    page.screenshot(path=str(ARTIFACTS / "train-stopped.png"), full_page=True)
    saved = app.runner.snapshot().finished.checkpoint
    assert saved.parent == CHECKPOINT_DIR and saved.exists()
    saved.unlink()
