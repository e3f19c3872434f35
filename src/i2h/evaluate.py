"""Render-and-compare evaluation: predictors and baselines over page pairs -> metrics.json and report.html."""
from __future__ import annotations

import dataclasses

import hashlib
import html as htmlmod
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image

from . import metrics as M

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
BLANK_HTML = "<!DOCTYPE html><html><head></head><body></body></html>"
DEFAULT_BASELINES = ("blank", "nearest", "oracle")
SUMMARY_KEYS = ("overall", "block_match", "text", "position", "color", "visual", "clip",
                "bleu", "tree_bleu", "valid_html", "length_ratio", "repetition_loop")
THUMB_WIDTH = 360
THUMB_MAX_HEIGHT = 1400  # tall pages are cropped in the report; the scores use the whole page
CHUNK = 8  # pages predicted, rendered and scored together: bounds memory on long runs


class DataError(ValueError):
    """A data path that cannot be evaluated; the message names it and says what to give instead."""


# --------------------------------------------------------------------------------------------------
# Page pairs: a folder of <id>.png + <id>.html, or WebSight-format Parquet shards
# --------------------------------------------------------------------------------------------------


@dataclass
class Pair:
    id: str
    image: Any  # path or PNG bytes; decoded only when its chunk comes up
    html: str | None  # None: screenshot only, so block and code scores cannot be computed


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file() and path.suffix == ".parquet":
        return [path]
    return sorted(path.glob("*.parquet")) if path.is_dir() else []


