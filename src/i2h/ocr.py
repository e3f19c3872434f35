"""One interface over the OCR engines that run offline here: screenshot -> text lines and words with boxes."""
from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

# Measured on synthetic and IW-Bench pages (benchmarks/bench_ocr.py): Tesseract at 2x reads web text
# best (word F1 0.97 synthetic), and rapidocr's Chinese-first models drop the spaces between English words.
DEFAULT_ENGINE = "tesseract"
ENGINES = ("tesseract", "rapidocr")
ENV_ENGINE = "I2H_OCR_ENGINE"  # the setting: tesseract, rapidocr, or auto (the first one installed)
TESSERACT_TIMEOUT_S = 120.0
# Page segmentation 11 (sparse text): web pages are scattered blocks, not a book page; mode 3 merged
# separate nav links and columns into one line and skipped text on dark panels (line-box recall 0.43 vs 0.86).
TESSERACT_PSM = 11
# Tesseract's LSTM wants an x-height of ~20 px; a 16 px web font has ~8 px, so pages are read enlarged.
TESSERACT_SCALE = 2.0
# Chromium caps full-page shots at 8192 px; Tesseract itself is fine with tall images, but rapidocr shrinks
# anything over its max side, so tall pages are read in overlapping tiles of at most this height.
RAPID_TILE = 1600
RAPID_OVERLAP = 100


class OcrUnavailable(RuntimeError):
    """No usable OCR engine is installed; the message says what to install."""


@dataclass(frozen=True)
class OcrWord:
    text: str
    x: float  # px, in the input image's frame
    y: float
    width: float
    height: float
    confidence: float  # 0-1


@dataclass(frozen=True)
class OcrLine:
    text: str
    x: float
    y: float
    width: float
    height: float
    confidence: float  # 0-1, mean over its words
    words: tuple[OcrWord, ...] = field(default=())


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image) -> list[OcrLine]:
        """Lines of text in reading order, each with its words; boxes in the image's pixel frame."""
        ...


def _union(items: Sequence) -> tuple[float, float, float, float]:
    x0 = min(i.x for i in items)
    y0 = min(i.y for i in items)
    x1 = max(i.x + i.width for i in items)
    y1 = max(i.y + i.height for i in items)
    return x0, y0, x1 - x0, y1 - y0


def line_from_words(words: Sequence[OcrWord]) -> OcrLine:
    """A line made of the given words (left to right), box = their union, confidence = their mean."""
    words = tuple(sorted(words, key=lambda w: w.x))
    x, y, w, h = _union(words)
    conf = float(np.mean([wd.confidence for wd in words])) if words else 0.0
    return OcrLine(" ".join(wd.text for wd in words), x, y, w, h, conf, words)


# ---------------------------------------------------------------------------------------------------------
# Tesseract (Debian `tesseract-ocr`), driven through its CLI: no Python binding needed


