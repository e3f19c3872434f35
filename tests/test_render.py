"""The offline renderer: styled Tailwind pages with no network, hangs and giants contained, same pixels twice."""
from __future__ import annotations

import http.server
import threading
import time

import numpy as np
import pytest

from i2h.render import Renderer, classify_request, parse_css_color, placeholder_size, render_html

pytestmark = pytest.mark.browser

TAILWIND_PAGE = """<!DOCTYPE html><html><head>
<link href="https://cdn.jsdelivr.net/npm/tailwindcss@2.2.19/dist/tailwind.min.css" rel="stylesheet">
<link href="https://fonts.googleapis.com/css2?family=Inter" rel="stylesheet">
<link href="{local}/style.css" rel="stylesheet"></head>
<body class="bg-blue-500"><h1 class="text-4xl text-white p-8">Hello offline</h1>
<img src="https://source.unsplash.com/random/300x200/?city" alt="x"><img src="{local}/pic.png">
<p class="text-red-600">Red text</p></body></html>"""


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # any request reaching here left the renderer
        _Counting.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    """A real server on this machine: a request reaching it is a request the router failed to stop."""
    _Counting.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def renderer():
    with Renderer(pool_size=2, timeout_s=5) as r:
        yield r


def test_tailwind_cdn_page_renders_styled_offline(renderer, local_server):
    res = renderer.render(TAILWIND_PAGE.format(local=local_server))
    assert res.error is None
    assert _Counting.hits == []  # nothing reached a server
    served = {url: how for url, how in res.requests}
    assert served["https://cdn.jsdelivr.net/npm/tailwindcss@2.2.19/dist/tailwind.min.css"] == "tailwind"
    assert served["https://source.unsplash.com/random/300x200/?city"] == "placeholder"
    assert served[f"{local_server}/pic.png"] == "placeholder"
    assert served[f"{local_server}/style.css"] == "aborted"
    assert served["https://fonts.googleapis.com/css2?family=Inter"] == "aborted"
    assert [how for _, how in res.requests].count("document") == 1
    assert res.image.getpixel((4, 4)) == (59, 130, 246)  # bg-blue-500: Tailwind was applied
    boxes = {b.text: b for b in res.boxes}
    assert boxes["Hello offline"].color == (255, 255, 255)
    assert boxes["Red text"].color == (220, 38, 38)
    assert boxes["Hello offline"].x == pytest.approx(32)  # p-8
    assert res.page_width == 1280 and res.image.size == (1280, res.page_height)


def test_hang_and_giant_pages_end_in_time_and_spare_the_rest():
    hang = "<html><body><p>before</p><script>while(true){}</script></body></html>"
    tall = '<html><body style="height:100000px"><p>tall</p></body></html>'
    ok = "<html><body><p>fine</p></body></html>"
    # 6 s: the tall page shares 2 cores with a renderer spinning in while(true); on a loaded machine a
    # 1280x4000 screenshot can take a few seconds.
    with Renderer(pool_size=2, timeout_s=6, javascript=True, max_height=4000) as r:
        start = time.perf_counter()
        res = r.render_many([hang, tall, ok, hang, ok])
        elapsed = time.perf_counter() - start
        after = r.render(ok)  # the pool is still healthy after two hung pages
    assert res[0].error and "timeout" in res[0].error and res[3].error
    assert res[0].image.size == (1280, 720) and res[0].image.getpixel((10, 10)) == (255, 255, 255)
    assert res[1].error is None and res[1].page_height == 4000
    assert res[2].error is None and [b.text for b in res[2].boxes] == ["fine"]
    assert res[4].error is None and after.error is None
    assert elapsed < 40  # two 6 s timeouts on two slots, plus slot rebuilds; never a stuck batch


def test_script_does_not_run_by_default(renderer):
    res = renderer.render('<html><body><p id="x">static</p><script>document.body.innerHTML="<p>js</p>"</script></body></html>')
    assert [b.text for b in res.boxes] == ["static"]


def test_same_input_same_pixels(renderer):
    html = TAILWIND_PAGE.format(local="http://example.invalid")
    a, b = renderer.render_many([html, html])
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.boxes == b.boxes


def test_fixed_height_and_convenience():
    res = render_html("<html><body style='height:3000px'><p>x</p></body></html>", full_page=False, height=600, width=800)
    assert res.image.size == (800, 600) and res.error is None


def test_asset_map_rules():
    assert classify_request("https://unpkg.com/tailwindcss@2.2.19/dist/tailwind.min.css", "stylesheet") == "tailwind"
    assert classify_request("https://x.test/a.js", "script") == "aborted"
    assert classify_request("https://x.test/a", "image") == "placeholder"
    assert placeholder_size("https://placehold.co/600x400") == (600, 400)
    assert placeholder_size("https://picsum.photos/200/300") == (200, 300)
    assert parse_css_color("rgba(1, 2, 3, 0.5)") == (1, 2, 3)
