"""The HTML report in a real browser: headless Chromium lays out a report at 1280×800 and a
measuring script reports back what a reader would meet. The report has no script of its own:
the script goes into a copy, writes its measures as JSON into the page, and Chromium's
``--dump-dom`` hands the page back. Skipped, with the reason, where no Chromium is installed."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gradparity.backends import REGISTRY, BackendEntry
from gradparity.core.cases import CATALOGUE, build_case
from gradparity.engine import RunOptions, run
from gradparity.reports import write_report
from test_report_versions import VERSIONED, with_versions
from test_reports import CATALOGUE_STATUSES, make_document, with_second_order

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1280, 800
FAKES = {"wrong": "WrongGradient", "crashed": "Crash"}  # injected as frameworks, not controls
FAIL_BACKGROUND = (0xfc, 0xd5, 0xd0)  # .st-fail in reports.render.CSS

# Measures the page as shipped (every <details> closed) and with every <details> open.
MEASURE = """<script>
addEventListener("load", () => {
  const limit = document.documentElement.clientWidth;
  const wide = () => [...document.body.querySelectorAll("*")]
    .map(e => [e, e.getBoundingClientRect()])
    .filter(([e, box]) => box.width > 0 && box.right > limit + 0.5)
    .map(([e, box]) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""} ends at ${Math.round(box.right)}`);
  const matrix = document.querySelector("table.matrix");
  const column = [...matrix.querySelectorAll("th")].findIndex(th => th.textContent.startsWith("wrong"));
  const failing = [...matrix.querySelectorAll("tbody tr")].map(tr => tr.children[column])
    .filter(td => td && td.classList.contains("st-fail"))
    .map(td => [td.getBoundingClientRect().left, td.getBoundingClientRect().right]);
  const measures = {clientWidth: limit, innerWidth: innerWidth, failing: failing,
                    closed: {scrollWidth: document.documentElement.scrollWidth, wide: wide()}};
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  measures.opened = {scrollWidth: document.documentElement.scrollWidth, wide: wide()};
  measures.images = [...document.images].map(i => ({alt: i.alt.slice(0, 60), width: i.naturalWidth}));
  measures.links = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute("href").slice(1));
  measures.missing = measures.links.filter(id => !document.getElementById(id));
  const out = document.createElement("pre");
  out.id = "measures";
  out.textContent = JSON.stringify(measures);
  document.body.append(out);
});
</script>"""


def browser() -> str:
    """The path of a Chromium-family browser, or skip the test with the reason."""
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        pytest.skip(f"no headless Chromium to lay the report out: none of {', '.join(BROWSERS)} is on "
                    "PATH (Debian: apt-get install chromium)")
    return found


def chromium(*arguments: str) -> str:
    """Run the browser headless at 1280×800 on ``arguments``; its stdout."""
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", f"--window-size={WIDTH},{HEIGHT}", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def measure(report: Path, tmp_path: Path) -> dict:
    """The measures of ``MEASURE`` on a copy of ``report`` with the script added."""
    page = tmp_path / "measured.html"
    page.write_text(report.read_text("utf-8").replace("</body>", MEASURE + "\n</body>"), "utf-8")
    dom = chromium("--virtual-time-budget=20000", "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="measures">(.*?)</pre>', dom, re.S)
    assert found, f"the measuring script left no result; the page Chromium returned ends:\n{dom[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def real_report(tmp_path_factory) -> Path:
    """The report of a real run: seed-2layer in both dtypes on numpy, finite differences and
    torch, with a backend that gets dW1 wrong and one that crashes injected as frameworks."""
    browser()
    folder = tmp_path_factory.mktemp("fakes")
    for name, fake in FAKES.items():
        (folder / f"fake_backend_{name}.py").write_text(
            f"from fake_backends import {fake} as Adapter\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        patch.setenv("PYTHONPATH", f"{folder}:{Path(__file__).parent}")
        options = RunOptions(backends=["numpy", "finite-diff", "torch"], decision_boundaries=True,
                             extra_backends={name: BackendEntry(f"fake_backend_{name}") for name in FAKES})
        document = run([build_case("seed-2layer", dtype) for dtype in ("float64", "float32")], options)
    assert document.results[0].backends["wrong"].status == "fail"
    return write_report(document, tmp_path_factory.mktemp("real") / "report")["report.html"]


@pytest.fixture(scope="module")
def catalogue_report(tmp_path_factory) -> Path:
    """The report of a document of the catalogue's shape: 10 cases × 2 dtypes on the registry's
    eight backends, every status, with the injected ``wrong`` backend failing."""
    browser()
    statuses = {**CATALOGUE_STATUSES, "wrong": "fail"}
    out = tmp_path_factory.mktemp("catalogue") / "report"
    return write_report(make_document(tuple(CATALOGUE), statuses), out)["report.html"]


@pytest.fixture(scope="module")
def second_order_report(tmp_path_factory) -> Path:
    """The report of a second-order document: two cases (one with the catalogue's longest name)
    × 2 dtypes on the registry's eight backends with every one of their 22 modes, torch's
    fwd-over-rev failing in float32, and the injected ``wrong`` backend failing."""
    browser()
    statuses = {**dict.fromkeys(REGISTRY, "pass"), "wrong": "fail"}
    document = with_second_order(make_document(("seed-2layer", max(CATALOGUE, key=len)), statuses),
                                 {("torch", "fwd-over-rev", "float32"): "fail"})
    return write_report(document, tmp_path_factory.mktemp("second-order") / "report")["report.html"]


@pytest.fixture(scope="module")
def versions_report(tmp_path_factory) -> Path:
    """The report of a run of jax and torch at two versions each: two cases (one with the
    catalogue's longest name) × 2 dtypes, jax's versions apart on one run, and the injected
    ``wrong`` backend failing."""
    browser()
    document = with_versions(make_document(("seed-2layer", max(CATALOGUE, key=len)), {**VERSIONED, "wrong": "fail"}))
    return write_report(document, tmp_path_factory.mktemp("versions") / "report")["report.html"]


@pytest.fixture(scope="module", params=["real_report", "catalogue_report", "second_order_report", "versions_report"])
def measures(request, tmp_path_factory) -> dict:
    """Each report measured once, for every test."""
    return measure(request.getfixturevalue(request.param), tmp_path_factory.mktemp("measured"))


def test_nothing_is_wider_than_the_viewport(measures):
    """No horizontal scrolling at 1280 px, as shipped and with every fold opened."""
    assert measures["innerWidth"] == WIDTH and measures["clientWidth"] <= WIDTH
    for state in ("closed", "opened"):
        assert measures[state]["scrollWidth"] <= measures["clientWidth"], (state, measures[state])
        assert measures[state]["wide"] == [], state


def test_every_image_decodes(measures):
    assert measures["images"] and all(image["width"] > 0 for image in measures["images"]), measures["images"]


def test_every_in_page_link_has_its_target(measures):
    assert len(measures["links"]) > 10 and measures["missing"] == []


def test_the_injected_failure_is_in_view(measures):
    """The cells of the backend that fails lie within the viewport, left to right."""
    assert measures["failing"], "no failing cell of the injected backend in the summary matrix"
    assert all(0 <= left and right <= measures["clientWidth"] for left, right in measures["failing"])


def test_screenshot_at_1280_by_800(real_report, tmp_path):
    """What a reader sees first: a 1280×800 picture with the verdict's red banner in it."""
    from PIL import Image

    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", real_report.as_uri())
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        colours = {colour for _, colour in image.convert("RGB").getcolors(WIDTH * HEIGHT)}
    assert FAIL_BACKGROUND in colours
