"""The app in a real browser: Debian's Chromium driven by Playwright, used as a person would use each tab.

Screenshots land in test-artifacts/ (SCREENSHOTS=folder moves them: the README's pictures are these). Outside CI these
tests skip when Chromium or Playwright is missing; under CI (`CI` set) they must run, so a missing browser fails.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sentiment.config import GROUPS
from sentiment.model.checkpoint import CHECKPOINT_DIR
from sentiment.train.presets import PRESETS
from sentiment.ui.train import HYPER_PARAMETERS

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SCREENSHOTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
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
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh page of the app for each test: no test depends on what another one clicked."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(app_url)
    page.get_by_role("heading", name="LSTM Sentiment Lab").wait_for()
    yield page
    page.close()


def _shot(page, name: str, element=None) -> None:
    """A screenshot of the page's view (or of one element), in 256 colours: small enough to commit."""
    from PIL import Image

    page.wait_for_timeout(600)  # the last update's fade-in
    path = ARTIFACTS / f"{name}.png"
    (element or page).screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


def _plot_sizes(page) -> list[tuple[float, float]]:
    boxes = [p.bounding_box() for p in page.locator(".js-plotly-plot").all() if p.is_visible()]
    return [(b["width"], b["height"]) for b in boxes if b]


def test_header_says_which_device_runs_the_model(page):
    header = page.locator("#header").inner_text()
    assert "Running on" in header and ("CPU" in header or "CUDA" in header)


COMPLAINT = "Not what I hoped: the handle broke after a week and it leaks. Waste of money."


def _predict(page, review: str = COMPLAINT, word: str = "leaks") -> None:
    """Type a review in the Predict tab and wait until the page shows its tokens (`word` is one of them)."""
    page.get_by_role("tab", name="Predict").click()
    page.get_by_label("Review").fill(review)
    page.get_by_role("button", name="Predict and explain").click()
    page.wait_for_function("w => document.querySelector('#token-effects').innerText.includes(w)", arg=word)
    page.get_by_text("P(positive) =").wait_for()


def test_predict_tab_shows_label_tokens_and_plots(page):
    _predict(page)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 7")
    sizes = _plot_sizes(page)
    assert len(sizes) >= 7 and all(w > 100 and h > 100 for w, h in sizes)
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "predict")
    # The review's markup is shown as the characters typed, never run or rendered.
    page.get_by_label("Review").fill("Not what I hoped: <script>alert(1)</script> the handle broke &amp; it leaks. Waste of money.")
    page.get_by_role("button", name="Predict and explain").click()
    page.wait_for_function("document.querySelector('#token-effects').innerText.includes('script')")
    summary = page.locator("#summary").inner_text()
    assert "Negative" in summary and "How it reads the review" in summary
    text = page.locator("#token-effects").inner_text()
    assert "script" in text and "<" in text and "&" in text and "amp" in text
    assert page.evaluate("document.querySelectorAll('#token-effects script, #token-effects b').length") == 0
    # Hovering a gate heatmap names the token (as text, with its position), the unit and the gate's value.
    gates = page.locator(".js-plotly-plot").filter(has_text="Gates of layer 1")
    gates.locator(".nsewdrag").first.hover()
    hover = gates.locator(".hoverlayer .hovertext")
    hover.wait_for()
    assert re.search(r"\S \(\d+\) · unit \d+", hover.text_content()) and "input = " in hover.text_content()


def test_refusals_stay_visible_in_a_status_line_however_many_come_in_a_row(page):
    page.get_by_role("tab", name="Predict").click()
    for attempt in range(1, 6):
        page.get_by_label("Review").fill(" " * attempt)  # refused as typed, and again when the button is pressed
        page.get_by_role("button", name="Predict and explain").click()
        page.wait_for_function("n => { const t = document.querySelector('#predict-status').innerText;"
                               " const m = t.match(/\\((\\d+) refusals in a row\\)/);"
                               " return t.includes('The review is empty') && (n === 1 || (m && +m[1] >= n)); }",
                               arg=attempt)
    _predict(page)  # a prediction that succeeds empties the line
    page.wait_for_function("document.querySelector('#predict-status').innerText.trim() === ''")


def _cell_title(page) -> str:
    return page.locator("#cell-step .js-plotly-plot .gtitle").first.text_content()


