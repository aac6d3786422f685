"""The explorer without a browser: what it computes, the exported plans against the models, the
upload checks, and the server's answers to hostile or malformed requests."""

import base64
import http.client
import io
import json

import numpy as np
import pytest
import torch
from explorekit import explorer, server, trained
from PIL import Image

from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.explore import export as X
from vaekit.explore.images import load_upload
from vaekit.viz import latent as L


def test_info_codes_frame_and_scores_match_the_model():
    ex = explorer("conv3")
    info = json.loads(json.dumps(ex.info()))  # JSON-able as it is sent
    codes = np.frombuffer(base64.b64decode(info["points"]["codes"]), dtype="<f4").reshape(-1, 3)
    assert info["shape"] == [1, 8, 8] and info["latent_dim"] == 3 and info["split"] == "test"
    assert np.allclose(codes, ex.model.encode(ex.split.x).numpy(), atol=1e-6) and len(codes) == 300
    pca = torch.tensor(info["frame"]["pca"])  # d = 3: the principal plane, orthonormal rows
    assert torch.allclose(pca @ pca.T, torch.eye(2), atol=1e-5)
    kl = L.kl_per_dim(ex.model, ex.split.x)
    assert info["sliders"]["order"] == kl.argsort(descending=True).tolist() and info["sliders"]["score_name"] == "KL"
    assert info["sliders"]["collapsed"] == (ex.codes.var(0) < 0.01).tolist()
    ref = info["scores"]["sorted"]
    assert ref == sorted(ref) and len(ref) == 300
    r = ex.analyse(ex.split.x[:1])  # example 0 is one of the reference set: same seeded estimator
    assert r["score"] == pytest.approx(float(ex.score(ex.split.x[:1])[0])) and 0 <= r["percentile"] <= 100
    z = torch.randn(5, 3)
    assert torch.equal(ex.decode(z), ex.model.decode(z))
    drawn = ex.sample(4, 0.5, None, 7)  # seeded: the same draws every time, other seeds others
    assert drawn.shape == (4, *ex.split.x.shape[1:])
    assert torch.equal(drawn, ex.sample(4, 0.5, None, 7)) and not torch.equal(drawn, ex.sample(4, 0.5, None, 8))
    ae = explorer("ae").info()  # the autoencoder family: no posterior, code variance orders the sliders
    assert not ae["has_posterior"] and ae["sliders"]["score_name"] == "code variance"
    assert ae["scores"]["what"] == "reconstruction loss"


@pytest.mark.parametrize("name", ["mlp2", "conv3", "cvae", "ae", "rgb"])
def test_exported_plans_reproduce_decode_and_encode(name):
    ex = explorer(name)
    w = X.Weights()
    dec = X.decoder_plan(ex, w)  # raises unless the plan matches model.decode to 1e-5
    enc, note = X.encoder_plan(ex, w)
    assert note is None and enc is not None and enc["gaussian"] == (name != "ae")
    z = 2 * torch.randn(8, ex.model.latent_dim)
    k = ex.conditional
    inp = torch.cat([z, torch.nn.functional.one_hot(torch.full((8,), 3), k).float()], 1) if k else z
    got = X.run_plan(dec["ops"], w.blob(), inp)[:, : dec["mean"]["size"]]  # a learned variance: the mean's half
    got = torch.sigmoid(got) if dec["mean"]["fn"] == "sigmoid" else got
    want = ex.model.decode(z, 3) if k else ex.model.decode(z)
    assert (got - want.flatten(1)).abs().max() < 1e-5


def test_export_refuses_what_the_page_cannot_run(monkeypatch, tmp_path):
    ex = explorer("mlp2")
    page = X.build_page(ex)
    assert "<script src=" not in page and "http://" not in page and "https://" not in page
    assert "connect-src 'none'" in page
    original = ex.model.decode
    monkeypatch.setattr(ex.model, "decode", lambda z, *a: original(z) * 0.5)  # decode != decoder + mean
    with pytest.raises(VaekitError, match=r"^--export: the page cannot run this 'vae' model's decoder"):
        X.build_page(ex)
    monkeypatch.undo()
    monkeypatch.setattr(ex.model, "encode", lambda x, *a: torch.zeros(len(x), 2))  # only drawing goes
    plan, note = X.encoder_plan(ex, X.Weights())
    assert plan is None and note.startswith("drawing is off in this file")