def iter_pairs(path: str | Path, n: int | None = None) -> Iterator[Pair]:
    """Pairs from a folder of screenshots (<id>.png, with <id>.html when there is one) or Parquet shards
    with WebSight's columns `image` ({'bytes', 'path'}) and `text` (HTML)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such folder or file; give a folder of <id>.png + <id>.html pairs "
                        "or a folder of Parquet shards")
    count = 0
    shards = _parquet_files(p)
    if shards:
        import pyarrow.parquet as pq

        for shard in shards:
            pf = pq.ParquetFile(shard)
            names = set(pf.schema_arrow.names)
            if "image" not in names:
                raise DataError(f"{shard}: no `image` column; give shards in WebSight format (image, text)")
            cols = ["image"] + (["text"] if "text" in names else [])
            row = 0
            for batch in pf.iter_batches(batch_size=64, columns=cols):
                for rec in batch.to_pylist():
                    img = rec["image"]
                    data = img.get("bytes") if isinstance(img, dict) else img
                    yield Pair(f"{shard.stem}-{row}", data, rec.get("text"))
                    row += 1
                    count += 1
                    if n is not None and count >= n:
                        return
        return
    if not p.is_dir():
        raise DataError(f"{p}: not a folder or a .parquet file; give a folder of <id>.png + <id>.html pairs "
                        "or Parquet shards")
    images = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
    # A folder of pages and their assets (Design2Code's rick.jpg) holds images without HTML: when any
    # image has its HTML, only those are pages.
    paired = [f for f in images if f.with_suffix(".html").exists()]
    for f in paired or images:
        html_path = f.with_suffix(".html")
        html = html_path.read_text(encoding="utf-8", errors="replace") if html_path.exists() else None
        yield Pair(f.stem, f, html)
        count += 1
        if n is not None and count >= n:
            return


def load_pairs(path: str | Path, n: int | None = None) -> list[Pair]:
    """All pairs (the first n) of a folder or shards; raises DataError when there are none."""
    pairs = list(iter_pairs(path, n))
    if not pairs:
        raise DataError(f"{path}: no screenshots (.png/.jpg/.webp) or Parquet shards found; give a folder of "
                        "<id>.png + <id>.html pairs or a folder of Parquet shards")
    return pairs


def _load_image(pair: Pair) -> Image.Image:
    from .images import load_image

    return load_image(pair.image, name=str(pair.image) if isinstance(pair.image, (str, Path)) else pair.id)


# --------------------------------------------------------------------------------------------------
# Baselines: predictors like any other (predict(images) -> list[str])
# --------------------------------------------------------------------------------------------------


class BlankBaseline:
    """An empty page for every input: the floor every score should clear."""

    def predict(self, images: Sequence) -> list[str]:
        return [BLANK_HTML for _ in images]


def _thumb(img: Image.Image) -> np.ndarray:
    # 32x32 colour thumbnail of the whole page plus its aspect ratio: cheap, and enough to find a page of
    # the same kind (header bar, light/dark, long/short).
    small = np.asarray(img.convert("RGB").resize((32, 32), Image.BILINEAR), np.float32).ravel() / 255.0
    return np.concatenate([small, [4.0 * math.log(img.height / img.width)]])


def _pixels_key(img: Image.Image) -> str:
    return hashlib.sha1(img.convert("RGB").tobytes() + repr(img.size).encode()).hexdigest()


class NearestBaseline:
    """The HTML of the training page whose screenshot is nearest the input (L2 on 32x32 thumbnails).
    A training page with exactly the input's pixels is skipped, so the eval set may double as the
    training set (leave-one-out)."""

    def __init__(self, pairs: Sequence[Pair], max_pages: int | None = 20000):
        feats, htmls, keys = [], [], []
        self.skipped: list[str] = []
        for pair in pairs[:max_pages] if max_pages else pairs:
            if pair.html is None:
                continue
            from .images import ImageError

            try:
                img = _load_image(pair)
            except ImageError as e:
                self.skipped.append(str(e))
                continue
            feats.append(_thumb(img))
            htmls.append(pair.html)
            keys.append(_pixels_key(img))
        if not feats:
            raise DataError("the training pages for the nearest baseline hold no usable screenshot+HTML pair; "
                            "give --train a folder of <id>.png + <id>.html pairs or WebSight-format shards")
        self.feats = np.stack(feats)  # (N, 32*32*3 + 1)
        self.htmls, self.keys = htmls, keys

    @classmethod
    def from_path(cls, path: str | Path, max_pages: int | None = 20000) -> "NearestBaseline":
        return cls(load_pairs(path, max_pages), max_pages=None)

    def predict(self, images: Sequence) -> list[str]:
        from .images import load_image

        out = []
        for src in images:
            img = load_image(src)
            d = ((self.feats - _thumb(img)) ** 2).sum(axis=1)
            key = _pixels_key(img)
            d[[i for i, k in enumerate(self.keys) if k == key]] = np.inf  # leave one out
            out.append(self.htmls[int(np.argmin(d))] if np.isfinite(d).any() else BLANK_HTML)
        return out


class OracleBaseline:
    """The reference HTML itself: the ceiling, which is below 1 wherever our renderer draws the
    reference differently from the given screenshot (fonts, missing images)."""

    def __init__(self, pairs: Sequence[Pair]):
        self.by_pixels: dict[str, str] = {}
        self._pairs = pairs

    def predict(self, images: Sequence) -> list[str]:
        from .images import load_image

        from .images import ImageError

        if not self.by_pixels:
            for pair in self._pairs:
                if pair.html is None:
                    continue
                try:
                    self.by_pixels[_pixels_key(_load_image(pair))] = pair.html
                except ImageError:  # an unreadable screenshot cannot be an input either
                    continue
        return [self.by_pixels.get(_pixels_key(load_image(src)), BLANK_HTML) for src in images]


# --------------------------------------------------------------------------------------------------
# Scoring HTML against HTML (also the entry point for validation during training)
# --------------------------------------------------------------------------------------------------


def score_html(renderer, pred_htmls: Sequence[str], ref_htmls: Sequence[str | None],
               ref_images: Sequence[Image.Image | None] | None = None, *, clip: M.ClipScorer | None = None,
               ref_renders: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Render predictions (and references unless given) with `renderer` and score each page. A page whose
    prediction fails to render is scored as the blank page the renderer returns, with `render_error` set."""
    if ref_renders is None:
        todo = [h for h in ref_htmls if h is not None]
        done = iter(renderer.render_many(todo)) if todo else iter(())
        ref_renders = [next(done) if h is not None else None for h in ref_htmls]
    preds = renderer.render_many(list(pred_htmls))
    out = []
    for k, (pred, ref, pred_html, ref_html) in enumerate(zip(preds, ref_renders, pred_htmls, ref_htmls)):
        img = ref_images[k] if ref_images is not None and ref_images[k] is not None else None
        if ref is None and img is None:
            raise ValueError(f"page {k}: neither reference HTML nor reference screenshot")
        s = M.page_scores(pred, ref, ref_image=img, pred_html=pred_html, ref_html=ref_html, clip=clip)
        s["overall"] = M.overall(s)
        s["render_error"] = pred.error
        if ref is not None and ref.error:
            s["ref_render_error"] = ref.error
        out.append(s)
    return out