def test_the_predict_tab_opens_explained_follows_typing_and_its_stepper_stops_at_the_ends(page):
    # Before any click: a negation explained, its strongest token stepped into.
    assert "Positive" in page.locator("#summary").inner_text() and "bad" in page.locator("#token-effects").inner_text()
    assert re.search(r"Token \d+ “\w+”", _cell_title(page))
    # The verdict follows the review as it is typed, with no button pressed, and the cell step with it.
    opening = _cell_title(page)
    page.get_by_label("Review").fill("Awful. It broke after a week and the seller never answered.")
    page.wait_for_function("document.querySelector('#summary').innerText.startsWith('Negative')")
    page.wait_for_function("document.querySelector('#token-effects').innerText.includes('seller')")
    page.wait_for_function("t => document.querySelector('#cell-step .gtitle').textContent !== t", arg=opening)
    # The stepper walks to the last token and stops there; back to the first, and stops there.
    following, previous = page.locator("#next-token"), page.locator("#previous-token")
    page.locator("#cell-step").scroll_into_view_if_needed()
    for button, word in ((following, "“.”"), (previous, "“awful”")):
        for _ in range(20):
            if not button.is_enabled():
                break
            before = _cell_title(page)
            button.click()
            page.wait_for_function("t => document.querySelector('#cell-step .gtitle').textContent !== t", arg=before)
        assert not button.is_enabled() and word in _cell_title(page), _cell_title(page)
    assert "⚠" not in page.locator("#predict-status").inner_text()  # no refusal on the way (a timer may tick there)
    assert "Error" not in page.locator("#cell-step").inner_text()


def test_clicking_a_token_steps_inside_the_cell(page):
    _predict(page)
    cell = page.locator("#cell-step")
    cell.scroll_into_view_if_needed()
    page.locator("#token-effects").get_by_text("broke", exact=True).click()
    title = cell.locator(".js-plotly-plot .gtitle").first
    page.wait_for_function("[...document.querySelectorAll('#cell-step .gtitle')].some(t => t.textContent.includes('“broke”'))")
    assert "c = f·c" in cell.inner_text() and "h = o·tanh(c)" in cell.inner_text()
    before = title.text_content()
    page.get_by_role("button", name="next token ▶").click()
    page.wait_for_function("t => document.querySelector('#cell-step .gtitle').textContent !== t", arg=before)
    assert re.search(r"Token (\d+)", title.text_content())[1] == str(int(re.search(r"Token (\d+)", before)[1]) + 1)
    assert cell.locator(".js-plotly-plot").count() == 2  # the cell, and the whole layer's gates as bars
    _shot(page, "cell-step", cell)


def test_what_the_model_reads(page):
    _predict(page)
    reading = page.locator("#reading")
    reading.get_by_text("What the model reads").click()
    page.wait_for_function("document.querySelector('#reading').innerText.includes('The row the model sees')")
    text = reading.inner_text()
    assert "Cleaned" in text and "vocabulary of" in text and "_UNK" in text
    cells = reading.locator("#reading-table span.text").all_inner_texts()
    assert "not" in [c.strip() for c in cells]  # the review's first word, lower-cased, in the table with its id
    _shot(page, "reading", reading)


def test_bad_input_shows_a_message_not_a_traceback(page, tmp_path):
    page.get_by_role("tab", name="Predict").click()
    page.get_by_label("Review").fill("   ")
    page.get_by_role("button", name="Predict and explain").click()
    page.get_by_text("The review is empty").first.wait_for()
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Upload a file").check()
    binary = tmp_path / "reviews.txt"
    binary.write_bytes(bytes(range(256)) * 16)
    page.locator("#upload input[type=file]").set_input_files(str(binary))
    page.get_by_text("reviews.txt").first.wait_for()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("it looks binary (NUL bytes)").first.wait_for()
    assert "Traceback" not in page.content()


def test_train_tab_puts_the_few_settings_first_and_the_rest_under_advanced(page):
    page.get_by_role("tab", name="Train").click()
    assert page.get_by_text("The loss and accuracy curves appear here").is_visible()
    assert not page.locator("#train-curves").is_visible()  # no empty axes before a run
    for label in ("cell type", "hidden size", "layers", "epochs", "learning rate", "batch size"):
        assert page.get_by_label(label, exact=True).first.is_visible(), label
    assert not page.get_by_label("bidirectional", exact=True).is_visible()
    _shot(page, "train")
    page.locator("#advanced").get_by_text("Advanced").click()
    checkbox = page.get_by_label("bidirectional", exact=True)
    checkbox.wait_for()
    label = page.locator("label").filter(has=checkbox).first
    assert label.bounding_box()["width"] > 120 and "bidirectional" in label.inner_text()  # readable, not squeezed
    # Each group's inputs stay on one line: a row too full wraps its last input back under its first.
    advanced = page.locator("#advanced")
    for group in GROUPS[1:]:
        labels = [spec.label for *_, spec in HYPER_PARAMETERS if spec.group == group]
        lefts = [advanced.get_by_label(label, exact=True).bounding_box()["x"] for label in labels]
        assert lefts == sorted(lefts) and len(set(lefts)) == len(lefts), (group, dict(zip(labels, lefts)))
    _shot(page, "train-advanced")


