"""train(config) -> checkpoint dir: one readable loop over Accelerate (DDP/FSDP, mixed precision, accumulation)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TrainConfig:
    """A training run. YAML recipes in configs/ set these fields; `--set key=value` overrides them."""

    model: str = "tiny"  # a preset name or a model directory (continue from its weights)
    pretrained: bool = False  # preset only: start from the pretrained weights it names (needs the Hub)
    model_overrides: dict = field(default_factory=dict)  # preset only: dotted config overrides
    tokenizer: str = ""  # preset only: tokenizer dir (default: the preset's)
    train_data: str = ""  # local shards (folder, file or glob) or a Hub id such as HuggingFaceM4/WebSight
    train_config: str = ""  # Hub config, e.g. v0.2
    val_data: str = ""  # as train_data; empty or equal to train_data: hold out the first val_size records
    val_config: str = ""
    val_size: int = 64
    out: str = "runs/default"
    seed: int = 0
    batch_size: int = 8  # per process
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_steps: int = 1000
    time_limit_s: float = 0.0  # stop early (checkpointing first) after this much wall time; 0 = none
    clip_grad: float = 1.0
    label_smoothing: float = 0.0
    perturb_prob: float = 0.0  # chance per decoder input token of being replaced by a random token
    freeze_vision_steps: int = 0  # the vision encoder's learning rate is 0 for these first steps
    eval_every: int = 100  # teacher-forced validation loss and token accuracy
    gen_every: int = 500  # a short generation pass, scored
    gen_samples: int = 8
    gen_max_new_tokens: int = 512
    save_every: int = 200
    keep_last: int = 2
    num_workers: int = 2
    shuffle_buffer: int = 256
    mixed_precision: str = "no"  # no | fp16 | bf16
    log_every: int = 10
    max_length: int = 0  # longest target in tokens; 0 = the model's

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "TrainConfig":
        from .config import ConfigError

        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise ConfigError(f"{where}: unknown training field(s) {sorted(unknown)}; known: {sorted(names)}")
        kwargs = {}
        for key, value in data.items():
            default = names[key].default if names[key].default is not dataclasses.MISSING else names[key].default_factory()
            kwargs[key] = _coerce_like(default, value, f"{where}: {key}")
        return cls(**kwargs)

    def replace(self, **overrides) -> "TrainConfig":
        data = dataclasses.asdict(self)
        for key, value in overrides.items():
            if key.startswith("model_overrides."):
                data["model_overrides"] = {**data["model_overrides"], key.split(".", 1)[1]: value}
            else:
                data[key] = value
        return TrainConfig.from_dict(data, "--set")


def _coerce_like(default, value, where):
    from .config import ConfigError

    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "1")
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}") from None


def load_train_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    import yaml

    from .cli_model import parse_overrides

    data = {}
    if path:
        p = Path(path)
        if not p.exists():
            from .config import ConfigError

            raise ConfigError(f"{p}: no such config; recipes live in configs/ (e.g. configs/tiny-cpu.yaml)")
        data = yaml.safe_load(p.read_text()) or {}
    cfg = TrainConfig.from_dict(data, str(path or "config"))
    return cfg.replace(**parse_overrides(list(overrides))) if overrides else cfg


# ---------------------------------------------------------------------------------------------
# The schedule, as a pure function of the step.


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * min_lr_ratio at max_steps."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def decoder_inputs(labels: torch.Tensor, pad_id: int, start_id: int) -> torch.Tensor:
    """Teacher forcing: the labels shifted right behind the decoder start token, padding as pad."""
    ids = labels.masked_fill(labels == -100, pad_id)
    return torch.cat([torch.full_like(ids[:, :1], start_id), ids[:, :-1]], dim=1)


def perturb(dec_in: torch.Tensor, labels: torch.Tensor, prob: float, vocab: int, generator: torch.Generator,
            first_id: int = 4) -> torch.Tensor:
    """Replace decoder input tokens at random (never the start token or padding): the model learns to
    recover from its own mistakes instead of copying a loop (Nougat's remedy)."""
    if prob <= 0:
        return dec_in
    noise = torch.rand(dec_in.shape, generator=generator) < prob
    noise[:, 0] = False
    noise &= torch.cat([torch.ones_like(labels[:, :1], dtype=torch.bool), labels[:, :-1] != -100], dim=1)
    rand_ids = torch.randint(first_id, vocab, dec_in.shape, generator=generator)
    return torch.where(noise.to(dec_in.device), rand_ids.to(dec_in.device), dec_in)


def loss_and_accuracy(logits, labels, label_smoothing: float = 0.0):
    """Token-mean cross-entropy over non-padding labels, and (correct, counted) token totals."""
    flat = logits.reshape(-1, logits.shape[-1]).float()
    target = labels.reshape(-1)
    loss = F.cross_entropy(flat, target, ignore_index=-100, label_smoothing=label_smoothing)
    mask = target != -100
    correct = (flat.argmax(-1)[mask] == target[mask]).sum()
    return loss, correct, mask.sum()


def teacher_forced(model, batch: dict, pad_id: int, start_id: int, device=None, dec_in=None,
                   label_smoothing: float = 0.0):
    """Loss and (correct, counted) tokens of one collated batch under teacher forcing; only positions that
    carry a label are projected to the vocabulary. `dec_in` overrides the decoder inputs (perturbation)."""
    labels = batch["labels"].to(device) if device is not None else batch["labels"]
    pixels = batch["pixel_values"].to(device) if device is not None else batch["pixel_values"]
    if dec_in is None:
        dec_in = decoder_inputs(labels, pad_id, start_id)
    mask = labels != -100
    logits = model(pixels, decoder_input_ids=dec_in.to(labels.device), logits_mask=mask).logits  # (tokens, V)
    return loss_and_accuracy(logits, labels[mask], label_smoothing)


# ---------------------------------------------------------------------------------------------
# Checkpoints: step-NNNNNNN/ is a loadable model directory plus the trainer's state.

STEP_DIR = re.compile(r"^step-(\d+)$")


def list_checkpoints(out: Path) -> list[tuple[int, Path]]:
    d = out / "checkpoints"
    if not d.exists():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := STEP_DIR.match(p.name)) and (p / "trainer_state.json").exists()]
    return sorted(found)


