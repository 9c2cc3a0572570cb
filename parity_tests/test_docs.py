"""The documentation: the site builds with ``mkdocs build --strict`` (a broken link or anchor, or
a page left out of the navigation, fails it), every documented command prints what its page says,
and the README stays a front page whose picture is drawn from the sample report."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from documented import FENCE, ROOT, VARYING_FIGURES, Command, build_site, run_page, steps, workspace

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
RUN_PAGES = [ROOT / "README.md", *PAGES]
TASK_PAGES = [ROOT / "README.md", *sorted((DOCS / "tutorial").glob("*.md")), *sorted((DOCS / "how-to").glob("*.md"))]
SHOWN_ONLY = {"sh", "python", "yaml", "toml", "json"}  # code without output; console blocks are run
FRAMEWORKS = ("jax", "torch", "tensorflow", "keras")  # the documented outputs were taken with all of them
GENERATED = ("reference/cli.md", "reference/catalogue.md", "reference/deviations.md", "reference/result-document.md")


def test_the_site_builds_every_page_and_the_generated_reference(site):
    built = {path.relative_to(DOCS).with_suffix("") for path in PAGES}
    for page in sorted(built | {Path(name).with_suffix("") for name in GENERATED}):
        target = site / ("index.html" if page.name == "index" else page / "index.html")
        assert target.is_file(), f"docs/{page}.md has no page in the built site"
    assert not any((DOCS / name).exists() for name in GENERATED), "generated reference pages are not committed"


@pytest.fixture
def docs_copy(tmp_path) -> Path:
    """A copy of what the build reads (mkdocs.yml, docs/, the hook, the included examples, the
    summary picture), so a test can break it."""
    for name in ("docs", "scripts", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "reports" / "example").mkdir(parents=True)
    shutil.copy(ROOT / "reports" / "example" / "summary.png", tmp_path / "reports" / "example")
    return tmp_path


BREAKAGES = {  # a link the build must refuse -> the warning that names it
    "[the guide](../how-to/no-such-guide.md)": "WARNING .*no-such-guide.md",
    "[the option](../reference/cli.md#no-such-option)": "WARNING .*no-such-option",
    "[a heading](#no-such-heading)": "WARNING .*no-such-heading",
}


def test_broken_links_and_a_page_outside_the_navigation_fail_the_build(docs_copy):
    """One build of a copy broken four ways (a missing page, a missing anchor in another page and
    in its own, a page the navigation leaves out): it fails, and names each."""
    tutorial = docs_copy / "docs" / "tutorial" / "check-your-backprop.md"
    tutorial.write_text(tutorial.read_text() + "".join(f"\nSee {link}.\n" for link in BREAKAGES))
    (docs_copy / "docs" / "how-to" / "orphan.md").write_text("# A guide nobody can find\n")
    done = build_site(docs_copy / "mkdocs.yml", docs_copy / "site")
    assert done.returncode != 0, done.stderr
    for warning in [*BREAKAGES.values(), "WARNING .*not included in the \"nav\".*\n.*orphan.md"]:
        assert re.search(warning, done.stderr), f"no {warning!r} in:\n{done.stderr}"


@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_documented_command_prints_what_its_page_says(page, tmp_path):
    """Each page's console blocks, run in a reader's folder through the installed entry point
    (``documented.py``); some start framework workers, a few seconds each."""
    missing = [name for name in FRAMEWORKS if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the documented output was taken with every framework; {', '.join(missing)} not installed")
    problems = run_page(page, workspace(tmp_path / "reader"))
    assert not problems, "\n\n".join(problems)


def test_documented_installs_go_to_a_folder_of_their_own():
    """Every documented ``pip install`` is ``--target`` a folder of the reader's: installed into the
    environment that runs the suite, a plugin would join the default run of every other test
    running beside it (the backend plugin guide installs one)."""
    installs = [(page.name, step.command) for page in RUN_PAGES for step in steps(page.read_text("utf-8"))
                if isinstance(step, Command) and re.search(r"\bpip install\b", step.command)]
    assert "write-a-backend-plugin.md" in dict(installs), installs
    assert all("--target" in command for _page, command in installs), installs


def test_a_command_whose_output_changed_fails_its_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n```console\n$ gradparity check examples/backprop.py --backends none | tail -1\n"
                    "PASS: the cost and all 4 gradients agree with the reference (float32).\n```\n")
    problems = run_page(page, workspace(tmp_path / "reader"))
    assert len(problems) == 1 and problems[0].startswith("page.md:4: $ gradparity check"), problems
    assert "+PASS: the cost and all 4 gradients agree with the reference (float64)." in problems[0]


def test_where_the_figures_vary_by_cpu_only_the_figures_may_differ(tmp_path):
    """Under ``VARYING_FIGURES`` another figure and a wider column match; another count or
    verdict does not; without the comment, another figure does not either."""
    printed = "$ printf 'a  ✓ 0.06×  ✓ 2.4e-05\\n3 pass · 87× below\\n'\n"
    pages = {"marked-same": (f"{VARYING_FIGURES}\n", "a  ✓ 0.046× ✓ 1.7e-05\n3 pass · 88× below"),
             "marked-count": (f"{VARYING_FIGURES}\n", "a  ✓ 0.046× ✓ 1.7e-05\n2 pass · 88× below"),
             "marked-verdict": (f"{VARYING_FIGURES}\n", "a  ✗ 0.046× ✓ 1.7e-05\n3 pass · 88× below"),
             "unmarked": ("", "a  ✓ 0.046× ✓ 1.7e-05\n3 pass · 88× below")}
    failed = set()
    for name, (mark, expected) in pages.items():
        page = tmp_path / f"{name}.md"
        page.write_text(f"# A page\n\n{mark}```console\n{printed}{expected}\n```\n")
        if run_page(page, tmp_path):
            failed.add(name)
    assert failed == {"marked-count", "marked-verdict", "unmarked"}


@pytest.mark.parametrize("page", TASK_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_block_that_shows_output_is_run(page):
    """In the README, the tutorial and the how-to guides, output is shown only in console
    blocks, which the test above runs; other blocks are code in a named language."""
    text = page.read_text("utf-8")
    for block in FENCE.finditer(text):
        line = text.count("\n", 0, block.start()) + 1
        assert block["lang"] == "console" or block["lang"] in SHOWN_ONLY or "title=" in block["attributes"], (
            f"{page.name}:{line}: a ```{block['lang']} block is neither run (console) nor code "
            f"({', '.join(sorted(SHOWN_ONLY))})")


def test_the_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text("utf-8")
    assert len(readme.splitlines()) <= 200
    linked = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert linked and all((ROOT / path).is_file() for path in linked), linked


@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_no_page_dates_its_figures_by_commit(page):
    """Figures name their command; a commit hash in prose is a measurement log."""
    words = re.findall(r"(?<![\w.])[0-9a-f]{7,40}(?![\w+-]|\.\w)", page.read_text("utf-8"))
    hashes = [word for word in words if re.search("[a-f]", word) and re.search("[0-9]", word)]
    assert not hashes, f"{page.name}: {hashes}"


def test_the_readme_picture_is_the_sample_reports_matrix(tmp_path):
    """``scripts/render_summary.py`` run as a file on the sample report draws the PNG the README
    shows, byte for byte."""
    shutil.copy(ROOT / "reports" / "example" / "report.md", tmp_path / "report.md")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_summary.py"), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "summary.png").read_bytes() == (ROOT / "reports" / "example" / "summary.png").read_bytes()


# Measures a page of the site at 1280 px: elements past the right edge that no inner scrolling
# box holds (the page itself would scroll), and each code block's font size and overflow.
SITE_MEASURE = """<script>
addEventListener("load", () => {
  const limit = document.documentElement.clientWidth;
  const held = e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement)
    { if (getComputedStyle(p).overflowX !== "visible") return true; } return false; };
  const wide = [...document.body.querySelectorAll("*")]
    .filter(e => { const box = e.getBoundingClientRect(); return box.width > 0 && box.right > limit + 0.5 && !held(e); })
    .map(e => `${e.tagName.toLowerCase()}.${e.className} ends at ${Math.round(e.getBoundingClientRect().right)}`);
  const code = [...document.querySelectorAll("pre > code")].map(c => ({
    font: parseFloat(getComputedStyle(c).fontSize), overflow: c.scrollWidth - c.clientWidth,
    start: c.textContent.slice(0, 50)}));
  const out = document.createElement("pre");
  out.id = "measures";
  out.textContent = JSON.stringify({clientWidth: limit, scrollWidth: document.documentElement.scrollWidth,
                                    wide: wide, code: code, images: [...document.images].map(i => i.naturalWidth)});
  document.body.append(out);
});
</script>"""


@pytest.mark.parametrize("page", ["index.html", "tutorial/check-your-backprop/index.html"])
def test_the_home_page_and_the_tutorial_fit_1280_px_with_readable_code(site, page, tmp_path):
    """Laid out by headless Chromium at 1280×800 (skipped with the reason where there is none):
    nothing is wider than the window, every image decodes, every code block is set in at least
    12 px and shows its longest line without scrolling; the screenshot is kept in ``tmp_path``."""
    from PIL import Image
    from test_browser import HEIGHT, WIDTH, chromium

    target = site / page
    measured = target.with_name("measured.html")
    measured.write_text(target.read_text("utf-8").replace("</body>", SITE_MEASURE + "\n</body>"), "utf-8")
    dom = chromium("--virtual-time-budget=20000", "--dump-dom", measured.as_uri())
    found = re.search(r'<pre id="measures">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    measures = json.loads(html.unescape(found.group(1)))
    assert measures["clientWidth"] <= WIDTH and measures["scrollWidth"] <= measures["clientWidth"], measures
    assert measures["wide"] == [], measures["wide"]
    assert all(width > 0 for width in measures["images"]), measures["images"]
    assert all(block["font"] >= 12 and block["overflow"] <= 0 for block in measures["code"]), measures["code"]
    shot = tmp_path / f"{page.replace('/', '-')}.png"
    chromium(f"--screenshot={shot}", target.as_uri())
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
