"""Text grounding: replace a predicted page's text with what OCR reads in the screenshot, matched by position."""
from __future__ import annotations

import hashlib

import re
import sys
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from .ocr import OcrEngine, OcrLine, OcrUnavailable, OcrWord, get_engine, line_from_words

# Words Tesseract reads with less confidence are mostly icons, borders and photo texture, not text.
MIN_WORD_CONFIDENCE = 0.5
# A word belongs to a predicted text node when at least this share of its box lies in the node's box
# (grown by PAD_FRAC of the word's height: glyph ink and DOM line boxes differ by a few px).
MIN_OVERLAP = 0.3
PAD_FRAC = 0.5
# An unassigned word joins its OCR line's neighbour's node when the gap between them is at most this
# many word heights (a predicted box too narrow for the real line).
JOIN_GAP = 2.0
# A predicted text node where OCR found nothing is cleared only when the screenshot is blank there
# (grey-level standard deviation below this): elsewhere OCR may have missed real text, so the node stays.
BLANK_STD = 6.0
# Added text: font size from the OCR line's ink height (ascender to descender ~ 0.9 em in common fonts).
INK_TO_EM = 0.9
SKIP_TAGS = {"script", "style", "noscript", "template", "head", "title"}
_SPACE = re.compile(r"\s+")
_JUNK = re.compile(r"^[\W_]{1,2}$")  # "|", "—", "»": borders and icons read as glyphs


@dataclass
class GroundResult:
    html: str  # the grounded page (the input unchanged when grounding failed: see `error`)
    replaced: int  # predicted text nodes given the text read at their place
    added: int  # OCR lines the prediction made no room for, added as positioned elements
    removed: int  # predicted text nodes cleared: the screenshot shows nothing there
    seconds: float
    kept: int = 0  # predicted text nodes left as predicted (no OCR text there, but not blank either)
    ocr_lines: int = 0
    error: str | None = None
    source_html: str = field(default="", repr=False)  # the prediction before grounding


# ---------------------------------------------------------------------------------------------------------
# The prediction's text nodes (html5lib: the tree a browser builds, so its text nodes are the renderer's)


@dataclass
class _Node:
    holder: Any  # element whose .text (or .tail) holds this text node
    attr: str  # "text" or "tail"
    text: str  # whitespace-normalised
    box: tuple[float, float, float, float] | None = None  # x, y, w, h in the render frame
    words: list[tuple[int, OcrWord]] = field(default_factory=list)  # (OCR line index, word)


def _parse(html: str):
    import html5lib

    return html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)


def _serialize(root, doctype: bool) -> str:
    import html5lib
    from html5lib import serializer

    ser = serializer.HTMLSerializer(
        quote_attr_values="always", omit_optional_tags=False, minimize_boolean_attributes=False,
        use_trailing_solidus=False, escape_lt_in_attrs=True, resolve_entities=False,
    )
    body = ser.render(html5lib.getTreeWalker("etree")(root))
    return ("<!DOCTYPE html>" if doctype else "") + body


def _text_nodes(root) -> list[_Node]:
    """Non-blank text nodes in document order, as the renderer's TreeWalker visits them."""
    out: list[_Node] = []

    def tag(el) -> str | None:
        return el.tag.lower() if isinstance(el.tag, str) else None  # comments have a function as tag

    def walk(el, skipped: bool) -> None:
        t = tag(el)
        inside = skipped or t is None or t in SKIP_TAGS
        if t is not None and not inside and el.text and el.text.strip():
            out.append(_Node(el, "text", _SPACE.sub(" ", el.text).strip()))
        for child in el:
            walk(child, inside)
            # A child's tail is a text node of `el` itself: skipped with `el`.
            if child.tail and child.tail.strip() and not inside:
                out.append(_Node(child, "tail", _SPACE.sub(" ", child.tail).strip()))

    walk(root, False)
    return out


def _attach_boxes(nodes: list[_Node], boxes: Sequence) -> None:
    """Give each node its rendered box by aligning the two text sequences (the renderer skips invisible
    nodes and those below its height cap, so the lists differ by deletions only, up to parser quirks)."""
    import difflib

    a = [n.text for n in nodes]
    b = [_SPACE.sub(" ", bx.text).strip() for bx in boxes]
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for i, j, size in sm.get_matching_blocks():
        for k in range(size):
            bx = boxes[j + k]
            nodes[i + k].box = (float(bx.x), float(bx.y), float(bx.width), float(bx.height))


# ---------------------------------------------------------------------------------------------------------
# Geometry


