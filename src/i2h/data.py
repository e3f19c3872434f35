"""Training data: WebSight from the Hub or local shards, streamed, preprocessed in workers, padded into batches."""
from __future__ import annotations

import glob as globlib
import io
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import torch
from PIL import Image

WEBSIGHT = "HuggingFaceM4/WebSight"
IGNORE_INDEX = -100  # label value the loss ignores (padding)
STAT_KEYS = ("too_long", "corrupt")


class DataError(ValueError):
    """A data source that cannot be opened; the message names it and says what to do."""


def _local_files(source: str) -> list[str] | None:
    """Parquet files a local source names (folder, file or glob), or None when it is not local."""
    p = Path(source)
    if p.is_dir():
        files = sorted(str(f) for f in p.glob("*.parquet") if not f.name.startswith("."))
        if not files:
            raise DataError(f"{source}: no .parquet shards in this folder; make some with `i2h data synth --out {source}`")
        return files
    if p.is_file():
        return [str(p)]
    if any(ch in source for ch in "*?["):
        files = sorted(globlib.glob(source))
        if not files:
            raise DataError(f"{source}: the pattern matches no files; check the path")
        return files
    return None


def open_stream(source: str, *, config: str | None = None, split: str = "train"):
    """One streaming `datasets.IterableDataset` with `image` (undecoded) and `text`, from the Hub or local Parquet.

    `source` is a Hub dataset id (e.g. HuggingFaceM4/WebSight with config "v0.1" or "v0.2") or a folder,
    file or glob of local shards. Images stay undecoded here so a corrupt one can be skipped per record."""
    from datasets import Image as ImageFeature, load_dataset

    files = _local_files(str(source))
    if files is not None:
        ds = load_dataset("parquet", data_files={split: files}, split=split, streaming=True)
    else:
        if Path(source).suffix or str(source).startswith((".", "/")):
            raise DataError(f"{source}: no such file or folder; give a shard folder, a Parquet glob or a Hub dataset id")
        if source == WEBSIGHT and config not in ("v0.1", "v0.2"):
            raise DataError(f"{source}: choose config v0.1 (plain CSS) or v0.2 (Tailwind)")
        ds = load_dataset(source, name=config, split=split, streaming=True)
    missing = {"image", "text"} - set(ds.column_names or ["image", "text"])
    if missing:
        raise DataError(f"{source}: lacks column(s) {sorted(missing)}; WebSight-format data has `image` and `text`")
    ds = ds.select_columns(["image", "text"])
    return ds.cast_column("image", ImageFeature(decode=False))


def _decode_image(value) -> Image.Image:
    """A record's image ({'bytes', 'path'} or PIL) as RGB, through the same checks and mode
    conversions as inference (alpha on white, 16-bit scaled); raises on anything unreadable."""
    from .images import load_image

    if isinstance(value, Image.Image):
        return load_image(value)
    if isinstance(value, dict) and value.get("bytes"):
        return load_image(value["bytes"])
    if isinstance(value, dict) and value.get("path"):
        return load_image(value["path"])
    raise ValueError("record has no image")


def text_digest(text) -> str:
    import hashlib

    return hashlib.blake2b(str(text).encode("utf-8", "replace"), digest_size=12).hexdigest()


