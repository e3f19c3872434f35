"""WebSight-format Parquet shards: write (synth, import) atomically and resumably; read, show and summarise."""
from __future__ import annotations

import io
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

SHARD_SIZE = 256  # rows per shard file
ROW_GROUP_SIZE = 32  # rows per Parquet row group: the unit `datasets` can hand to different loader workers
SHARD_RE = re.compile(r"^(synth|import)-(\d{8})-(\d{8})\.parquet$")
MANIFEST = "i2h-shards.json"


def features():
    """WebSight's columns (`image` as the `datasets` Image feature, `text`) plus our metadata."""
    from datasets import Features, Image as ImageFeature, Value

    return Features(
        {
            "image": ImageFeature(),
            "text": Value("string"),
            "id": Value("string"),
            "seed": Value("int64"),
            "index": Value("int64"),
            "style": Value("string"),
            "width": Value("int32"),
            "height": Value("int32"),
        }
    )


class ShardError(ValueError):
    """A shard folder that cannot be used as asked (wrong settings for a resume, nothing to read, ...)."""


@dataclass
class Row:
    png: bytes
    text: str
    id: str
    seed: int | None
    index: int
    style: str
    width: int
    height: int


def write_shard(rows: list[Row], path: Path) -> Path:
    """Write rows to `path` via a temporary name, renamed only once the file is whole."""
    schema = features().arrow_schema  # carries the `huggingface` metadata that makes `image` an Image
    table = pa.Table.from_pydict(
        {
            "image": [{"bytes": r.png, "path": None} for r in rows],
            "text": [r.text for r in rows],
            "id": [r.id for r in rows],
            "seed": [r.seed for r in rows],
            "index": [r.index for r in rows],
            "style": [r.style for r in rows],
            "width": [r.width for r in rows],
            "height": [r.height for r in rows],
        },
        schema=schema,
    )
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE)
    os.replace(tmp, path)
    return path