def score_files(pred: str | Path, ref: str | Path, *, clip: str | None = None, timeout_s: float = 10.0,
                width: int = 1280) -> dict[str, Any]:
    """`i2h score`: one predicted HTML file against a reference HTML file or screenshot."""
    from .images import load_image
    from .render import Renderer

    pred, ref = Path(pred), Path(ref)
    for p in (pred, ref):
        if not p.is_file():
            raise DataError(f"{p}: no such file; give an HTML file (and a reference .html or screenshot)")
    pred_html = pred.read_text(encoding="utf-8", errors="replace")
    ref_html, ref_image = None, None
    if ref.suffix.lower() in (".html", ".htm"):
        ref_html = ref.read_text(encoding="utf-8", errors="replace")
    else:
        ref_image = load_image(ref)  # raises ImageError naming the file
    scorer = M.ClipScorer(clip) if clip else None
    with Renderer(width=width, timeout_s=timeout_s, pool_size=1) as renderer:
        scores = score_html(renderer, [pred_html], [ref_html], [ref_image], clip=scorer)[0]
    return {"pred": str(pred), "ref": str(ref), **scores}


# --------------------------------------------------------------------------------------------------
# The evaluation run
# --------------------------------------------------------------------------------------------------


def _predict(system, images: list[Image.Image], ids: list[str]) -> tuple[list[str], list[str | None], list[dict]]:
    """Predictions for one chunk; a failing batch is retried page by page so one bad page costs only itself."""
    def once(imgs):
        if hasattr(system, "predict_full"):
            preds = system.predict_full(imgs)
            return [p.html for p in preds], [{"loop_cut": float(p.loop_cut), "truncated": float(p.truncated),
                                              "predict_seconds": p.seconds} for p in preds]
        return list(system.predict(imgs)), [{} for _ in imgs]

    try:
        htmls, meta = once(images)
        if len(htmls) != len(images):
            raise RuntimeError(f"predictor returned {len(htmls)} pages for {len(images)} screenshots")
        return htmls, [None] * len(images), meta
    except Exception:  # noqa: BLE001 - retried one by one below, where the error is recorded per page
        pass
    htmls, errors, meta = [], [], []
    for img, pid in zip(images, ids):
        try:
            h, m = once([img])
            htmls.append(h[0]), errors.append(None), meta.append(m[0])
        except Exception as e:  # noqa: BLE001 - one bad page is listed and scored blank, never stops the run
            htmls.append(BLANK_HTML), errors.append(f"{type(e).__name__}: {e}"), meta.append({})
    return htmls, errors, meta


class _GroundedViews:
    """One generation, two systems: the model's own HTML and the same HTML after text grounding.

    Both views are asked for the same screenshot list in turn (the evaluation loop does that); the model
    runs once per list and the grounded view reuses its predictions."""

    def __init__(self, predictor, grounder):
        self.predictor, self.grounder = predictor, grounder
        self._key, self._preds = None, None

    def _run(self, images):
        key = tuple(id(img) for img in images)
        if key != self._key:
            self._key, self._preds = key, self.predictor.predict_full(images, ground=self.grounder)
        return self._preds

    def view(self, grounded: bool):
        views = self

        class View:
            def predict_full(self, images):
                out = []
                for p in views._run(images):
                    g = p.grounding
                    html = p.html if grounded or g is None else (g.source_html or p.html)
                    seconds = p.seconds if grounded or g is None else p.seconds - (g.seconds or 0.0)
                    out.append(dataclasses.replace(p, html=html, seconds=seconds))
                return out

        return View()