class WebSightStream(torch.utils.data.IterableDataset):
    """Examples {pixel_values (3, H, W), input_ids (L,)} streamed from one source, ready for `collate`.

    Shuffled through a buffer, split across distributed ranks and DataLoader workers, preprocessed in the
    worker. Over-long examples are dropped (not truncated: a cut target never teaches EOS) and corrupt
    records skipped; both are counted and reported with the next example under "stats"."""

    def __init__(
        self,
        source: str,
        tokenizer,
        processor: Callable[[Image.Image], torch.Tensor],
        *,
        config: str | None = None,
        split: str = "train",
        max_length: int = 1024,
        shuffle_buffer: int = 1000,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        normalize: bool | Callable[[str], str] = True,
        read_batch: int = 16,
        exclude: frozenset[str] = frozenset(),
        batch_size: int = 1,
        resume_batches: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        # Records whose text digest is here are skipped (the validation hold-out of the same source).
        self.exclude = exclude
        # Exact resume: the DataLoader had already handed out `resume_batches` batches of `batch_size`
        # this epoch; each reader skips what it produced of them (see __iter__).
        self.batch_size, self.resume_batches, self.shuffle = batch_size, resume_batches, shuffle
        self.source, self.config, self.split = source, config, split
        self.tokenizer, self.processor = tokenizer, processor
        self.max_length, self.shuffle_buffer, self.seed = max_length, shuffle_buffer, seed
        self.rank, self.world_size, self.read_batch = rank, world_size, read_batch
        self.epoch = 0
        if normalize is True:
            from .tokenizer import normalize_html

            normalize = normalize_html
        self.normalize = normalize or None
        self.eos_id = getattr(tokenizer, "eos_token_id", None)
        open_stream(source, config=config, split=split)  # fail now, in the main process, on a bad source

    def set_epoch(self, epoch: int) -> None:
        """A new shuffle order per epoch (call before iterating again)."""
        self.epoch = epoch

    def _dataset_for_this_worker(self):
        from datasets.distributed import split_dataset_by_node

        ds = open_stream(self.source, config=self.config, split=self.split).reshard()
        if self.shuffle and self.shuffle_buffer > 1:
            # Same seed on every rank and worker: they all see one shuffled order and take disjoint parts of it.
            ds = ds.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer)
            ds.set_epoch(self.epoch)
        workers, role = self._role()
        # Ranks x workers as one flat set of readers: whole shards each when they divide evenly, else every
        # n-th example (split_dataset_by_node picks).
        return split_dataset_by_node(ds, rank=self.rank * workers + role, world_size=self.world_size * workers)

    def open_records(self) -> Iterator[dict]:
        """The source's raw records ({image, text}) in stream order, unshuffled, in this process."""
        for batch in open_stream(self.source, config=self.config, split=self.split).iter(batch_size=self.read_batch):
            for image, text in zip(batch["image"], batch["text"]):
                yield {"image": image, "text": text}

    def _role(self) -> tuple[int, int]:
        """(number of workers, which reader this worker plays). The DataLoader asks workers in turn,
        worker 0 first; after a resume at batch G the next batch belongs to reader G % W, so roles rotate."""
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return workers, (worker + self.resume_batches) % workers

    def _to_skip(self) -> int:
        """Examples this reader already produced before the resume point (batches g < G with g % W == role)."""
        workers, role = self._role()
        done = max(0, (self.resume_batches - role + workers - 1) // workers)
        return done * self.batch_size

    def __iter__(self) -> Iterator[dict]:
        ds = self._dataset_for_this_worker()
        pending: Counter = Counter()
        skip = self._to_skip()
        # `.iter(batch_size)` reads this worker's part as is; plain iteration would shard across workers again.
        for batch in ds.iter(batch_size=self.read_batch):
            for image, text in zip(batch["image"], batch["text"]):
                if self.exclude and text_digest(text) in self.exclude:
                    continue
                if skip:
                    # Fast-forward on the text alone (no image decoding); only a corrupt image inside the
                    # skipped stretch could make this count differ from the first pass.
                    skip -= self._target(text) is not None
                    continue
                example = self._prepare(image, text, pending)
                if example is not None:
                    example["stats"] = dict(pending)
                    pending.clear()
                    yield example
        if pending:  # drops after the last example still reach the counts
            yield {"stats": dict(pending)}

    def _ids(self, text) -> list[int]:
        """Token ids of a record's HTML, ending in EOS; raises on a record without usable text."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("record has no HTML text")
        if self.normalize:
            text = self.normalize(text)
        ids = list(self.tokenizer(text)["input_ids"])
        if self.eos_id is not None and (not ids or ids[-1] != self.eos_id):
            ids.append(self.eos_id)  # every target ends in EOS, whatever the tokenizer's template
        return ids

    def _target(self, text) -> list[int] | None:
        """Token ids of a record's HTML, or None when it has none or is too long."""
        try:
            ids = self._ids(text)
        except Exception:
            return None
        return ids if len(ids) <= self.max_length else None

    def _prepare(self, image, text, pending: Counter) -> dict | None:
        try:
            ids = self._ids(text)
            if len(ids) > self.max_length:
                pending["too_long"] += 1
                return None  # decided before the image is decoded: no work spent on a dropped record
            pixels = self.processor(_decode_image(image))
        except Exception:  # any unreadable record: skip and count, never end the stream
            pending["corrupt"] += 1
            return None
        return {"pixel_values": pixels, "input_ids": torch.tensor(ids, dtype=torch.long)}


def collate(examples: list[dict], pad_token_id: int) -> dict:
    """Stack images, right-pad ids; labels are the ids with padding set to -100; drop counts summed."""
    stats = Counter()
    for ex in examples:
        stats.update(ex.get("stats", {}))
    real = [ex for ex in examples if "input_ids" in ex]
    batch: dict = {"stats": {k: stats.get(k, 0) for k in STAT_KEYS}}
    if not real:
        batch["size"] = 0
        return batch
    longest = max(len(ex["input_ids"]) for ex in real)
    ids = torch.full((len(real), longest), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(real), longest), dtype=torch.long)
    for i, ex in enumerate(real):
        n = len(ex["input_ids"])
        ids[i, :n] = ex["input_ids"]
        mask[i, :n] = 1
    labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
    batch.update(pixel_values=torch.stack([ex["pixel_values"] for ex in real]), input_ids=ids,
                 attention_mask=mask, labels=labels, size=len(real))
    return batch