def shard_files(directory: str | Path) -> list[Path]:
    d = Path(directory)
    if not d.is_dir():
        raise ShardError(f"{d}: not a folder of shards; give the --out folder of `i2h data synth` or `i2h data import`")
    files = sorted(p for p in d.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise ShardError(f"{d}: no .parquet shards in it; make some with `i2h data synth --out {d}`")
    return files


def _covered(directory: Path, prefix: str) -> list[tuple[int, int]]:
    spans = []
    for p in directory.glob(f"{prefix}-*.parquet"):
        m = SHARD_RE.match(p.name)
        if m and m.group(1) == prefix:
            spans.append((int(m.group(2)), int(m.group(3))))
    return sorted(spans)


def missing_ranges(n: int, covered: list[tuple[int, int]], shard_size: int = SHARD_SIZE) -> list[tuple[int, int]]:
    """[0, n) minus what existing shards hold, cut at multiples of shard_size: each piece is one new shard."""
    have = [False] * n
    for a, b in covered:
        for i in range(a, min(b, n)):
            have[i] = True
    out, i = [], 0
    while i < n:
        if have[i]:
            i += 1
            continue
        j = i
        limit = (i // shard_size + 1) * shard_size
        while j < n and j < limit and not have[j]:
            j += 1
        out.append((i, j))
        i = j
    return out


def _check_manifest(directory: Path, settings: dict) -> None:
    """A folder holds one stream: resuming with other settings would mix two streams under one index."""
    path = directory / MANIFEST
    if path.exists():
        old = json.loads(path.read_text())
        if old != settings:
            diff = ", ".join(f"{k}={old.get(k)!r} (now {settings.get(k)!r})" for k in settings if old.get(k) != settings.get(k))
            raise ShardError(f"{directory}: already holds shards made with {diff}; use the same settings to extend it or another --out")
        return
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(settings, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _clean_temporaries(directory: Path) -> None:
    for p in directory.glob(".*.parquet.tmp"):  # left by a run that was killed mid-write
        p.unlink()


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="page", disable=not sys.stderr.isatty() and total < 1, file=sys.stderr)


def synth_shards(
    out: str | Path,
    n: int,
    *,
    seed: int = 0,
    style: str = "tailwind",
    workers: int = 2,
    width: int = 1280,
    shard_size: int = SHARD_SIZE,
    timeout_s: float = 10.0,
    progress: bool = True,
    scale: float = 1.0,
) -> dict:
    """Pages 0..n-1 of stream `seed` rendered into shards in `out`; existing pages are kept, not redone.

    `workers` is the number of pages rendered at once (the renderer's pool). Returns a summary."""
    from .render import Renderer
    from .synth import generate_page, resolve_style

    if n < 0 or workers < 1:
        raise ShardError(f"--n {n} --workers {workers}: both must be positive")
    resolve_style(style, seed, 0)  # a bad style fails here, before a browser starts
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    _check_manifest(directory, {"kind": "synth", "seed": seed, "style": style, "width": width, "scale": scale})
    _clean_temporaries(directory)
    todo = missing_ranges(n, _covered(directory, "synth"), shard_size)
    total = sum(b - a for a, b in todo)
    written, failed, start = 0, [], time.perf_counter()
    if total:
        bar = _progress(total, "synth") if progress else None
        with Renderer(width=width, full_page=True, timeout_s=timeout_s, pool_size=workers, scale=scale) as renderer:
            for a, b in todo:
                rows = []
                step = 4 * workers  # small batches keep the progress bar moving
                for lo in range(a, b, step):
                    pages = [generate_page(seed, i, style) for i in range(lo, min(b, lo + step))]
                    for page, res in zip(pages, renderer.render_many([p.html for p in pages])):
                        if res.error:  # reported, not stored: a blank image would teach the model nonsense
                            failed.append((page.index, res.error))
                            continue
                        rows.append(Row(res.png, page.html, f"synth-{seed}-{page.index}", seed, page.index, page.style, res.image.width, res.image.height))
                    if bar:
                        bar.update(len(pages))
                write_shard(rows, directory / f"synth-{a:08d}-{b:08d}.parquet")
                written += len(rows)
        if bar:
            bar.close()
    for index, why in failed:
        print(f"page {index} (seed {seed}): {why}; skipped", file=sys.stderr)
    return {"out": str(directory), "written": written, "failed": len(failed), "skipped_existing": n - total,
            "seconds": round(time.perf_counter() - start, 2)}


def import_pairs(src: str | Path, out: str | Path, *, shard_size: int = SHARD_SIZE, progress: bool = True) -> dict:
    """A folder of `<id>.html` + `<id>.png` pairs -> shards; a bad pair is reported and skipped."""
    from .images import ImageError, load_image

    source = Path(src)
    if not source.is_dir():
        raise ShardError(f"{source}: not a folder; give a folder of <id>.html + <id>.png pairs")
    ids = sorted(p.stem for p in source.glob("*.html"))
    if not ids:
        raise ShardError(f"{source}: no .html files in it; give a folder of <id>.html + <id>.png pairs")
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    _check_manifest(directory, {"kind": "import", "source": str(source.resolve()), "count": len(ids)})
    _clean_temporaries(directory)
    todo = missing_ranges(len(ids), _covered(directory, "import"), shard_size)
    bad: list[str] = []
    written = 0
    bar = _progress(sum(b - a for a, b in todo), "import") if progress else None
    for a, b in todo:
        rows = []
        for i in range(a, b):
            key = ids[i]
            html_path, png_path = source / f"{key}.html", source / f"{key}.png"
            try:
                if not png_path.exists():
                    raise ImageError(f"{png_path}: missing; every <id>.html needs its <id>.png screenshot")
                text = html_path.read_text(encoding="utf-8")
                data = png_path.read_bytes()
                image = load_image(data, name=str(png_path))
                if Image.open(io.BytesIO(data)).format != "PNG":  # WebSight stores PNG; convert others once here
                    buf = io.BytesIO()
                    image.save(buf, format="PNG")
                    data = buf.getvalue()
                style = "tailwind" if "tailwind" in text[:4000].lower() else "css"
                rows.append(Row(data, text, key, None, i, style, image.width, image.height))
            except (OSError, UnicodeDecodeError, ValueError) as e:
                bad.append(f"{key}: {e}")
            if bar:
                bar.update(1)
        write_shard(rows, directory / f"import-{a:08d}-{b:08d}.parquet")
        written += len(rows)
    if bar:
        bar.close()
    for line in bad:
        print(f"{source}/{line}; skipped", file=sys.stderr)
    return {"out": str(directory), "written": written, "failed": len(bad), "skipped_existing": len(ids) - sum(b - a for a, b in todo)}


def iter_rows(directory: str | Path, columns: list[str] | None = None) -> Iterator[dict]:
    """Rows of every shard in a folder, in file order (image as {'bytes', 'path'})."""
    for path in shard_files(directory):
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=ROW_GROUP_SIZE, columns=columns):
            yield from batch.to_pylist()


def contact_sheet(directory: str | Path, out: str | Path, *, n: int = 16, cols: int = 4, thumb_width: int = 320) -> Path:
    """The first n screenshots, top part of each, in a grid with their ids: a quick look at a folder."""
    from PIL import ImageDraw

    thumbs = []
    for row in iter_rows(directory, ["image", "id"]):
        if len(thumbs) >= n:
            break
        try:
            img = Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB")
        except Exception:  # a corrupt row shows as a grey tile, not a crash
            img = Image.new("RGB", (1280, 960), (128, 128, 128))
        img = img.crop((0, 0, img.width, min(img.height, img.width * 3 // 4)))
        img = img.resize((thumb_width, max(1, img.height * thumb_width // img.width)))
        thumbs.append((row["id"], img))
    cell_h = thumb_width * 3 // 4 + 18
    rows = (len(thumbs) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (thumb_width + 8) + 8, rows * (cell_h + 8) + 8), (240, 240, 240))
    draw = ImageDraw.Draw(sheet)
    for k, (key, img) in enumerate(thumbs):
        x, y = 8 + (k % cols) * (thumb_width + 8), 8 + (k // cols) * (cell_h + 8)
        sheet.paste(img, (x, y + 18))
        draw.text((x, y + 2), str(key)[:48], fill=(0, 0, 0))
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    sheet.save(tmp, format="PNG")
    os.replace(tmp, target)
    return target


def count_tags(html: str) -> int:
    from html.parser import HTMLParser

    class Counter(HTMLParser):
        n = 0

        def handle_starttag(self, tag, attrs):
            self.n += 1

    c = Counter()
    c.feed(html)
    c.close()
    return c.n


def _summary(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    return {"mean": round(statistics.fmean(v), 1), "median": v[len(v) // 2], "p90": v[int(0.9 * (len(v) - 1))], "max": v[-1]}


def shard_stats(directory: str | Path, tokenizer=None) -> dict:
    """Per-page figures for a folder of shards: tokens (when a tokenizer is given), tags, image sizes."""
    tokens, tags, widths, heights, styles = [], [], [], [], {}
    for row in iter_rows(directory, ["text", "width", "height", "style"]):
        text = row["text"] or ""
        tags.append(count_tags(text))
        if tokenizer is not None:
            tokens.append(len(tokenizer(text)["input_ids"]))
        widths.append(row["width"])
        heights.append(row["height"])
        styles[row["style"]] = styles.get(row["style"], 0) + 1
    return {"rows": len(tags), "styles": styles, "tokens": _summary(tokens), "tags": _summary(tags),
            "width": _summary(widths), "height": _summary(heights)}
