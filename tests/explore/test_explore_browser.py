"""The explorer in a real browser (headless Chromium driven by Playwright): values read back from
the page's canvases against the model, served and exported (from file://, network off)."""

import io

import numpy as np
import pytest
import torch
from explorekit import CHROMIUM, FLAGS, canvas_pixels, expected_pixels, explorer, server
from PIL import Image

from vaekit.explore.export import export_page

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None

REASON = ("no headless browser: " + ("Playwright for Python is not installed (pip install -e '.[dev]')"
          if sync_playwright is None else "Chromium is not installed (apt-get install -y chromium)"))
pytestmark = pytest.mark.skipif(sync_playwright is None or CHROMIUM is None, reason=REASON)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def open_page(browser, url, offline=False):
    ctx = browser.new_context(viewport={"width": 1300, "height": 1400}, offline=offline)
    page = ctx.new_page()
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=30000)
    assert not page.locator("#msg").is_visible(), page.locator("#msg").text_content()
    return page, errors, requests


def click_pad(page, fx, fy):
    """Click at a fraction of the pad; returns the z the page decoded once its pixels are shown."""
    box = page.locator("#pad").bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.wait_for_function("() => { const s = window.vaekit.state; return s.padShown && s.padZ && "
                           "s.padShown.every((v, i) => Math.abs(v - s.padZ.z[i]) < 1e-6); }")
    return page.evaluate("() => [window.vaekit.state.padZ, window.vaekit.plane()]")


def check_pad(page, ex, fx, fy):
    pad, plane = click_pad(page, fx, fy)
    # The z of that point, computed here from the plane the page shows: rest + u b0 + v b1.
    u = plane["u0"] + fx * (plane["u1"] - plane["u0"])
    v = plane["v1"] - fy * (plane["v1"] - plane["v0"])
    z = np.array(plane["rest"]) + u * np.array(plane["b0"]) + v * np.array(plane["b1"])
    assert np.allclose(pad["z"], z, atol=2e-3)  # within a pixel's worth of pointer position
    want = expected_pixels(ex.model.decode(torch.tensor([pad["z"]], dtype=torch.float32)))
    got = canvas_pixels(page, "#pad-out")[..., :3].astype(float)
    assert np.abs(got - want).max() <= 1 and (got == want).mean() > 0.99  # uint8 rounding only
    return want


@pytest.mark.parametrize("name,query,where", [("mlp2", "?decode=server", "by PyTorch"), ("conv3", "", "in this page"),
                                              ("rgb", "", "in this page")])
def test_a_click_on_the_pad_shows_model_decode_of_its_z(browser, name, query, where):
    ex, srv = explorer(name), server(name)
    page, errors, _ = open_page(browser, srv.url + query)
    assert page.locator("#mode").text_content().startswith(f"served: decoded {where}")
    a = check_pad(page, ex, 0.25, 0.3)
    b = check_pad(page, ex, 0.8, 0.7)
    assert np.abs(a - b).max() > 0 or name == "conv3"  # two places, two images (unless collapsed)
    assert not errors
    page.context.close()


def test_a_slider_changes_only_its_dimension(browser):
    ex, srv = explorer("conv3"), server("conv3")
    page, _, _ = open_page(browser, srv.url)
    before = page.evaluate("() => Array.from(window.vaekit.state.sliderZ)")
    page.evaluate("""() => { const s = document.getElementById('s1'); s.value = 2.5;
                     s.dispatchEvent(new Event('input')); }""")
    page.wait_for_function("() => window.vaekit.state.sliderShown && Math.abs(window.vaekit.state.sliderShown[1] - 2.5) < 0.02")
    after = page.evaluate("() => Array.from(window.vaekit.state.sliderShown)")
    changed = [d for d in range(3) if abs(after[d] - before[d]) > 1e-7]
    assert changed == [1] and after[1] == pytest.approx(2.5, abs=0.02)
    want = expected_pixels(ex.model.decode(torch.tensor([after], dtype=torch.float32)))
    assert np.abs(canvas_pixels(page, "#slider-out")[..., :3] - want).max() <= 1
    # "Start from this image's code": thumbnail 5 sets every slider to its code.
    page.locator("#thumbs canvas").nth(5).click()
    page.wait_for_function("() => Math.abs(window.vaekit.state.sliderShown[0] - %r) < 1e-6" % float(ex.codes[5, 0]))
    assert np.allclose(page.evaluate("() => Array.from(window.vaekit.state.sliderShown)"), ex.codes[5].numpy(), atol=1e-6)
    page.context.close()