def test_every_preset_is_selectable_and_named(page):
    page.get_by_role("tab", name="Train").click()
    dropdown = page.get_by_label("Preset (every value stays editable)")
    for name in PRESETS:
        dropdown.click()
        page.get_by_role("option", name=name, exact=True).click()
        page.wait_for_function("n => document.querySelector('#preset-note').innerText.startsWith(n + ':')", arg=name)


def test_train_tab_streams_curves_and_keeps_them_with_the_report(page, lab):
    page.get_by_role("tab", name="Train").click()
    dropdown = page.get_by_label("Preset (every value stays editable)")
    dropdown.click()
    page.get_by_role("option", name="quick", exact=True).click()
    page.wait_for_function("document.querySelector('#preset-note').innerText.startsWith('quick')")
    page.get_by_label("Row limit").fill("4000")
    page.get_by_label("Checkpoint name").fill("browser-test")
    page.get_by_role("button", name="Start training").click()
    status = page.locator("#train-status")
    page.wait_for_function("document.querySelector('#train-status').innerText.includes('reviews/s')")
    first = status.inner_text()
    assert "step" in first and "ETA" in first
    page.wait_for_function("s => { const t = document.querySelector('#train-status').innerText;"
                           " return t.includes('reviews/s') && t !== s; }", arg=first)
    page.locator("#train-curves").wait_for()
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Test report").wait_for(timeout=120_000)
    assert "Stopped" in status.inner_text() and page.locator("#train-curves").is_visible()
    _shot(page, "train-report")
    saved = lab.jobs.snapshot("training").progress.finished.checkpoint
    assert saved.parent == CHECKPOINT_DIR and saved.exists()
    saved.unlink()


def test_train_tab_starts_the_embedding_from_uploaded_word_vectors(page, trained, tmp_path, lab):
    from sentiment.model.word_vectors import export

    exported = tmp_path / "small.vec"
    export(trained[0], exported)
    page.get_by_role("tab", name="Train").click()
    dropdown = page.get_by_label("Preset (every value stays editable)")
    dropdown.click()
    page.get_by_role("option", name="quick", exact=True).click()
    page.wait_for_function("document.querySelector('#preset-note').innerText.startsWith('quick')")
    page.locator("#vectors input[type=file]").set_input_files(str(exported))
    page.locator("#vectors").get_by_text("small.vec").first.wait_for()
    page.get_by_label("Row limit").fill("600")
    page.get_by_label("Checkpoint name").fill("browser-vectors")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Test report").wait_for(timeout=120_000)
    report = page.locator("#train-report").inner_text()
    assert "word vectors small.vec" in report and "of the training text's tokens" in report
    saved = lab.jobs.snapshot("training").progress.finished.checkpoint
    assert saved.parent == CHECKPOINT_DIR and saved.exists()
    saved.unlink()


def test_a_search_draws_optunas_plots_and_fills_its_trials_table(page):
    before = set(CHECKPOINT_DIR.glob("*.pt"))
    page.get_by_role("tab", name="Train").click()
    section = page.locator("#search")
    section.get_by_text("Search: let Optuna choose").click()
    section.get_by_label("trials", exact=True).fill("3")
    section.get_by_label("max epochs", exact=True).fill("1")
    section.get_by_label("row limit", exact=True).fill("300")
    page.get_by_role("button", name="Start search").click()
    page.wait_for_function("document.querySelector('#search-status').innerText.startsWith('Finished')",
                           timeout=180_000)
    assert "best: trial" in page.locator("#search-status").inner_text()
    cells = [c.strip() for c in page.locator("#search-trials span.text").all_inner_texts()]
    assert {"0", "1", "2"} <= set(cells)
    page.wait_for_function("[...document.querySelectorAll('#search .js-plotly-plot')].length >= 3")
    titles = page.evaluate("[...document.querySelectorAll('#search .gtitle')].map(t => t.textContent)")
    assert any("Optimization History" in t for t in titles) and any("Importance" in t for t in titles)
    page.locator("#search-trials").scroll_into_view_if_needed()
    _shot(page, "search", section)
    for path in set(CHECKPOINT_DIR.glob("*.pt")) - before:
        path.unlink()


def test_memory_tab_compares_rnn_gru_and_lstm(page):
    page.get_by_role("tab", name="Memory").click()
    page.get_by_role("button", name="Compare").click()
    page.get_by_text("falls by").first.wait_for()
    for name in ("rnn.pt (RNN)", "gru.pt (GRU)", "lstm.pt (LSTM)"):
        assert page.get_by_text(name).count() >= 1
    page.wait_for_function("[...document.querySelectorAll('.js-plotly-plot')].filter(p => p.offsetParent).length >= 3")
    assert all(w > 100 and h > 100 for w, h in _plot_sizes(page))
    _shot(page, "memory")


