"""Shards and the streaming training loader: WebSight columns, workers, padding, dropped and corrupt records."""
from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from i2h.data import IGNORE_INDEX, collate, make_loader
from i2h.shards import Row, import_pairs, missing_ranges, shard_stats, write_shard
from i2h.synth import generate_page


class CharTokenizer:
    """Stand-in tokenizer: one id per character, EOS appended (as the real one does)."""

    pad_token_id, eos_token_id = 0, 1

    def __call__(self, text):
        return {"input_ids": [2 + (ord(c) % 200) for c in text] + [1]}


def processor(img):
    return torch.from_numpy(__import__("numpy").asarray(img.resize((32, 24)), dtype="float32")).permute(2, 0, 1) / 255


def _png(color, size=(64, 48)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    """Two shards of small real synth HTML with flat images (no browser), one planted corrupt row."""
    d = tmp_path_factory.mktemp("shards")
    rows = [Row(_png((i, 0, 0)), generate_page(0, i, "tailwind").html[:300] if i % 5 else "<p>short</p>", f"r{i}", 0, i, "tailwind", 64, 48)
            for i in range(40)]
    rows[13] = Row(b"not a png at all", "<p>short</p>", "r13", 0, 13, "tailwind", 64, 48)
    write_shard(rows[:20], d / "synth-00000000-00000020.parquet")
    write_shard(rows[20:], d / "synth-00000020-00000040.parquet")
    return d


def test_datasets_streams_websight_columns(shard_dir):
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=str(shard_dir / "*.parquet"), split="train", streaming=True)
    first = next(iter(ds))
    assert isinstance(first["image"], Image.Image) and isinstance(first["text"], str)
    assert {"image", "text", "seed", "index", "style", "width", "height"} <= set(first)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_padding_and_counts(shard_dir, workers):
    loader = make_loader(str(shard_dir), CharTokenizer(), processor, batch_size=4, num_workers=workers,
                         max_length=200, shuffle_buffer=8, normalize=False)
    batches = list(loader)
    n = sum(b["size"] for b in batches)
    # 40 rows: row 13 corrupt (its text is short: length is checked before an image is decoded);
    # the other 300-character pages are over 200 tokens; the 8 short ones (0, 5, ..., 35) fit
    assert loader.stats["corrupt"] == 1
    assert loader.stats["too_long"] == 31
    assert n == 8
    b = batches[0]
    assert b["pixel_values"].shape[1:] == (3, 24, 32)
    assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape
    assert ((b["labels"] == IGNORE_INDEX) == (b["attention_mask"] == 0)).all()


def test_loader_sees_every_record_once_across_workers(shard_dir):
    loader = make_loader(str(shard_dir), CharTokenizer(), processor, batch_size=5, num_workers=2, max_length=10_000,
                         shuffle_buffer=16, normalize=False)
    # Each row's image is flat red = its index: read it back from the pixels to identify the record.
    seen = [round(float(px) * 255) for b in loader for px in b["pixel_values"][:, 0, 0, 0]]
    assert sorted(seen) == [i for i in range(40) if i != 13]
    assert loader.stats["corrupt"] == 1


def test_collate_pads_and_masks():
    ex = [{"pixel_values": torch.zeros(3, 2, 2), "input_ids": torch.tensor([5, 6, 1]), "stats": {"too_long": 2}},
          {"pixel_values": torch.zeros(3, 2, 2), "input_ids": torch.tensor([7, 1])}, {"stats": {"corrupt": 1}}]
    b = collate(ex, pad_token_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 1], [7, 1, 0]]
    assert b["labels"].tolist() == [[5, 6, 1], [7, 1, IGNORE_INDEX]]
    assert b["stats"] == {"too_long": 2, "corrupt": 1} and b["size"] == 2


def test_missing_ranges_resume():
    assert missing_ranges(10, [], 4) == [(0, 4), (4, 8), (8, 10)]
    assert missing_ranges(10, [(0, 6)], 4) == [(6, 8), (8, 10)]
    assert missing_ranges(6, [(0, 6)], 4) == []


def test_import_pairs_skips_bad_pair(tmp_path, capsys):
    src = tmp_path / "pairs"
    src.mkdir()
    for key, png in [("a", _png((1, 2, 3))), ("b", _png((4, 5, 6))), ("c", b"broken")]:
        (src / f"{key}.html").write_text(f"<html><body><p>{key}</p></body></html>")
        (src / f"{key}.png").write_bytes(png)
    (src / "d.html").write_text("<p>no screenshot</p>")
    summary = import_pairs(src, tmp_path / "out", progress=False)
    assert summary["written"] == 2 and summary["failed"] == 2
    assert "c.png" in capsys.readouterr().err
    assert import_pairs(src, tmp_path / "out", progress=False)["written"] == 0  # resumed: nothing redone
    assert shard_stats(tmp_path / "out")["rows"] == 2


def test_import_iwbench(shared_data, tmp_path):
    src = shared_data / "iwbench"
    if not src.is_dir():
        pytest.skip("shared iwbench data absent")
    summary = import_pairs(src, tmp_path / "iw", progress=False)
    assert summary["written"] > 40