def _png(w: int, h: int, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 0).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_uploads_are_limited_validated_and_converted():
    with pytest.raises(VaekitError, match="cannot be read as an image"):
        load_upload(b"just some text\n", (1, 8, 8))
    with pytest.raises(VaekitError, match="10000 x 10000 pixels; the limit is 16.8 megapixels"):
        load_upload(_png(10000, 10000), (1, 8, 8))
    with pytest.raises(VaekitError, match="cannot be read as an image.*truncated"):
        load_upload(_jpeg()[:1500], (1, 8, 8))
    with pytest.raises(VaekitError, match="the limit is 8 MiB"):
        load_upload(b"\0" * (8 * 2**20 + 1), (1, 8, 8))
    img = np.zeros((16, 16, 3), dtype=np.uint8)
    img[:8, :8] = 255  # a white top-left quarter, RGB, twice the run's size
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    x = load_upload(buf.getvalue(), (1, 8, 8))
    assert x.shape == (1, 1, 8, 8) and x[0, 0, 1, 1] == 1.0 and x[0, 0, 6, 6] == 0.0
    assert load_upload(buf.getvalue(), (3, 4, 4)).shape == (1, 3, 4, 4)


def _request(srv, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    hdrs = {"Host": f"127.0.0.1:{srv.server_address[1]}", **(headers or {})}
    if body is not None and "Content-Length" not in hdrs:
        hdrs["Content-Length"] = str(len(body))
    for k, v in hdrs.items():
        c.putheader(k, v)
    c.endheaders(body)
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


TRAVERSALS = ["/../../../../etc/passwd", "/page/../../../pyproject.toml", "/page/%2e%2e/%2e%2e/api.py",
              "/page/..%2f..%2fapi.py", "//etc/passwd", "/page/app.js/../../../etc/passwd", "/page/",
              "/page/index.html", "/page/../server.py", "/api/../explore/api.py", "/%2e%2e/%2e%2e/etc/passwd",
              "/page/app.js%00.png", "/src/vaekit/explore/page/app.js", "http://127.0.0.1/../../etc/passwd"]


def test_server_serves_only_its_own_assets():
    srv = server("mlp2")
    assert _request(srv, "GET", "/")[0] == 200 and _request(srv, "GET", "/page/app.js")[0] == 200
    for path in TRAVERSALS:
        status, body = _request(srv, "GET", path)
        assert status == 404, (path, status)
        assert b"root:" not in body and b"import " not in body and b"[project]" not in body


def test_malformed_requests_get_a_4xx_and_the_server_keeps_serving():
    srv = server("mlp2")
    js = {"Content-Type": "application/json"}
    cases = [
        ("POST", "/api/decode", b"{not json", js, 400, "not valid JSON"),
        ("POST", "/api/decode", b"[1, 2]", js, 400, "JSON object"),
        ("POST", "/api/decode", json.dumps({"z": [0.1], "n": 1}).encode(), js, 400, "list of n * 2"),
        ("POST", "/api/decode", b'{"z": [NaN, 1], "n": 1}', js, 400, "finite"),
        ("POST", "/api/decode", json.dumps({"z": [0] * 200, "n": 100}).encode(), js, 400, "1..64"),
        ("POST", "/api/decode", json.dumps({"z": ["a", 1], "n": 1}).encode(), js, 400, "numbers only"),
        ("POST", "/api/encode", json.dumps({"x": [2.0] * 64}).encode(), js, 400, "in [0, 1]"),
        ("POST", "/api/sample", json.dumps({"n": 4, "temperature": "hot"}).encode(), js, 400, "temperature"),
        ("POST", "/api/decode", b"x" * 10, {"Content-Length": str(50 * 2**20)}, 413, "limit"),
        ("POST", "/api/upload", b"", {"Transfer-Encoding": "chunked"}, 411, "Content-Length"),
        ("GET", "/api/item?i=-1", None, {}, 400, "whole number"),
        ("GET", "/api/item?i=99999", None, {}, 400, "index must be"),
        ("GET", "/api/decode", None, {}, 405, "not allowed"),
        ("GET", "/api/info", None, {"Host": "evil.example:80"}, 403, "Host"),
        ("POST", "/api/decode", b"{}", {"Origin": "http://evil.example"}, 403, "other sites"),
        ("POST", "/api/upload", b"plain text, not an image", {}, 400, "cannot be read as an image"),
        ("POST", "/api/upload", _png(10000, 10000), {}, 400, "10000 x 10000 pixels"),
        ("POST", "/api/upload", _jpeg()[:1500], {}, 400, "truncated"),
    ]
    for method, path, body, headers, status, words in cases:
        got, raw = _request(srv, method, path, body, headers)
        assert got == status, (path, body[:40] if body else None, got, raw)
        msg = json.loads(raw)["error"]
        assert words in msg and "Traceback" not in msg and "\n" not in msg, msg
    status, raw = _request(srv, "GET", "/api/info")
    assert status == 200 and json.loads(raw)["latent_dim"] == 2
    ok, pixels = _request(srv, "POST", "/api/decode", json.dumps({"z": [0.5, -1.0], "n": 1}).encode(), js)
    want = explorer("mlp2").model.decode(torch.tensor([[0.5, -1.0]]))
    assert ok == 200 and np.array_equal(np.frombuffer(pixels, "<f4"), want.flatten().numpy())


def test_cli_exports_one_file_and_checks_its_flags(tmp_path, capsys):
    out = tmp_path / "explorer.html"
    assert main(["explore", str(trained("conv3")), "--export", str(out), "--points", "100"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (") and out.stat().st_size > 10_000
    assert main(["explore", str(trained("conv3")), "--host", "not-an-ip", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--host: 'not-an-ip' is not an IP address" in err
    assert main(["explore", str(tmp_path / "nothing"), "--no-browser"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_command_serves_until_ctrl_c_and_warns_off_loopback():
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "vaekit", "explore", str(trained("mlp2")), "--no-browser",
                             "--port", "0", "--host", "0.0.0.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"at (http://\S+)", line).group(1)
        with urllib.request.urlopen(url.replace("0.0.0.0", "127.0.0.1") + "api/info", timeout=30) as r:
            assert json.loads(r.read())["latent_dim"] == 2
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopped" in out
    assert "warning: listening on 0.0.0.0" in err and "Traceback" not in err


def test_a_table_run_shows_rows_in_the_files_own_units():
    ex = explorer("table")
    info = json.loads(json.dumps(ex.info()))
    assert not info["image"] and info["shape"] == [5] and info["likelihood"] == "mixed"
    cols = info["columns"]
    assert [(c["name"], c["type"], c["at"]) for c in cols] == [
        ("height", "numeric", 0), ("weight", "numeric", 1), ("colour", "categorical", 2)]
    assert cols[2]["levels"] == ["blue", "green", "red"]
    # The offsets and scales map an encoded row back to the file's line: the first training rows.
    lines = (trained("table").parent / "table.csv").read_text().splitlines()[1:4]
    for x, line in zip(ex.split.x[:3], lines):
        h, w, colour = line.split(",")
        assert cols[0]["mean"] + cols[0]["std"] * float(x[0]) == pytest.approx(float(h), abs=1e-3)
        assert cols[1]["mean"] + cols[1]["std"] * float(x[1]) == pytest.approx(float(w), abs=1e-3)
        assert cols[2]["levels"][int(x[2:5].argmax())] == colour and float(x[2:5].sum()) == 1.0
    assert explorer("mlp2").info()["columns"] is None
    with pytest.raises(VaekitError, match=r"^--export: the page cannot run .* 'mixed' likelihood.*serve it with"):
        X.build_page(ex)  # the one-file page has no table likelihood: refused in one line, served instead