class _GroundedBaseline:
    """A baseline's pages with the same text grounding as the model: what OCR alone adds, to compare."""

    def __init__(self, base, grounder):
        self.base, self.grounder = base, grounder

    def predict(self, images):
        return [self.grounder(html, img).html for html, img in zip(self.base.predict(images), images)]


def _save(img: Image.Image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    img.save(tmp, format="JPEG", quality=80)
    os.replace(tmp, path)


def _thumbnail(img: Image.Image) -> Image.Image:
    img = img.convert("RGB")
    h = max(1, round(img.height * THUMB_WIDTH / img.width))
    img = img.resize((THUMB_WIDTH, h), Image.BILINEAR)
    return img.crop((0, 0, THUMB_WIDTH, min(h, THUMB_MAX_HEIGHT)))


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]
    return f"{keep}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def evaluate(predictor=None, data: str | Path = "", out_dir: str | Path = "eval", *, n: int | None = None,
             train: str | Path | None = None, baselines: Sequence[str] = DEFAULT_BASELINES,
             model_name: str = "model", clip: M.ClipScorer | None = None, pictures: Sequence[str] | None = None,
             timeout_s: float = 10.0, pool_size: int = 2, progress: bool = True,
             renderer=None, grounder=None) -> dict[str, Any]:
    """Run `predictor` (anything with predict(images) -> list[str]; may be None) and the baselines over the
    pairs in `data`, render, score, and write OUT/metrics.json and OUT/report.html. Returns the metrics.

    With a `grounder` (i2h.ground), the model is reported twice from one generation: `model` (its own
    text) and `model+ground` (OCR text put into its HTML), so its reading and the grounding stay apart."""
    from tqdm import tqdm

    from .images import ImageError
    from .render import Renderer

    t_start = time.perf_counter()
    pairs = load_pairs(data, n)
    notes: list[str] = []
    systems: dict[str, Any] = {}
    if predictor is not None and grounder is not None:
        views = _GroundedViews(predictor, grounder)
        systems[model_name] = views.view(grounded=False)
        systems[f"{model_name}+ground"] = views.view(grounded=True)
    elif predictor is not None:
        systems[model_name] = predictor
    for name in baselines:
        if name == "blank":
            systems["blank"] = BlankBaseline()
        elif name == "nearest":
            if train is None:
                notes.append("nearest baseline not run: give --train (a folder of pairs or shards) to run it")
                continue
            systems["nearest"] = NearestBaseline.from_path(train)
        elif name == "oracle":
            if all(p.html is None for p in pairs):
                notes.append("oracle baseline not run: the data has no reference HTML")
                continue
            systems["oracle"] = OracleBaseline(pairs)
        else:
            raise ValueError(f"baseline {name!r}: unknown; choose from blank, nearest, oracle")
    if not systems:
        raise ValueError("nothing to evaluate: give a model or at least one baseline")
    if grounder is not None:  # the baselines with grounding too: so the model's share is visible
        for name in ("blank", "nearest"):
            if name in systems:
                systems[f"{name}+ground"] = _GroundedBaseline(systems[name], grounder)
    if pictures is None:
        pictures = ([f"{model_name}+ground"] if grounder is not None else [model_name]) if predictor is not None else [s for s in ("nearest", "blank") if s in systems][:1]
    pictures = [s for s in pictures if s in systems]

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    per_page: dict[str, list[dict]] = {s: [] for s in systems}
    skipped: list[dict] = []
    renders = 0
    own_renderer = renderer is None
    if own_renderer:
        renderer = Renderer(timeout_s=timeout_s, pool_size=pool_size)
    bar = tqdm(total=len(pairs), desc="eval", unit="page", disable=not progress, file=sys.stderr)
    t_score = 0.0
    try:
        for start in range(0, len(pairs), CHUNK):
            chunk = pairs[start:start + CHUNK]
            images, ok = [], []
            for pair in chunk:
                try:
                    images.append(_load_image(pair))
                    ok.append(pair)
                except ImageError as e:  # no screenshot: nothing to predict from or compare with
                    skipped.append({"id": pair.id, "error": str(e)})
            if not ok:
                bar.update(len(chunk))
                continue
            ids = [p.id for p in ok]
            ref_htmls = [p.html for p in ok]
            todo = [h for h in ref_htmls if h is not None]
            done = iter(renderer.render_many(todo)) if todo else iter(())
            renders += len(todo)
            ref_renders = [next(done) if h is not None else None for h in ref_htmls]
            cache = {h: r for h, r in zip(ref_htmls, ref_renders) if h is not None}
            for name, system in systems.items():
                htmls, errors, meta = _predict(system, images, ids)
                # The oracle (and a model that copies the reference) re-uses the reference render.
                fresh = list(dict.fromkeys(h for h in htmls if h not in cache))
                cache.update(zip(fresh, renderer.render_many(fresh)))
                renders += len(fresh)
                t0 = time.perf_counter()
                for k, pid in enumerate(ids):
                    pred = cache[htmls[k]]
                    s = M.page_scores(pred, ref_renders[k], ref_image=images[k], pred_html=htmls[k],
                                      ref_html=ref_htmls[k], clip=clip)
                    s["overall"] = M.overall(s)
                    rec = {"id": pid, **s, **meta[k], "render_error": pred.error, "predict_error": errors[k]}
                    if ref_renders[k] is not None and ref_renders[k].error:
                        rec["ref_render_error"] = ref_renders[k].error
                    per_page[name].append(rec)
                    if name in pictures:
                        base = _safe_name(pid)
                        _save(_thumbnail(images[k]), out / "images" / f"{base}.input.jpg")
                        _save(_thumbnail(pred.image), out / "images" / f"{base}.{name}.jpg")
                        _save(_thumbnail(M.difference_map(pred.image, images[k])), out / "images" / f"{base}.{name}.diff.jpg")
                        rec["pictures"] = {"input": f"images/{base}.input.jpg", "pred": f"images/{base}.{name}.jpg",
                                           "diff": f"images/{base}.{name}.diff.jpg"}
                t_score += time.perf_counter() - t0
                cache = {h: r for h, r in cache.items() if h in ref_htmls}  # keep memory bounded
            bar.update(len(chunk))
    finally:
        bar.close()
        if own_renderer:
            renderer.close()

    n_scored = len(pairs) - len(skipped)
    result = {
        "data": str(data),
        "n_pages": n_scored,
        "skipped_pages": skipped,
        "systems": {
            name: {
                "mean": M.mean_scores([{k: v for k, v in p.items() if k in SUMMARY_KEYS or k in
                                        ("loop_cut", "truncated", "predict_seconds")} for p in pages]),
                "render_failures": [{"id": p["id"], "error": p["render_error"]} for p in pages if p["render_error"]],
                "predict_failures": [{"id": p["id"], "error": p["predict_error"]} for p in pages if p["predict_error"]],
                "pages": pages,
            }
            for name, pages in per_page.items()
        },
        "pictures_for": list(pictures),
        "renders": renders,
        "renders_per_scored_page": 1,  # one render per distinct HTML: text boxes come from the DOM
        "seconds": time.perf_counter() - t_start,
        "scoring_seconds": t_score,
        "scoring_pages_per_s": (n_scored * len(systems) / t_score) if t_score > 0 else None,
        "notes": notes,
    }
    write_outputs(result, out)
    return result


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt(v: Any, key: str = "") -> str:
    if v is None:
        return "–"
    if key == "length_ratio":
        return f"{v:.2f}"
    if isinstance(v, (int, float)):
        return f"{100 * v:.1f}"  # scores are 0-1; shown 0-100 as Design2Code reports them
    return htmlmod.escape(str(v))