def test_the_playground_follows_its_sizes_and_a_refused_size_keeps_the_last_shapes(page):
    page.get_by_role("tab", name="LSTM playground").click()
    tab = page.locator("#playground-tab")
    page.wait_for_function("document.querySelector('#shape-table').innerText.includes('(1, 3, 10)')")
    tab.get_by_label("hidden size", exact=True).fill("7")  # no button
    page.wait_for_function("document.querySelector('#shape-table').innerText.includes('(1, 3, 7)')")
    tab.get_by_label("hidden size", exact=True).fill("0")
    page.get_by_text("hidden size must be between").first.wait_for()
    assert "(1, 3, 7)" in page.locator("#shape-table").inner_text()  # the last good shapes stay


def test_the_train_tab_opens_on_a_first_run_of_about_a_minute_and_presets_choose_their_data(page):
    page.get_by_role("tab", name="Train").click()
    assert "quick" in page.locator("#preset-note").inner_text()
    data = page.locator("#train-tab").get_by_role("radio", name=re.compile("Bundled Amazon sample"))
    assert data.is_checked()
    page.get_by_label("Preset (every value stays editable)").click()
    page.get_by_role("option", name="lab", exact=True).click()
    page.wait_for_function("document.querySelector('#preset-note').innerText.startsWith('lab:')")
    more = page.locator("#train-tab").get_by_role("radio", name=re.compile("more real reviews"))
    page.wait_for_function("r => r.checked", arg=more.element_handle())


def test_playground_builds_each_cell_type(page):
    page.get_by_role("tab", name="LSTM playground").click()
    tab = page.locator("#playground-tab")
    tab.get_by_label("sequence length", exact=True).fill("3")
    page.get_by_role("button", name="Show shapes").click()
    page.wait_for_function("document.querySelector('#shape-table').innerText.includes('(1, 3, 10)')")
    cells = [c.strip() for c in page.locator("#shape-table span.text").all_inner_texts()]
    shape_of = {cells[i]: cells[i + 1] for i in range(len(cells) - 1)}
    assert shape_of["output"] == "(1, 3, 10)" and shape_of["h_n"] == shape_of["c_n"] == "(1, 1, 10)"
    page.get_by_role("radio", name="GRU").check()
    page.wait_for_function("document.body.innerText.includes('3 gates (r, z, n)')")
    assert "c_n" not in page.locator("#shape-table").inner_text()
    tab.get_by_label("hidden size", exact=True).fill("0")
    page.get_by_role("button", name="Show shapes").click()
    page.get_by_text("hidden size must be between").first.wait_for()
    tab.get_by_label("hidden size", exact=True).fill("10")
    page.get_by_role("radio", name="LSTM").check()
    page.wait_for_function("document.body.innerText.includes('4 gates (i, f, g, o)')")
    _shot(page, "playground")


def test_units_tab_builds_the_atlas_opens_a_unit_matches_a_phrase_and_steers(page):
    page.get_by_role("tab", name="Units").click()
    page.get_by_role("button", name="Build the atlas").click()
    page.wait_for_function("document.querySelector('#atlas-summary').innerText.includes('The sentiment unit')",
                           timeout=180_000)
    best = re.search(r"The sentiment unit: (\d+)", page.locator("#atlas-summary").inner_text())[1]
    # A new atlas opens the page of the unit that predicts best alone.
    page.wait_for_function("u => document.querySelector('#unit-summary').innerText.includes('Unit ' + u + ' alone')",
                           arg=best)
    assert page.locator("#unit-up").inner_text().count("P(positive)") == 5
    page.evaluate("window.scrollTo(0, 0)")
    _shot(page, "units")
    # Clicking a row opens that row's unit.
    cells = page.locator("#atlas-table span.text")
    texts = [t.strip() for t in cells.all_inner_texts()]
    first, columns = texts.index(best), 11  # unit, alone, two gaps, L1 rank, an LSTM's 3 gates × shut and open
    clicked = texts[first + 2 * columns]  # the third row's unit
    cells.nth(first + 2 * columns + 1).click()  # its "alone" cell
    page.wait_for_function("u => document.querySelector('#unit-summary').innerText.includes('Unit ' + u + ' alone')",
                           arg=clicked)
    _shot(page, "unit-page", page.locator("#unit-page"))
    page.get_by_role("button", name="Find matching passages").click()
    page.wait_for_function("document.querySelector('#passages').innerText.includes('«')")
    assert "units** are" not in page.locator("#match-summary").inner_text()  # Markdown rendered, not shown raw
    page.get_by_role("button", name="Predict with the unit held").click()
    page.wait_for_function("document.querySelector('#steer-summary').innerText.includes('held at 1')")
    page.locator("#steer").get_by_label("Unit to hold (from 0)").fill("100000")
    page.get_by_role("button", name="Predict with the unit held").click()
    page.wait_for_function("document.querySelector('#steer-status').innerText.includes('unit must be between')")