def _build(cfg: TrainConfig):
    """The model bundle to train: a fresh preset (random or pretrained weights) or a model directory."""
    from .checkpoint import create, load
    from .config import get_preset

    if Path(cfg.model).is_dir():
        return load(cfg.model)
    mcfg = get_preset(cfg.model)
    if cfg.model_overrides:
        mcfg = mcfg.replace(**cfg.model_overrides)
    tok = None
    if cfg.tokenizer:
        from .tokenizer import load_tokenizer

        tok = load_tokenizer(cfg.tokenizer)
    return create(mcfg, tokenizer=tok, pretrained=cfg.pretrained)


class Curves:
    """Training and validation history, written as JSON, TensorBoard events and a PNG."""

    def __init__(self, out: Path, enabled: bool, history: dict | None = None):
        self.out = out
        self.enabled = enabled
        self.history = history or {"train": [], "val": [], "gen": []}
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:  # tensorboard is optional ([train] extra)
                self.tb = None

    def add(self, kind: str, step: int, **values):
        self.history[kind].append({"step": step, **values})
        if self.tb:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def plot(self):
        if not self.enabled:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
        tr, va = self.history["train"], self.history["val"]
        if tr:
            a.plot([r["step"] for r in tr], [r["loss"] for r in tr], label="train loss", alpha=0.6)
        if va:
            a.plot([r["step"] for r in va], [r["loss"] for r in va], "o-", label="validation loss")
            b.plot([r["step"] for r in va], [r["token_acc"] for r in va], "o-", color="C2", label="validation token accuracy")
        a.set_xlabel("step"), a.set_ylabel("loss"), a.set_yscale("log"), a.legend(), a.grid(alpha=0.3)
        b.set_xlabel("step"), b.set_ylabel("token accuracy"), b.set_ylim(0, 1), b.legend(), b.grid(alpha=0.3)
        fig.tight_layout()
        tmp = self.out / ".curves.png.tmp.png"
        fig.savefig(tmp, dpi=90)
        plt.close(fig)
        os.replace(tmp, self.out / "curves.png")
        if self.tb:
            self.tb.flush()


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) a training run; returns the best checkpoint's directory."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm import tqdm

    from .checkpoint import Bundle, atomic_write_text, save
    from .data import make_loader, open_val_set

    out = Path(cfg.out)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=1)
    main = accelerator.is_main_process
    set_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)

    previous = list_checkpoints(out)
    resume_from = previous[-1][1] if previous else None
    bundle = _build(TrainConfig.from_dict({**dataclasses.asdict(cfg), "model": str(resume_from)}) if resume_from else cfg)
    model, tok, proc = bundle.model, bundle.tokenizer, bundle.processor
    mcfg = model.config
    max_length = cfg.max_length or mcfg.max_length
    pad_id = mcfg.text.arch["pad_token_id"]
    start_id = mcfg.text.arch["decoder_start_token_id"]
    vocab = mcfg.vocab_size
    if main:
        atomic_write_text(out / "train_config.json", json.dumps(dataclasses.asdict(cfg), indent=2))

    vision_params = list(model.vision.parameters())
    vision_ids = {id(p) for p in vision_params}
    rest = [p for p in model.parameters() if id(p) not in vision_ids]

    def groups(params):
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]  # biases and norms
        return [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    param_groups = groups(vision_params) + groups(rest)  # groups 0, 1: vision; 2, 3: the rest
    optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8)
    model, optimizer = accelerator.prepare(model, optimizer)

    state = {"step": 0, "data": {"epoch": 0, "batches": 0}, "best_val_loss": None, "history": None}
    if resume_from:
        accelerator.load_state(str(resume_from / "state"))
        state = json.loads((resume_from / "trainer_state.json").read_text())
        if main:
            print(f"resuming from {resume_from} at step {state['step']}", file=sys.stderr)
    curves = Curves(out, main, state.get("history"))

    rank, world = accelerator.process_index, accelerator.num_processes
    shared_source = not cfg.val_data or cfg.val_data == cfg.train_data
    val_batches, val_digests = open_val_set(
        cfg.val_data or cfg.train_data, tok, proc, config=(cfg.val_config or cfg.train_config) or None,
        n=cfg.val_size, batch_size=cfg.batch_size, max_length=max_length,
    )
    loader = make_loader(
        cfg.train_data, tok, proc, config=cfg.train_config or None, batch_size=cfg.batch_size,
        num_workers=cfg.num_workers, max_length=max_length, shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed,
        rank=rank, world_size=world, exclude=val_digests if shared_source else frozenset(),
        start_epoch=state["data"]["epoch"], start_batches=state["data"]["batches"],
    )

    def evaluate() -> dict:
        model.eval()
        total_loss = total_tokens = total_correct = 0.0
        with torch.no_grad():
            for batch in val_batches:
                loss, correct, counted = teacher_forced(model, batch, pad_id, start_id, accelerator.device)
                total_loss += float(loss) * int(counted)
                total_tokens += int(counted)
                total_correct += int(correct)
        model.train()
        return {"loss": total_loss / max(total_tokens, 1), "token_acc": total_correct / max(total_tokens, 1)}

    def generation_check() -> dict:
        """Greedy-decode a few validation pages and score what comes out."""
        from .generate import Predictor

        unwrapped = accelerator.unwrap_model(model)
        predictor = Predictor(Bundle(unwrapped, tok, proc, bundle.generation), device=accelerator.device)
        refs, images = [], []
        for batch in val_batches:
            for i in range(batch["size"]):
                if len(images) < cfg.gen_samples:
                    images.append(batch["pixel_values"][i])
                    refs.append(tok.decode([t for t in batch["labels"][i].tolist() if t != -100], skip_special_tokens=True))
        preds = predictor.predict_tensors(torch.stack(images), max_new_tokens=cfg.gen_max_new_tokens)
        from .metrics import code_scores, mean_scores

        pages = []
        for p, ref in zip(preds, refs):
            scores = code_scores(p.html, ref)
            scores["exact_match"] = float(p.raw == ref)
            scores["truncated"] = float(p.truncated)
            pages.append(scores)
        return {k: v for k, v in mean_scores(pages).items() if isinstance(v, (int, float))}

    gen = torch.Generator()  # perturbation noise, reseeded every step
    model.train()
    step = state["step"]
    t_start = time.perf_counter()
    timers = Counter()
    drops = Counter()
    samples = tokens = 0
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not main, dynamic_ncols=True, desc="train")
    data_iter = iter(loader)

    def next_batch():
        nonlocal data_iter
        while True:
            try:
                return next(data_iter)
            except StopIteration:
                loader.next_epoch()
                data_iter = iter(loader)

    def full_model():
        """The whole model for saving. Under FSDP the parameters are sharded: gather them (every rank must
        call this) into a fresh CPU copy on the main process; otherwise the unwrapped module is whole."""
        from accelerate.utils import DistributedType

        if accelerator.distributed_type != DistributedType.FSDP:
            return accelerator.unwrap_model(model)
        sd = accelerator.get_state_dict(model)
        if not main:
            return None
        from .model import I2HModel

        copy = I2HModel(mcfg, load_weights=False)
        copy.load_state_dict(sd)
        return copy

    def save_checkpoint(tag_best: bool):
        """step-N/: model directory + accelerate state + trainer state, each rank writing its part."""
        accelerator.wait_for_everyone()
        final = out / "checkpoints" / f"step-{step:07d}"
        tmp = out / "checkpoints" / f".step-{step:07d}.tmp"
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp / "state"))
        whole = full_model()
        if main:
            unwrapped = whole
            save(Bundle(unwrapped, tok, proc, bundle.generation), tmp / "model")
            for f in (tmp / "model").iterdir():
                os.replace(f, tmp / f.name)
            (tmp / "model").rmdir()
            st = {"step": step, "data": loader.position(), "best_val_loss": state["best_val_loss"],
                  "history": curves.history}
            (tmp / "trainer_state.json").write_text(json.dumps(st))
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)  # the checkpoint appears whole or not at all
            if tag_best:
                save(Bundle(unwrapped, tok, proc, bundle.generation), out / "best")
            for s, p in list_checkpoints(out)[: -cfg.keep_last]:
                shutil.rmtree(p, ignore_errors=True)
        accelerator.wait_for_everyone()

    if step == 0:
        # The untrained model's validation: the curve's first point, and what later ones are judged against.
        tv = time.perf_counter()
        curves.add("val", 0, **evaluate())
        timers["val"] += time.perf_counter() - tv
    stopped_early = False
    while step < cfg.max_steps:
        t0 = time.perf_counter()
        batch = next_batch()
        t1 = time.perf_counter()
        timers["data"] += t1 - t0
        drops.update(batch["stats"])
        for i, g in enumerate(optimizer.param_groups):
            frozen = i < 2 and step < cfg.freeze_vision_steps
            g["lr"] = 0.0 if frozen else lr_at(step, cfg)
        # Every random draw of a step (dropout, perturbation) is a function of (seed, step, rank): a resumed
        # run draws exactly what the uninterrupted one did, whatever else touched the global RNG meanwhile.
        step_seed = (cfg.seed * 1_000_003 + step) * 64 + rank
        torch.manual_seed(step_seed)
        gen.manual_seed(step_seed)
        labels = batch["labels"]
        dec = perturb(decoder_inputs(labels, pad_id, start_id), labels, cfg.perturb_prob, vocab, gen)
        with accelerator.autocast():
            loss, correct, counted = teacher_forced(model, batch, pad_id, start_id, accelerator.device, dec,
                                                    cfg.label_smoothing)
        accelerator.backward(loss)
        if cfg.clip_grad > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        timers["step"] += time.perf_counter() - t1
        samples += batch["size"] * world
        tokens += int(counted) * world
        loss_value = float(loss.detach())
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            elapsed = timers["data"] + timers["step"]
            curves.add("train", step, loss=loss_value, lr=lr_at(step - 1, cfg), token_acc=int(correct) / max(int(counted), 1))
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr_at(step - 1, cfg):.2e}",
                            sps=f"{samples / max(elapsed, 1e-9):.1f}", wait=f"{timers['data'] / max(elapsed, 1e-9):.0%}")
        bar.update(1)
        run_time = time.perf_counter() - t_start
        out_of_time = cfg.time_limit_s > 0 and run_time >= cfg.time_limit_s
        last = step == cfg.max_steps or out_of_time
        is_best = False
        if step % cfg.eval_every == 0 or last:
            tv = time.perf_counter()
            val = evaluate()
            if step % cfg.gen_every == 0 or last:
                val.update({f"gen_{k}": v for k, v in generation_check().items()})
            timers["val"] += time.perf_counter() - tv
            curves.add("val", step, **val)
            if state["best_val_loss"] is None or val["loss"] < state["best_val_loss"]:
                state["best_val_loss"], is_best = val["loss"], True
            if main:
                bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in val.items()))
                curves.plot()
        if step % cfg.save_every == 0 or last:
            ts = time.perf_counter()
            save_checkpoint(is_best)
            timers["save"] += time.perf_counter() - ts
        elif is_best:
            whole = full_model()
            if main:
                save(Bundle(whole, tok, proc, bundle.generation), out / "best")
        if out_of_time and step < cfg.max_steps:
            stopped_early = True
            break
    bar.close()

    total = time.perf_counter() - t_start
    train_time = timers["data"] + timers["step"]
    report = {
        "steps": step, "stopped_at_time_limit": stopped_early, "seconds": total,
        "samples_per_s": samples / max(train_time, 1e-9), "tokens_per_s": tokens / max(train_time, 1e-9),
        "data_wait_fraction": timers["data"] / max(train_time, 1e-9),
        "validation_fraction": timers["val"] / max(total, 1e-9),
        "checkpoint_fraction": timers["save"] / max(total, 1e-9),
        "dropped": dict(loader.stats), "best_val_loss": state["best_val_loss"],
    }
    if main:
        atomic_write_text(out / "throughput.json", json.dumps(report, indent=2))
        print(json.dumps(report, indent=2), file=sys.stderr)
    accelerator.end_training()
    return out / "best"


def main(argv: list[str] | None = None) -> int:
    """`i2h train` and `accelerate launch -m i2h.train`."""
    ap = argparse.ArgumentParser(prog="i2h train", description="Train a model (resumes from OUT/checkpoints).")
    add_arguments(ap)
    args = ap.parse_args(argv)
    return run(args)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", help="a YAML recipe, e.g. configs/tiny-cpu.yaml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a field, e.g. max_steps=200")


def run(args) -> int:
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError

    try:
        cfg = load_train_config(args.config, args.set)
        if not cfg.train_data:
            raise ConfigError("no training data: set train_data (shards folder or Hub id) in the recipe or with --set")
        train(cfg)
    except (ConfigError, DataError, CheckpointError, FileNotFoundError) as e:
        print(f"i2h train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