def write_outputs(result: Mapping[str, Any], out: Path) -> None:
    """metrics.json and report.html, each written under a temporary name then renamed."""
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "metrics.json", json.dumps(result, indent=1, default=float))
    _write_text(out / "report.html", render_report(result))


_CSS = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
.page{border-top:2px solid #ddd;margin-top:18px;padding-top:8px}
.shots{display:flex;gap:10px;align-items:flex-start}.shots figure{margin:0}
.shots img{width:360px;border:1px solid #bbb}figcaption{font-size:12px;color:#555}
.err{color:#b00}.note{color:#555}
"""


def render_report(result: Mapping[str, Any]) -> str:
    """A static HTML page: summary table, failures, then each page worst first with its pictures."""
    esc = htmlmod.escape
    systems = result["systems"]
    cols = [k for k in SUMMARY_KEYS if any(s["mean"].get(k) is not None for s in systems.values())]
    h = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>i2h eval: {esc(result['data'])}</title>",
         f"<style>{_CSS}</style></head><body>",
         f"<h1>i2h evaluation</h1><p>Data: <code>{esc(result['data'])}</code>, {result['n_pages']} pages, "
         f"{result['renders']} renders in {result['seconds']:.0f} s. Scores are 0-100 (length ratio as a ratio). "
         "Block-Match, Text, Position and Color follow Design2Code on DOM text boxes; Visual is multi-scale SSIM "
         "against the input screenshot; Overall is their mean (CLIP replaces Visual when present).</p>"]
    h.append("<h2>Summary</h2><table><tr><th>system</th>" + "".join(f"<th>{esc(c)}</th>" for c in cols)
             + "<th>render failures</th></tr>")
    for name, s in systems.items():
        h.append(f"<tr><td>{esc(name)}</td>" + "".join(f"<td>{_fmt(s['mean'].get(c), c)}</td>" for c in cols)
                 + f"<td>{len(s['render_failures'])}</td></tr>")
    h.append("</table>")
    for note in result.get("notes", []):
        h.append(f"<p class='note'>{esc(note)}</p>")
    failures = [(name, f) for name, s in systems.items() for f in s["render_failures"] + s["predict_failures"]]
    if failures or result.get("skipped_pages"):
        h.append("<h2>Failures</h2><ul>")
        for name, f in failures:
            h.append(f"<li class='err'>{esc(name)} / {esc(f['id'])}: {esc(str(f['error']))} (scored as a blank page)</li>")
        for f in result.get("skipped_pages", []):
            h.append(f"<li class='err'>{esc(f['id'])}: {esc(f['error'])} (not scored)</li>")
        h.append("</ul>")
    page_cols = [c for c in ("overall", "block_match", "text", "position", "color", "visual", "clip", "bleu")
                 if c in cols]
    for main in result.get("pictures_for", []):
        pages = sorted(systems[main]["pages"], key=lambda p: p.get("overall", 0.0))
        h.append(f"<h2>Pages, worst first by {esc(main)}'s overall score</h2>")
        by_id = {name: {p["id"]: p for p in s["pages"]} for name, s in systems.items()}
        for p in pages:
            pics = p.get("pictures", {})
            h.append(f"<div class='page'><h3>{esc(p['id'])}</h3><table><tr><th>system</th>"
                     + "".join(f"<th>{esc(c)}</th>" for c in page_cols) + "</tr>")
            for name in systems:
                q = by_id[name].get(p["id"], {})
                h.append(f"<tr><td>{esc(name)}</td>" + "".join(f"<td>{_fmt(q.get(c), c)}</td>" for c in page_cols) + "</tr>")
            h.append("</table>")
            if p.get("render_error"):
                h.append(f"<p class='err'>render failed: {esc(p['render_error'])}; scored as a blank page</p>")
            if pics:
                h.append("<div class='shots'>"
                         f"<figure><img loading='lazy' src='{esc(pics['input'])}' alt='input'><figcaption>input screenshot</figcaption></figure>"
                         f"<figure><img loading='lazy' src='{esc(pics['pred'])}' alt='prediction'><figcaption>{esc(main)}: rendered prediction</figcaption></figure>"
                         f"<figure><img loading='lazy' src='{esc(pics['diff'])}' alt='difference'><figcaption>difference (dark = differs)</figcaption></figure>"
                         "</div>")
            h.append("</div>")
    h.append("</body></html>")
    return "\n".join(h)