def draw_a_stroke(page):
    box = page.locator("#draw").bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.5 * w, y + 0.2 * h)
    page.mouse.down()
    for t in np.linspace(0, 1, 12):  # a "7": across, then down-left
        page.mouse.move(x + (0.3 + 0.4 * min(2 * t, 1)) * w, y + (0.2 + 0.6 * max(0, 2 * t - 1)) * h)
    page.mouse.up()
    page.wait_for_function("() => window.vaekit.state.drawn !== null")
    return page.evaluate("() => ({code: window.vaekit.state.drawn.code, spread: window.vaekit.state.drawn.spread,"
                         "score: window.vaekit.state.drawn.score, percentile: window.vaekit.state.drawn.percentile})")


def test_a_drawn_image_yields_model_encode_of_the_same_pixels(browser):
    ex, srv = explorer("mlp2"), server("mlp2")
    page, errors, _ = open_page(browser, srv.url)
    r = draw_a_stroke(page)
    seen = canvas_pixels(page, "#draw-input")[..., 0].astype(np.float32) / 255  # what the model saw
    x = torch.from_numpy(seen).view(1, 1, 8, 8)
    assert 0.05 < float(x.mean()) < 0.9
    assert np.allclose(r["code"], ex.model.encode(x)[0].numpy(), atol=1e-5)
    assert np.allclose(r["spread"], ex.model.posterior(x).std[0].detach().numpy(), atol=1e-5)
    assert r["score"] == pytest.approx(float(ex.score(x)[0]), rel=1e-5) and 0 <= r["percentile"] <= 100
    assert "higher than" in page.locator("#draw-stats").text_content()
    recon = expected_pixels(ex.model.decode(ex.model.encode(x)))
    assert np.abs(canvas_pixels(page, "#draw-recon")[..., :3] - recon).max() <= 1
    assert not errors
    page.context.close()


def test_bad_uploads_show_a_message_and_the_server_keeps_serving(browser, tmp_path):
    srv = server("conv3")
    page, _, _ = open_page(browser, srv.url)
    files = {"notes.txt": (b"hello, not an image\n", "cannot be read as an image")}
    big = io.BytesIO()
    Image.new("L", (10000, 10000), 0).save(big, "PNG")
    files["huge.png"] = (big.getvalue(), "10000 x 10000 pixels")
    jpg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpg, "JPEG")
    files["cut.jpg"] = (jpg.getvalue()[:1500], "truncated")
    for name, (data, words) in files.items():
        (tmp_path / name).write_bytes(data)
        page.set_input_files("#file", str(tmp_path / name))
        page.wait_for_function("() => !document.getElementById('msg').hidden")
        assert words in page.locator("#msg").text_content()
        page.evaluate("() => { document.getElementById('msg').hidden = true; document.getElementById('file').value = ''; }")
    good = Image.new("L", (40, 40), 0)
    good.paste(255, (10, 5, 30, 35))
    good.save(tmp_path / "ok.png")
    page.set_input_files("#file", str(tmp_path / "ok.png"))
    page.wait_for_function("() => window.vaekit.state.drawn !== null")
    assert not page.locator("#msg").is_visible()
    page.context.close()