class TesseractEngine:
    """Tesseract 4/5 via `tesseract stdin stdout tsv`; one process per page (about 1 s for a 1280x720 page)."""

    name = "tesseract"

    def __init__(self, executable: str | None = None, lang: str = "eng", psm: int = TESSERACT_PSM,
                 scale: float = TESSERACT_SCALE, threads: int = 1, timeout_s: float = TESSERACT_TIMEOUT_S,
                 flip_dark: bool = False):
        exe = executable or os.environ.get("I2H_TESSERACT") or shutil.which("tesseract")
        if not exe or not (os.path.exists(exe) or shutil.which(exe)):
            raise OcrUnavailable("tesseract: not installed; install it (Debian/Ubuntu: apt-get install tesseract-ocr; "
                                 "macOS: brew install tesseract) or choose another engine with "
                                 f"{ENV_ENGINE}=rapidocr (pip install rapidocr-onnxruntime)")
        self.executable, self.lang, self.psm, self.scale = exe, lang, psm, scale
        self.timeout_s, self.flip_dark = timeout_s, flip_dark
        # Tesseract's OpenMP threads fight each other and the browser on small machines: one is faster.
        self.env = {**os.environ, "OMP_THREAD_LIMIT": str(threads)}

    def read(self, image: Image.Image) -> list[OcrLine]:
        img = flip_dark_regions(image) if self.flip_dark else image.convert("RGB")
        if self.scale != 1.0:
            img = img.resize((round(img.width * self.scale), round(img.height * self.scale)), Image.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)  # fast encode: the bytes only cross a pipe
        cmd = [self.executable, "stdin", "stdout", "-l", self.lang, "--psm", str(self.psm), "tsv"]
        try:
            proc = subprocess.run(cmd, input=buf.getvalue(), capture_output=True, timeout=self.timeout_s, env=self.env)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"tesseract: no answer within {self.timeout_s:g} s for a {image.width}x{image.height} "
                               "image; give a smaller screenshot") from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"tesseract failed ({err[-1] if err else 'exit ' + str(proc.returncode)}); "
                               f"check that the `{self.lang}` language data is installed (tesseract --list-langs)")
        return parse_tesseract_tsv(proc.stdout.decode("utf-8", "replace"), 1.0 / self.scale)