class _Collator:
    """Picklable collate with the pad id bound (DataLoader workers may be spawned processes)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict:
        return collate(examples, self.pad_token_id)


class TrainLoader:
    """Iterates padded batches from a WebSightStream; skips empty batches and keeps running drop counts."""

    def __init__(self, dataset: WebSightStream, *, batch_size: int = 8, num_workers: int = 2, pin_memory: bool = False,
                 prefetch_factor: int | None = 2) -> None:
        self.dataset = dataset
        pad = getattr(dataset.tokenizer, "pad_token_id", None)
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=_Collator(0 if pad is None else pad),
            pin_memory=pin_memory,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            persistent_workers=False,
        )
        self.stats: Counter = Counter()
        self.examples = 0
        self.epoch = dataset.epoch
        self.batches = dataset.resume_batches  # DataLoader batches handed out this epoch (empty ones too)

    def __iter__(self) -> Iterator[dict]:
        for batch in self.loader:
            self.batches += 1
            self.stats.update(batch["stats"])
            if batch["size"]:
                self.examples += batch["size"]
                yield batch

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)
        self.epoch = epoch

    def next_epoch(self) -> None:
        """The stream ran out: start the next pass, in a new shuffle order, from its beginning."""
        self.set_epoch(self.epoch + 1)
        self.dataset.resume_batches = self.batches = 0

    def position(self) -> dict:
        """Where the stream stands, for a checkpoint; make_loader(start_epoch=, start_batches=) resumes there."""
        return {"epoch": self.epoch, "batches": self.batches}


def make_loader(
    source: str,
    tokenizer,
    processor,
    *,
    config: str | None = None,
    batch_size: int = 8,
    num_workers: int = 2,
    max_length: int = 1024,
    shuffle_buffer: int = 1000,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    normalize: bool | Callable[[str], str] = True,
    exclude: frozenset[str] = frozenset(),
    start_epoch: int = 0,
    start_batches: int = 0,
) -> TrainLoader:
    """The training loader for a Hub dataset id (+config) or local shards: one code path for both.

    `start_epoch`/`start_batches` resume a stream exactly where `TrainLoader.position()` left it."""
    ds = WebSightStream(source, tokenizer, processor, config=config, max_length=max_length, shuffle_buffer=shuffle_buffer,
                        seed=seed, rank=rank, world_size=world_size, normalize=normalize, exclude=exclude,
                        batch_size=batch_size, resume_batches=start_batches)
    ds.set_epoch(start_epoch)
    return TrainLoader(ds, batch_size=batch_size, num_workers=num_workers)


def open_val_set(source: str, tokenizer, processor, *, config: str | None = None, n: int = 64, batch_size: int = 8,
                 max_length: int = 1024, normalize: bool | Callable[[str], str] = True) -> tuple[list[dict], frozenset[str]]:
    """A fixed, capped validation set: the first `n` usable records of `source` in stream order, as padded
    batches held in memory (preprocessed once), and the digests of their texts (to keep them out of training
    when train and validation share a source)."""
    ds = WebSightStream(source, tokenizer, processor, config=config, max_length=max_length, shuffle=False,
                        normalize=normalize)
    pad = getattr(tokenizer, "pad_token_id", None)
    examples, digests = [], set()
    for raw in ds.open_records():
        example = ds._prepare(raw["image"], raw["text"], Counter())
        if example is None:
            continue
        examples.append(example)
        digests.add(text_digest(raw["text"]))
        if len(examples) >= n:
            break
    if not examples:
        raise DataError(f"{source}: no usable validation records (all corrupt or longer than {max_length} tokens)")
    batches = [collate(examples[i : i + batch_size], 0 if pad is None else pad) for i in range(0, len(examples), batch_size)]
    return batches, frozenset(digests)