def test_interpolation_strips_and_samples_are_the_models(browser):
    ex, srv = explorer("cvae"), server("cvae")
    page, errors, _ = open_page(browser, srv.url)
    strip = canvas_pixels(page, "#strip-slerp")[..., 0].astype(float)  # 12 tiles of 8x8: x_A, 10 codes, x_B
    a, b = ex.codes[0], ex.codes[1]
    from vaekit.viz.latent import slerp

    mid = slerp(a, b, torch.tensor([4 / 9]))  # tile 5 = t 4/9; a cvae decodes with the picked class (0)
    want = expected_pixels(ex.model.decode(mid, 0))[..., 0]
    assert np.abs(strip[:, 5 * 8 : 6 * 8] - want).max() <= 1
    assert np.abs(strip[:, :8] - expected_pixels(ex.split.x[:1])[..., 0]).max() == 0  # x_A itself
    page.select_option("#label", "7")  # the class picker: samples of a 7
    page.wait_for_function("() => window.vaekit.state.sampleShown.label === 7")
    grid = canvas_pixels(page, "#samples")[..., 0].astype(float)
    want = ex.sample(16, 1.0, 7, 1)  # the page's first seed is 1
    assert np.abs(grid[:8, :8] - expected_pixels(want[:1])[..., 0]).max() <= 1
    assert not errors
    page.context.close()


@pytest.mark.parametrize("name", ["mlp2", "conv3"])
def test_the_exported_page_works_offline_and_decodes_like_the_model(browser, tmp_path, name):
    ex = explorer(name)
    path = export_page(ex, tmp_path / "explorer.html")
    page, errors, requests = open_page(browser, path.as_uri(), offline=True)
    z = (2 * torch.randn(20, ex.model.latent_dim, generator=torch.Generator().manual_seed(1))).tolist()
    got = np.array(page.evaluate("(zs) => zs.map((z) => Array.from(window.vaekit.backend.decodeNow(Float32Array.from(z), 1, null)))", z))
    want = ex.model.decode(torch.tensor(z)).flatten(1).numpy()
    assert np.abs(got - want).max() < 1e-4
    x = ex.split.x[:10]
    enc = page.evaluate("(xs) => xs.map((x) => Array.from(window.vaekit.backend.encodeNow(x, null).mu))", x.flatten(1).tolist())
    assert np.abs(np.array(enc) - ex.model.encode(x).numpy()).max() < 1e-4
    check_pad(page, ex, 0.3, 0.6)
    r = draw_a_stroke(page)  # the drawing view runs on the page's own encoder
    seen = torch.from_numpy(canvas_pixels(page, "#draw-input")[..., 0].astype(np.float32) / 255).view(1, 1, 8, 8)
    assert np.allclose(r["code"], ex.model.encode(seen)[0].numpy(), atol=1e-4)
    assert abs(r["score"] - float(ex.score(seen)[0])) < 0.05 * abs(float(ex.score(seen)[0])) + 1  # 8-sample MC
    assert requests == [path.as_uri()] and not errors  # nothing but the file itself was asked for
    page.context.close()


def test_a_table_run_shows_decoded_rows_in_the_files_units(browser):
    """For a csv run the page puts, under each decoded strip, the row in the file's own units:
    numeric columns mean + std * v, categorical ones their most probable level."""
    ex, srv = explorer("table"), server("table")
    page, errors, _ = open_page(browser, srv.url)
    cols = ex.info()["columns"]
    pad, _ = click_pad(page, 0.3, 0.6)
    row = ex.model.decode(torch.tensor([pad["z"]], dtype=torch.float32))[0]
    head = page.locator("#pad-out-rows th").all_text_contents()
    cells = page.locator("#pad-out-rows td").evaluate_all("(tds) => tds.map((td) => td.dataset.v)")
    assert head == ["height", "weight", "colour"]
    for c, got in zip(cols[:2], cells[:2]):
        assert float(got) == pytest.approx(c["mean"] + c["std"] * float(row[c["at"]]), rel=1e-5)
    assert cells[2] == cols[2]["levels"][int(row[2:5].argmax())]
    page.click("#sample-go")
    page.wait_for_function("() => document.querySelectorAll('#samples-rows tr').length === 17")  # header + 16
    assert not page.locator("#draw-view").is_visible()  # drawing applies to images only
    assert not errors
    page.context.close()