def _overlap_share(words: np.ndarray, boxes: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """(W, 4) word boxes and (N, 4) node boxes (x, y, w, h) -> (W, N) share of each word's area inside each
    node box grown by that word's pad."""
    wx0, wy0 = words[:, 0:1], words[:, 1:2]
    wx1, wy1 = wx0 + words[:, 2:3], wy0 + words[:, 3:4]
    bx0, by0 = boxes[None, :, 0] - pad[:, None], boxes[None, :, 1] - pad[:, None]
    bx1 = boxes[None, :, 0] + boxes[None, :, 2] + pad[:, None]
    by1 = boxes[None, :, 1] + boxes[None, :, 3] + pad[:, None]
    iw = np.clip(np.minimum(wx1, bx1) - np.maximum(wx0, bx0), 0, None)
    ih = np.clip(np.minimum(wy1, by1) - np.maximum(wy0, by0), 0, None)
    area = np.maximum(words[:, 2:3] * words[:, 3:4], 1e-6)
    return iw * ih / area


def _assign(words: list[tuple[int, OcrWord]], nodes: list[_Node], sx: float, sy: float) -> tuple[np.ndarray, float]:
    """Node index per word (-1: none) with the words mapped into the render frame by (sx, sy); and the
    total overlap, which says how well this frame fits."""
    boxed = [k for k, n in enumerate(nodes) if n.box is not None]
    if not words or not boxed:
        return np.full(len(words), -1), 0.0
    W = np.array([[w.x * sx, w.y * sy, w.width * sx, w.height * sy] for _, w in words])  # (W, 4)
    B = np.array([nodes[k].box for k in boxed])  # (N, 4)
    share = _overlap_share(W, B, PAD_FRAC * W[:, 3])  # (W, N)
    # Among boxes holding a word equally, the smallest is the most specific (a link inside a paragraph).
    score = share - 1e-9 * (B[:, 2] * B[:, 3])[None, :]
    best = score.argmax(axis=1)
    got = share[np.arange(len(words)), best]
    idx = np.where(got >= MIN_OVERLAP, np.array(boxed)[best], -1)
    return idx, float(got[got >= MIN_OVERLAP].sum())


def _join_line_neighbours(words: list[tuple[int, OcrWord]], idx: np.ndarray) -> np.ndarray:
    """An unassigned word next to an assigned word of the same OCR line joins that word's node: the real
    line ran past the predicted box (a longer or wider text than the model made room for)."""
    idx = idx.copy()
    by_line: dict[int, list[int]] = {}
    for k, (li, _) in enumerate(words):
        by_line.setdefault(li, []).append(k)
    for ks in by_line.values():
        ks.sort(key=lambda k: words[k][1].x)
        for order in (ks, ks[::-1]):  # left to right, then right to left
            for prev, cur in zip(order, order[1:]):
                if idx[cur] < 0 <= idx[prev]:
                    a, b = words[prev][1], words[cur][1]
                    gap = max(b.x - (a.x + a.width), a.x - (b.x + b.width))
                    if gap <= JOIN_GAP * max(a.height, b.height):
                        idx[cur] = idx[prev]
    return idx


def _ink_std(gray: np.ndarray, box: tuple[float, float, float, float]) -> float:
    x, y, w, h = box
    H, W = gray.shape
    x0, y0 = max(0, int(x)), max(0, int(y))
    x1, y1 = min(W, int(np.ceil(x + w))), min(H, int(np.ceil(y + h)))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(gray[y0:y1, x0:x1].std())


def text_color(rgb: np.ndarray, box: tuple[float, float, float, float]) -> tuple[int, int, int]:
    """Colour of the glyphs in a box of the screenshot: the pixels farthest from the box's border colour."""
    x, y, w, h = box
    H, W = rgb.shape[:2]
    x0, y0 = max(0, int(x) - 1), max(0, int(y) - 1)
    x1, y1 = min(W, int(np.ceil(x + w)) + 1), min(H, int(np.ceil(y + h)) + 1)
    patch = rgb[y0:y1, x0:x1].reshape(-1, 3).astype(np.float32) if x1 > x0 and y1 > y0 else None
    if patch is None or len(patch) == 0:
        return (0, 0, 0)
    crop = rgb[y0:y1, x0:x1].astype(np.float32)
    border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    bg = np.median(border, axis=0)
    d = np.linalg.norm(patch - bg, axis=1)
    ink = patch[d >= 0.6 * d.max()] if d.max() > 0 else patch
    return tuple(int(round(c)) for c in ink.mean(axis=0))  # type: ignore[return-value]


def _added_element(root, line: OcrLine, rgb: np.ndarray, sx: float, sy: float):
    """An absolutely positioned <div> holding one OCR line at its place, size and colour."""
    from xml.etree.ElementTree import Element

    fs = max(6, round(line.height * sy / INK_TO_EM))
    lh = round(fs * 1.2)
    cy = (line.y + line.height / 2) * sy
    r, g, b = text_color(rgb, (line.x, line.y, line.width, line.height))
    el = Element("div", {
        "data-i2h-ocr": "",
        "style": (f"position:absolute;left:{line.x * sx:.0f}px;top:{cy - lh / 2:.0f}px;margin:0;padding:0;"
                  f"font-size:{fs}px;line-height:{lh}px;color:rgb({r},{g},{b});white-space:nowrap;z-index:1"),
    })
    el.text = line.text
    return el


# ---------------------------------------------------------------------------------------------------------
# Grounding


def ground_html(html: str, screenshot: Image.Image, renderer, ocr_engine: OcrEngine | None = None, *,
                lines: Sequence[OcrLine] | None = None, add_missing: bool = True,
                clear_empty: bool = True) -> GroundResult:
    """Put the screenshot's text into the predicted page: render `html` with `renderer` (ideally as wide as
    the screenshot; otherwise coordinates are scaled), read the screenshot with `ocr_engine` (or take its
    `lines`), give each OCR word to the predicted text node whose box holds it, and write each node's words
    in reading order. OCR lines with no node become positioned elements (`add_missing`); nodes with no OCR
    text over a blank part of the screenshot are emptied (`clear_empty`). Never raises for a bad page:
    failures return the input HTML with `error` set."""
    t0 = time.perf_counter()

    def failed(why: str) -> GroundResult:
        return GroundResult(html, 0, 0, 0, time.perf_counter() - t0, error=why, source_html=html)

    try:
        shot = screenshot.convert("RGB")
        if lines is None:
            if ocr_engine is None:
                return failed("no OCR engine given")
            lines = ocr_engine.read(shot)
        root = _parse(html)
        nodes = _text_nodes(root)
        # The page as given: html5lib builds the tree a browser builds, so its text nodes are the render's.
        render = renderer.render(html) if nodes else None
    except Exception as e:  # noqa: BLE001 - one bad page is reported in its result and never stops a batch
        return failed(f"{type(e).__name__}: {e}")
    if render is not None and render.error:
        return failed(f"prediction did not render: {render.error}")
    doctype = bool(re.match(r"\s*<!doctype", html, re.I))
    if render is not None:
        _attach_boxes(nodes, render.boxes)

    words = [(li, w) for li, ln in enumerate(lines) for w in ln.words
             if w.confidence >= MIN_WORD_CONFIDENCE and w.text.strip() and not _JUNK.match(w.text)]
    # The screenshot's frame -> the render's: x by the width ratio; y either the same (a page that starts
    # the same way: screenshots cut at the viewport) or by the page-height ratio (a prediction that is
    # longer or shorter throughout). The one under which more OCR text lands in predicted boxes wins.
    sx = (render.page_width if render is not None else getattr(renderer, "width", shot.width)) / shot.width
    idx, sy = np.full(len(words), -1), sx
    if render is not None:
        best = -1.0
        for cand in dict.fromkeys((sx, render.page_height / shot.height)):
            got, total = _assign(words, nodes, sx, cand)
            if total > best:
                best, idx, sy = total, got, cand
        idx = _join_line_neighbours(words, idx)
    for k, (li, w) in zip(idx, words):
        if k >= 0:
            nodes[k].words.append((li, w))

    rgb = np.asarray(shot)
    gray = rgb.astype(np.float32).mean(axis=2)
    replaced = removed = kept = 0
    for n in nodes:
        old = getattr(n.holder, n.attr)
        lead = old[: len(old) - len(old.lstrip())]
        trail = old[len(old.rstrip()):]
        if n.words:
            # Reading order: OCR line by OCR line (lines are top to bottom), words left to right.
            n.words.sort(key=lambda t: (lines[t[0]].y + lines[t[0]].height / 2, t[0], t[1].x))
            setattr(n.holder, n.attr, lead + " ".join(w.text for _, w in n.words) + trail)
            replaced += 1
            continue
        if clear_empty and n.box is not None:
            x, y, w, h = n.box
            in_shot = (x / sx, y / sy, w / sx, h / sy)
            # Only where the screenshot shows this place and it is blank: text below a viewport-sized
            # screenshot is unknown, not absent.
            if (y + h) / sy <= shot.height and _ink_std(gray, in_shot) < BLANK_STD:
                setattr(n.holder, n.attr, " " if (lead or trail) else "")
                removed += 1
                continue
        kept += 1

    added = 0
    if add_missing and words:
        assigned = {id(w) for (k, (_, w)) in zip(idx, words) if k >= 0}
        usable = {id(w) for _, w in words}
        body = root.find("body")
        if body is None:
            body = root
        for li, ln in enumerate(lines):
            rest = [w for w in ln.words if id(w) in usable and id(w) not in assigned]
            if not rest:
                continue
            # Runs split at wide gaps: two columns read as one line stay two elements.
            run: list[OcrWord] = []
            for w in sorted(rest, key=lambda w: w.x):
                if run and w.x - (run[-1].x + run[-1].width) > 3 * max(w.height, run[-1].height):
                    body.append(_added_element(root, line_from_words(run), rgb, sx, sy))
                    added += 1
                    run = []
                run.append(w)
            body.append(_added_element(root, line_from_words(run), rgb, sx, sy))
            added += 1
    try:
        out = _serialize(root, doctype)
    except Exception as e:  # noqa: BLE001
        return failed(f"could not write the grounded page: {type(e).__name__}: {e}")
    return GroundResult(out, replaced, added, removed, time.perf_counter() - t0, kept=kept, ocr_lines=len(lines),
                        source_html=html)


# ---------------------------------------------------------------------------------------------------------
# The hook the inference path calls


class TextGrounder:
    """Callable (html, screenshot) -> GroundResult holding one OCR engine and renderers per screenshot width.
    Use as a context manager (or call close()) to stop the browsers it started."""

    def __init__(self, engine: OcrEngine | str | None = None, renderer=None, timeout_s: float = 10.0):
        self.engine = engine if engine is not None and not isinstance(engine, str) else get_engine(engine)
        self._renderers: dict[int, Any] = {}
        self._own: list[Any] = []
        # OCR of recent screenshots (lines, or a Future while prefetch() is reading them): evaluation grounds
        # several systems' pages on one screenshot, and generation reads the screenshots while it decodes.
        self._ocr: dict[str, Any] = {}
        self._pool = None
        if renderer is not None:
            self._renderers[renderer.width] = renderer
        self.timeout_s = timeout_s

    OCR_CACHE = 16

    def renderer_for(self, width: int):
        r = self._renderers.get(width)
        if r is None:
            from .render import Renderer

            # A screenshot wider or narrower than 1280 lays out differently: render at its own width.
            r = self._renderers[width] = Renderer(width=width, timeout_s=self.timeout_s, pool_size=1)
            self._own.append(r)
        return r

    @staticmethod
    def _key(screenshot: Image.Image) -> str:
        return hashlib.blake2b(screenshot.tobytes(), digest_size=16).hexdigest() + f"{screenshot.size}"

    def _remember(self, key: str, value) -> None:
        self._ocr = {**dict(list(self._ocr.items())[-(self.OCR_CACHE - 1):]), key: value}

    def prefetch(self, screenshots: Sequence[Image.Image]) -> None:
        """Start reading these screenshots with OCR in a background thread (the engine is a separate process),
        so the reading overlaps the model's decoding; __call__ then waits for the result."""
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="i2h-ocr")
        for shot in screenshots[: self.OCR_CACHE]:
            key = self._key(shot)
            if key not in self._ocr:
                self._remember(key, self._pool.submit(self.engine.read, shot))

    def __call__(self, html: str, screenshot: Image.Image) -> GroundResult:
        t0 = time.perf_counter()
        try:
            renderer = self.renderer_for(screenshot.width)
        except Exception as e:  # noqa: BLE001 - no browser: the page stays ungrounded and says why
            return GroundResult(html, 0, 0, 0, 0.0, error=f"no renderer: {e}", source_html=html)
        key = self._key(screenshot)
        lines = self._ocr.get(key)
        if isinstance(lines, Future):
            try:
                lines = lines.result()
            except Exception:  # noqa: BLE001 - read again below; a second failure is reported for this page
                lines = None
            if lines is None:
                self._ocr.pop(key, None)
            else:
                self._remember(key, lines)
        if lines is None:
            try:
                lines = self.engine.read(screenshot)
            except Exception:  # noqa: BLE001 - let ground_html report the OCR failure for this page
                lines = None
            if lines is not None:
                self._remember(key, lines)
        result = ground_html(html, screenshot, renderer, self.engine, lines=lines)
        result.seconds = time.perf_counter() - t0  # the OCR (or the wait for it) included
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for r in self._own:
            r.close()
        self._own.clear()
        self._renderers.clear()

    def __enter__(self) -> "TextGrounder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_grounder(enabled: bool = True, engine: str | None = None, renderer=None,
                  warn: Callable[[str], None] | None = None) -> TextGrounder | None:
    """A TextGrounder, or None when grounding is off or no OCR engine is installed (then `warn` gets a
    one-line message saying so and how to install one; default: printed to stderr)."""
    if not enabled:
        return None
    try:
        return TextGrounder(engine, renderer=renderer)
    except OcrUnavailable as e:
        (warn or (lambda m: print(m, file=sys.stderr)))(
            f"text grounding off: {e}. The output keeps the model's own text.")
        return None
