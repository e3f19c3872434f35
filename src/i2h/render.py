"""The one place a browser starts: offline, sandboxed HTML -> PNG screenshots and text boxes via Chromium."""
from __future__ import annotations

import asyncio
import io
import itertools
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from PIL import Image

DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Same pixels on every run and every machine profile: fixed colour space, no overlay scrollbars.
    "--force-color-profile=srgb",
    "--hide-scrollbars",
    # Belt and braces: a request the router somehow misses still cannot resolve a host name.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
DEFAULT_MAX_HEIGHT = 8192
# The page itself is served from this origin; `.invalid` is reserved and can never resolve (RFC 2606).
PAGE_ORIGIN = "http://i2h.invalid"
PLACEHOLDER_COLOR = (203, 213, 225)
PLACEHOLDER_DEFAULT_SIZE = (640, 360)
PLACEHOLDER_MAX_SIDE = 2000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".avif", ".ico")


class RenderError(RuntimeError):
    """The browser itself could not be started or used (not one page failing: that is RenderResult.error)."""


@dataclass(frozen=True)
class TextBox:
    """One text node after layout: the union of its client rects, CSS px, page coordinates."""

    text: str
    x: float
    y: float
    width: float
    height: float
    color: tuple[int, int, int]


@dataclass
class RenderResult:
    image: Image.Image  # RGB; blank white page of the viewport size when the page failed
    boxes: list[TextBox]
    page_width: int
    page_height: int
    error: str | None = None
    # The PNG exactly as Chromium encoded it (None on failure): shards store these bytes untouched.
    png: bytes | None = None
    # (url, how it was answered): "document", "tailwind", "placeholder" or "aborted". Nothing else exists:
    # every request is answered locally or aborted.
    requests: list[tuple[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# The local asset map


@lru_cache(maxsize=1)
def tailwind_css() -> bytes:
    """The vendored Tailwind 2.2.19 stylesheet (see assets/tailwind/README.md)."""
    return resources.files("i2h").joinpath("assets/tailwind/tailwind.min.css").read_bytes()


def placeholder_size(url: str) -> tuple[int, int]:
    """Image size a placeholder URL asks for: `600x400` anywhere (placehold.co, unsplash), or `/600/400`."""
    parts = urlsplit(url)
    text = parts.path + "?" + parts.query
    m = re.search(r"(\d{1,5})x(\d{1,5})", text) or re.search(r"/(\d{1,5})/(\d{1,5})(?:/|$|\?)", text)
    if not m:
        return PLACEHOLDER_DEFAULT_SIZE
    w, h = (max(1, min(PLACEHOLDER_MAX_SIDE, int(v))) for v in m.groups())
    return w, h


@lru_cache(maxsize=64)
def placeholder_png(width: int, height: int) -> bytes:
    """A flat grey image with a darker frame: what every <img> shows, since real photos are unavailable."""
    img = Image.new("RGB", (width, height), PLACEHOLDER_COLOR)
    if width > 4 and height > 4:
        frame = Image.new("RGB", (width - 4, height - 4), (226, 232, 240))
        img.paste(frame, (2, 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def classify_request(url: str, resource_type: str) -> str:
    """How the asset map answers a (non-document) request: "tailwind", "placeholder" or "aborted"."""
    path = urlsplit(url).path.lower()
    if path.endswith("tailwind.min.css"):
        return "tailwind"
    if resource_type == "image" or path.endswith(IMAGE_SUFFIXES):
        return "placeholder"
    return "aborted"


# ---------------------------------------------------------------------------------------------------------
# Text boxes from the DOM after layout

# Runs in the page even with JavaScript off (Playwright's evaluate is not page script). One entry per
# non-blank text node: [text, x, y, w, h, computed colour].
_BOXES_JS = """
() => {
  const out = [];
  if (!document.body) return out;
  const skip = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "HEAD", "TITLE"]);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let node;
  while ((node = walker.nextNode())) {
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (!text) continue;
    const el = node.parentElement;
    if (!el || skip.has(el.tagName)) continue;
    const style = getComputedStyle(el);
    if (style.visibility !== "visible" || parseFloat(style.opacity) === 0) continue;
    range.selectNodeContents(node);
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const r of range.getClientRects()) {
      if (r.width <= 0 || r.height <= 0) continue;
      x0 = Math.min(x0, r.left); y0 = Math.min(y0, r.top);
      x1 = Math.max(x1, r.right); y1 = Math.max(y1, r.bottom);
    }
    if (x0 === Infinity) continue;
    out.push([text, x0 + window.scrollX, y0 + window.scrollY, x1 - x0, y1 - y0, style.color]);
  }
  return out;
}
"""

_HEIGHT_JS = """
() => Math.max(document.documentElement ? document.documentElement.scrollHeight : 0,
               document.body ? document.body.scrollHeight : 0)
"""


def parse_css_color(value: str) -> tuple[int, int, int]:
    """`rgb(1, 2, 3)` / `rgba(1, 2, 3, 0.5)` -> (1, 2, 3); anything unparsable -> black."""
    nums = re.findall(r"[-\d.]+", value)
    if value.startswith("rgb") and len(nums) >= 3:
        return tuple(max(0, min(255, round(float(n)))) for n in nums[:3])  # type: ignore[return-value]
    return (0, 0, 0)


def _boxes(raw: list, page_height: int) -> list[TextBox]:
    boxes = []
    for text, x, y, w, h, color in raw:
        if y >= page_height:  # below the (height-capped) screenshot: not visible in the image
            continue
        boxes.append(TextBox(text, float(x), float(y), float(w), float(h), parse_css_color(color)))
    return boxes


# ---------------------------------------------------------------------------------------------------------
# The renderer


def find_chromium(executable_path: str | None = None) -> str | None:
    """Chromium to drive: the argument, $I2H_CHROMIUM, Debian's /usr/bin/chromium, else Playwright's own."""
    for candidate in (executable_path, os.environ.get("I2H_CHROMIUM")):
        if candidate:
            if not Path(candidate).exists() and not shutil.which(candidate):
                raise RenderError(f"{candidate}: no Chromium there; give the path of a Chromium binary")
            return candidate
    if Path(DEBIAN_CHROMIUM).exists():
        return DEBIAN_CHROMIUM
    return None  # Playwright's bundled browser (`playwright install chromium`)


class _Slot:
    """One isolated browser context with one page; recycled after a timeout or crash."""

    def __init__(self) -> None:
        self.context = None
        self.page = None
        self.url = ""  # the URL the current render's document is served at
        self.html = ""
        self.log: list[tuple[str, str]] = []


class Renderer:
    """One browser, a pool of pages, usable from plain sync code (and from several threads).

    Playwright's sync API is not thread-safe, so the async API runs on an event loop on a private thread
    and the sync methods submit work to it. Each pool slot is its own browser context, hence its own
    renderer process: a page that hangs or crashes takes only its slot down, and the slot is rebuilt.
    """

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        full_page: bool = True,
        timeout_s: float = 10.0,
        max_height: int = DEFAULT_MAX_HEIGHT,
        pool_size: int = 2,
        javascript: bool = False,
        executable_path: str | None = None,
        scale: float = 1.0,
    ) -> None:
        """`scale` < 1 lays the page out at `width` CSS px but rasterises fewer pixels (device scale factor):
        a 1280-px page at scale 0.4 gives a 512-px screenshot, much cheaper to paint and encode. Text boxes
        and page sizes stay in CSS px; only `image`/`png` are scaled."""
        if not 0.1 <= scale <= 4:
            raise ValueError(f"Renderer(scale={scale}): scale must be between 0.1 and 4")
        self.scale = scale
        if width < 1 or height < 1 or max_height < height or pool_size < 1 or timeout_s <= 0:
            raise ValueError(
                f"Renderer(width={width}, height={height}, max_height={max_height}, pool_size={pool_size}, "
                f"timeout_s={timeout_s}): sizes and pool must be positive and max_height >= height"
            )
        self.width, self.height, self.full_page = width, height, full_page
        self.timeout_s, self.max_height, self.pool_size = timeout_s, max_height, pool_size
        self.javascript = javascript
        self.executable_path = find_chromium(executable_path)
        self._counter = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="i2h-renderer", daemon=True)
        self._thread.start()
        self._closed = False
        self._pw = None
        self._browser = None
        self._free: asyncio.Queue | None = None
        try:
            self._call(self._start())
        except BaseException:
            self.close()
            raise

    # -- sync facade ---------------------------------------------------------------------------------------
    def _call(self, coro):
        if self._closed:
            coro.close()
            raise RenderError("this Renderer is closed; create a new one")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def render(self, html: str) -> RenderResult:
        """Render one page; failures come back in `.error` with a blank image, never as exceptions."""
        return self.render_many([html])[0]

    def render_many(self, htmls: Sequence[str]) -> list[RenderResult]:
        """Render pages concurrently over the pool; results in input order; one failure never stops the rest."""
        return self._call(self._render_all(list(htmls)))

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._loop.is_running():
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        except Exception:  # closing is best effort: the browser process dies with us anyway
            pass
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._loop.is_running():
                self._loop.close()

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- async internals -----------------------------------------------------------------------------------
    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        await self._launch()
        self._free = asyncio.Queue()
        for _ in range(self.pool_size):
            self._free.put_nowait(await self._new_slot())

    async def _launch(self) -> None:
        try:
            self._browser = await self._pw.chromium.launch(
                executable_path=self.executable_path, args=list(CHROMIUM_ARGS), headless=True
            )
        except Exception as e:
            where = self.executable_path or "Playwright's bundled Chromium"
            raise RenderError(
                f"{where}: could not start Chromium ({str(e).splitlines()[0]}); install Chromium "
                "(Debian: apt-get install chromium) or run `playwright install chromium`"
            ) from None

    async def _new_slot(self, slot: _Slot | None = None) -> _Slot:
        slot = slot or _Slot()
        if self._browser is None or not self._browser.is_connected():
            await self._launch()
        slot.context = await self._browser.new_context(
            viewport={"width": self.width, "height": self.height},
            device_scale_factor=self.scale,
            java_script_enabled=self.javascript,
            service_workers="block",
            offline=False,  # the router answers everything; `offline` would fail the page's own request
        )
        await slot.context.route("**/*", lambda route: self._answer(slot, route))
        slot.page = await slot.context.new_page()
        return slot

    async def _answer(self, slot: _Slot, route) -> None:
        request = route.request
        url = request.url
        try:
            if url == slot.url and request.is_navigation_request():
                slot.log.append((url, "document"))
                await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=slot.html)
                return
            kind = classify_request(url, request.resource_type)
            slot.log.append((url, kind))
            if kind == "tailwind":
                await route.fulfill(status=200, content_type="text/css", body=tailwind_css())
            elif kind == "placeholder":
                await route.fulfill(status=200, content_type="image/png", body=placeholder_png(*placeholder_size(url)))
            else:
                await route.abort("blockedbyclient")
        except Exception:  # the page went away mid-request (timeout, crash): nothing left to answer
            pass

    async def _recycle(self, slot: _Slot) -> _Slot:
        try:
            await asyncio.wait_for(slot.context.close(), timeout=5)
        except Exception:  # a wedged context: drop it; if the browser itself is gone, _new_slot relaunches
            pass
        try:
            return await self._new_slot(slot)
        except Exception:
            # The browser is beyond saving (crashed outright): start a fresh one for this slot.
            try:
                await asyncio.wait_for(self._browser.close(), timeout=5)
            except Exception:
                pass
            self._browser = None
            return await self._new_slot(slot)

    async def _render_all(self, htmls: list[str]) -> list[RenderResult]:
        return list(await asyncio.gather(*(self._render_one(h) for h in htmls)))

    async def _render_one(self, html: str) -> RenderResult:
        if not isinstance(html, str):
            return self._failed(f"not HTML text but {type(html).__name__}", [])
        slot = await self._free.get()
        slot.url = f"{PAGE_ORIGIN}/page/{next(self._counter)}.html"
        slot.html, slot.log = html, []
        broken = False
        try:
            result = await asyncio.wait_for(self._render_on(slot), timeout=self.timeout_s)
        except asyncio.TimeoutError:
            broken = True
            result = self._failed(f"timeout: page did not finish within {self.timeout_s:g} s", slot.log)
        except Exception as e:  # crash, closed target...: report it and rebuild the slot
            broken = True
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            result = self._failed(f"render failed: {first}", slot.log)
        finally:
            if broken:
                slot = await self._recycle(slot)
            slot.html = ""
            self._free.put_nowait(slot)
        return result

    async def _render_on(self, slot: _Slot) -> RenderResult:
        page = slot.page
        timeout_ms = self.timeout_s * 1000
        await page.goto(slot.url, wait_until="load", timeout=timeout_ms)
        if self.full_page:
            doc_height = int(await page.evaluate(_HEIGHT_JS))
            height = max(self.height, min(doc_height, self.max_height))
        else:
            height = self.height
        raw = await page.evaluate(_BOXES_JS)
        # A clip in page coordinates with full_page=True captures beyond the viewport without resizing it
        # (so `vh` units keep meaning the viewport), and caps the height of runaway pages.
        png = await page.screenshot(
            type="png",
            full_page=True,
            clip={"x": 0, "y": 0, "width": self.width, "height": height},
            animations="disabled",
            caret="hide",
            timeout=timeout_ms,
        )
        image = Image.open(io.BytesIO(png))
        image.load()
        image = image.convert("RGB")
        return RenderResult(
            image=image,
            boxes=_boxes(raw, height),
            page_width=round(image.width / self.scale),
            page_height=round(image.height / self.scale),
            png=png,
            requests=list(slot.log),
        )

    def _failed(self, why: str, log: list[tuple[str, str]]) -> RenderResult:
        blank = Image.new("RGB", (self.width, self.height), (255, 255, 255))
        return RenderResult(blank, [], self.width, self.height, error=why, requests=list(log))

    async def _shutdown(self) -> None:
        try:
            if self._browser is not None:
                await asyncio.wait_for(self._browser.close(), timeout=10)
        except Exception:
            pass
        try:
            if self._pw is not None:
                await self._pw.stop()
        except Exception:
            pass


def render_html(html: str, **kwargs) -> RenderResult:
    """One-off convenience: start a browser, render one page, close it (use a Renderer for many pages)."""
    kwargs.setdefault("pool_size", 1)
    with Renderer(**kwargs) as renderer:
        return renderer.render(html)


def render_files(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    width: int = 1280,
    full_page: bool = False,
    timeout_s: float = 10.0,
    pool_size: int = 2,
) -> int:
    """`i2h render`: each HTML file -> OUT/<stem>.png (temp name, then rename). Returns the number that failed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Path, str]] = []
    failed = 0
    for p in map(Path, paths):
        try:
            jobs.append((p, p.read_text(encoding="utf-8", errors="replace")))
        except OSError as e:
            print(f"{p}: cannot read ({e.strerror}); give an existing HTML file")
            failed += 1
    if not jobs:
        return failed
    start = time.perf_counter()
    with Renderer(width=width, full_page=full_page, timeout_s=timeout_s, pool_size=pool_size) as renderer:
        for i in range(0, len(jobs), 4 * pool_size):
            batch = jobs[i : i + 4 * pool_size]
            for (p, _), res in zip(batch, renderer.render_many([h for _, h in batch])):
                if res.error:
                    print(f"{p}: {res.error}; written as a blank page")
                    failed += 1
                target = out / f"{p.stem}.png"
                tmp = target.with_name(f".{target.name}.tmp")
                if res.png is not None:
                    tmp.write_bytes(res.png)
                else:
                    res.image.save(tmp, format="PNG")
                os.replace(tmp, target)
    n = len(jobs)
    print(f"rendered {n} page(s) into {out} in {time.perf_counter() - start:.1f} s ({failed} failed)")
    return failed