def flip_dark_regions(image: Image.Image, cell: int = 8, dark: float = 110.0) -> Image.Image:
    """Grey image with dark panels inverted, so all text is dark on light. Tesseract's sparse-text mode
    misses some light-on-dark text (buttons, dark bars); this recovers a little of it (word recall +1.4
    points on synthetic pages) but reads the panel edges as junk (precision -3), so it is off by default."""
    from PIL import ImageFilter

    g = image.convert("L")
    # The local background: the median of a cell-downscaled copy (text strokes are a minority everywhere).
    small = g.resize((max(1, g.width // cell), max(1, g.height // cell)), Image.BILINEAR)
    bg = np.asarray(small.filter(ImageFilter.MedianFilter(5)).resize(g.size, Image.BILINEAR), np.float32)
    arr = np.asarray(g, np.float32)
    # On dark ground: invert and stretch so the ground is white and the glyphs black, as on light pages.
    flipped = 255.0 - np.clip(arr - bg, 0, None) * 255.0 / np.maximum(255.0 - bg, 1.0)
    return Image.fromarray(np.where(bg < dark, flipped, arr).clip(0, 255).astype(np.uint8), "L")


def parse_tesseract_tsv(tsv: str, scale: float = 1.0) -> list[OcrLine]:
    """Tesseract's TSV (level 5 rows are words) -> lines in Tesseract's reading order, boxes x `scale`."""
    lines: dict[tuple[int, int, int, int], list[OcrWord]] = {}
    # Tesseract writes words verbatim: a quote inside a word must not start a CSV quoted field.
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5":
            continue
        text = (row.get("text") or "").strip()
        try:
            conf = float(row["conf"])
        except (TypeError, ValueError):
            continue
        if not text or conf < 0:
            continue
        key = (int(row["page_num"]), int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
        lines.setdefault(key, []).append(OcrWord(
            text, float(row["left"]) * scale, float(row["top"]) * scale,
            float(row["width"]) * scale, float(row["height"]) * scale, conf / 100.0))
    return [line_from_words(ws) for ws in lines.values() if ws]


# ---------------------------------------------------------------------------------------------------------
# RapidOCR (PP-OCRv4 det + rec on onnxruntime; the wheel carries the models)


@lru_cache(maxsize=1)
def _rapid_model():
    from rapidocr_onnxruntime import RapidOCR

    # Screenshots hold no rotated text: skip the angle classifier. Two threads: this machine has two cores.
    return RapidOCR(use_cls=False, intra_op_num_threads=2, inter_op_num_threads=1)


class RapidOcrEngine:
    """rapidocr-onnxruntime: lines with boxes; word boxes are the line box split by character count."""

    name = "rapidocr"

    def __init__(self, min_score: float = 0.5):
        try:
            import rapidocr_onnxruntime  # noqa: F401
        except ImportError:
            raise OcrUnavailable("rapidocr: not installed; `pip install rapidocr-onnxruntime` (its wheel carries "
                                 f"the models), or use Tesseract ({ENV_ENGINE}=tesseract)") from None
        self.min_score = min_score

    def read(self, image: Image.Image) -> list[OcrLine]:
        arr = np.asarray(image.convert("RGB"))[:, :, ::-1]  # (H, W, 3) BGR, as OpenCV expects
        H = arr.shape[0]
        lines: list[OcrLine] = []
        top = 0
        while True:
            bottom = min(H, top + RAPID_TILE)
            res, _ = _rapid_model()(np.ascontiguousarray(arr[top:bottom]), use_cls=False)
            for box, text, score in res or []:
                pts = np.asarray(box, dtype=np.float64)
                x0, y0 = pts.min(axis=0)
                x1, y1 = pts.max(axis=0)
                y0, y1 = y0 + top, y1 + top
                # A line cut by the tile edge is read whole by the next tile (the overlap): keep that copy.
                if top > 0 and y0 < top + RAPID_OVERLAP / 2:
                    continue
                if bottom < H and y1 > bottom - RAPID_OVERLAP / 2:
                    continue
                text = str(text).strip()
                if text and float(score) >= self.min_score:
                    lines.append(_split_line(text, x0, y0, x1 - x0, y1 - y0, float(score)))
            if bottom >= H:
                break
            top = bottom - RAPID_OVERLAP
        return sorted(lines, key=lambda ln: (round(ln.y + ln.height / 2), ln.x))


def _split_line(text: str, x: float, y: float, w: float, h: float, conf: float) -> OcrLine:
    tokens = text.split()
    total = max(1, len(text))
    words, pos = [], 0
    for tok in tokens:
        start = text.index(tok, pos)
        words.append(OcrWord(tok, x + w * start / total, y, w * len(tok) / total, h, conf))
        pos = start + len(tok)
    return OcrLine(text, x, y, w, h, conf, tuple(words))


# ---------------------------------------------------------------------------------------------------------
# Choosing an engine


def available_engines() -> list[str]:
    """Engines installed here, in order of preference."""
    out = []
    if os.environ.get("I2H_TESSERACT") or shutil.which("tesseract"):
        out.append("tesseract")
    try:
        import importlib.util

        if importlib.util.find_spec("rapidocr_onnxruntime") is not None:
            out.append("rapidocr")
    except (ImportError, ValueError):
        pass
    order = [DEFAULT_ENGINE] + [e for e in ENGINES if e != DEFAULT_ENGINE]
    return [e for e in order if e in out]


def get_engine(name: str | None = None, **kwargs) -> OcrEngine:
    """The named engine (default: $I2H_OCR_ENGINE, else `auto` = the best one installed). Raises OcrUnavailable
    with an install hint when it is not installed."""
    name = (name or os.environ.get(ENV_ENGINE) or "auto").lower()
    if name == "auto":
        have = available_engines()
        if not have:
            raise OcrUnavailable("no OCR engine installed; install Tesseract (apt-get install tesseract-ocr) or "
                                 "`pip install rapidocr-onnxruntime`; or run without text grounding (--no-ground-text)")
        name = have[0]
    if name == "tesseract":
        return TesseractEngine(**kwargs)
    if name == "rapidocr":
        return RapidOcrEngine(**kwargs)
    raise ValueError(f"OCR engine {name!r}: unknown; choose from {', '.join(ENGINES)} or auto")


def read_timed(engine: OcrEngine, image: Image.Image) -> tuple[list[OcrLine], float]:
    """engine.read plus the seconds it took."""
    t0 = time.perf_counter()
    lines = engine.read(image)
    return lines, time.perf_counter() - t0
