"""The documentation: the README is a short front page, the site (mkdocs.yml, docs/) builds with
warnings as errors and fetches nothing, every relative link resolves, the set-up commands are the
ones CI runs, the model catalogue names every model and preset, and every repository path the
pages name exists."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import vaekit

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def prose(text: str) -> str:
    """Markdown without its fenced code blocks (a link inside code is not a link)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (its default slugify)."""
    text = re.sub(r"`|\*\*|\*", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def anchors(page: Path) -> set[str]:
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", prose(page.read_text()), re.M)}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "WARNING" not in r.stderr, r.stderr[-3000:]
    return out


def test_the_site_builds_strictly_with_the_api_reference_from_the_docstrings(site):
    api = (site / "api" / "index.html").read_text()
    first_line = vaekit.train.__doc__.strip().splitlines()[0]
    words = " ".join(re.sub(r"``?", "", first_line).split()[:4])
    text = " ".join(re.sub(r"<[^>]+>", " ", api).split())
    assert 'id="vaekit.train.train"' in api and words in text  # mkdocstrings rendered the docstring, not a stub
    for name in vaekit.__all__:
        assert f'id="vaekit.{name}"' in api or f'id="vaekit.{name}.{name}"' in api or name == "__version__", name
    models = (site / "api" / "models" / "index.html").read_text()
    assert "vaekit.models.vae" in models and "vaekit.models.iwae" in models  # submodules included
    # the posteriors and priors, and the likelihoods from their own package (vaekit.distributions no
    # longer re-exports them, so the page names vaekit.likelihoods itself)
    dists = (site / "api" / "distributions" / "index.html").read_text()
    assert 'id="vaekit.distributions.DiagonalGaussian"' in dists
    for name in ("Likelihood", "Bernoulli", "Gaussian", "LearnedGaussian", "MixedLikelihood", "build_likelihood"):
        assert f'id="vaekit.likelihoods.{name}"' in dists, name
    for page in ("guide/setup", "models", "evaluation", "results", "keras-conv"):
        assert (site / page / "index.html").is_file(), page


def test_the_site_loads_nothing_from_the_network(site):
    fetched = re.compile(r"""(?:<script[^>]*\bsrc|<link[^>]*\bhref|<img[^>]*\bsrc)=["']?(?:https?:)?//"""
                         r"""|@import\s+url\(["']?(?:https?:)?//|fonts\.googleapis|fonts\.gstatic""", re.I)
    files = [p for p in site.rglob("*") if p.suffix in {".html", ".css"}]
    assert len(files) > 20
    offenders = [f"{p.relative_to(site)}: {m[0]}" for p in files for m in fetched.finditer(p.read_text())]
    assert offenders == []


def test_the_site_excludes_only_what_mkdocs_yml_says():
    """Every page is in the nav (omitted_files: warn makes a stray page fail the strict build)."""
    config = (ROOT / "mkdocs.yml").read_text()
    assert "omitted_files: warn" in config and "anchors: warn" in config and "font: false" in config
    nav = set(re.findall(r":\s*([\w/-]+\.md)\s*$", config, re.M))
    excluded = {"STATUS.md"}
    assert nav | excluded == {str(p.relative_to(DOCS)) for p in PAGES}


def test_every_relative_link_resolves():
    checked = 0
    for page in [README, *PAGES]:
        for target in LINK.findall(prose(page.read_text())):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            assert dest.exists(), f"{page.relative_to(ROOT)}: {target}"
            if anchor and dest.suffix == ".md":
                assert anchor in anchors(dest), f"{page.relative_to(ROOT)}: {target} (no such heading)"
            checked += 1
    assert checked > 40


def test_the_readme_is_a_short_front_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    assert text.count("![") == 1  # one picture
    for lab_note in ("load average", "session ", "issue "):
        assert lab_note not in text.lower(), lab_note
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == ["Set-up", "A 60-second tour", "Headline results", "Documentation"]


def test_the_code_says_why_without_pointing_at_the_tracker():
    # "(issue 13)" tells a reader of the code nothing once the issue is closed; the reason goes in the comment
    src = ROOT / "src" / "vaekit"
    cited = [f"{p.relative_to(ROOT)}:{i}" for p in sorted(src.rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bissues? #?\d", line, re.I)]
    assert cited == []


def test_the_setup_commands_are_the_ones_ci_runs_and_the_docs_give():
    def setup_commands(text):
        section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
        return [body.strip() for kind, body in BLOCK.findall(section) if kind == "bash"]

    train, tests = setup_commands(README.read_text())
    assert train == "pip install torch==2.13.0 -e . && vaekit train"
    ci = [line.split(" #")[0].strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    pip = next(line for line in ci if line.startswith("pip install"))
    pytest_line = next(line for line in ci if line.startswith("python -m pytest"))
    install = shlex.join(a for a in shlex.split(pip) if a != "-q")
    assert tests == f"{install} && {pytest_line}"
    assert pytest_line == "python -m pytest -q -n 2"
    assert any(line.startswith("NO_MKDOCS_2_WARNING=1 mkdocs build --strict") for line in ci)
    assert ci.index(next(line for line in ci if "mkdocs build" in line)) < ci.index(pytest_line)
    assert setup_commands((DOCS / "guide" / "setup.md").read_text().replace("## On a fresh machine", "## Set-up"))[:2] \
        == [train, tests]


def test_the_docs_extra_is_part_of_dev_and_of_what_ci_installs():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"mkdocs-material", "mkdocstrings-python"} <= {re.split(r"[<>=\[]", d)[0] for d in extras["docs"]}
    assert set(extras["docs"]) <= set(extras["dev"])
    assert "'.[dev,docs]'" in (ROOT / ".ci" / "run").read_text()


def test_the_catalogue_names_every_model_and_preset():
    catalogue = (DOCS / "models.md").read_text()
    missing = [n for n in [*vaekit.MODELS, *vaekit.preset_names()] if f"`{n}`" not in catalogue]
    assert missing == []


def test_every_repository_path_the_pages_name_exists():
    """A script renamed or moved without its page updated fails here (placeholders in CAPS)."""
    named = set()
    for page in [README, *PAGES]:
        named |= set(re.findall(r"`((?:benchmarks|scripts|tests|src|docs)/[^`\s]*)`", page.read_text()))
        named |= set(re.findall(r"(?:python|bash) ((?:benchmarks|scripts)/\S+\.(?:py|sh))", page.read_text()))
    assert len(named) > 20
    missing = [p for p in sorted(named) if not re.search(r"/[A-Z]+(/|$)", p) and not list(ROOT.glob(p))]
    assert missing == []
