"""One self-contained model directory (Hugging Face layout) behind one load(); atomic writes."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import ConfigError, I2HConfig, get_preset, PRESETS
from .images import ImageProcessor
from .model import I2HModel

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
GENERATION_FILE = "generation_config.json"
# Config keys that transformers adds when it serialises a config; they are provenance, not architecture.
_HF_NOISE = {"transformers_version", "architectures", "_name_or_path", "torch_dtype", "dtype", "id2label", "label2id"}


class CheckpointError(ValueError):
    """A model directory or id that cannot be loaded; the message says which and why."""


@contextlib.contextmanager
def atomic_dir(out: str | Path):
    """Yield a temporary folder beside `out`; on success it replaces `out` in one rename.

    A crash leaves either the old folder or the new one, never a half-written one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class Bundle:
    """Everything one model directory holds, loaded."""

    model: I2HModel
    tokenizer: object
    processor: ImageProcessor
    generation: dict  # defaults for generate(): max_new_tokens, num_beams, special token ids


def _hf_dict(hf_config) -> dict:
    return {k: v for k, v in hf_config.to_dict().items() if k not in _HF_NOISE}


def _special_ids(tokenizer) -> dict:
    return dict(
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.pad_token_id,
    )


def create(config: I2HConfig | str, tokenizer=None, pretrained: bool = False) -> Bundle:
    """A new model: random weights, or the pretrained weights the config names (from the Hub or a path)."""
    cfg = get_preset(config) if isinstance(config, str) else config
    if pretrained:
        cfg = dataclasses.replace(
            cfg,
            vision=dataclasses.replace(cfg.vision, pretrained=True),
            # A from-scratch text model (no name) has no pretrained weights to load.
            text=dataclasses.replace(cfg.text, pretrained=bool(cfg.text.name)),
        )
    if tokenizer is None:
        if cfg.tokenizer == "own":
            from .tokenizer import default_tokenizer

            tokenizer = default_tokenizer()
        else:
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(cfg.text.name)
            except OSError as e:
                raise CheckpointError(
                    f"{cfg.text.name}: cannot load this text model's tokenizer ({e.__class__.__name__}); "
                    "it comes from the Hugging Face Hub: check the network, or pass --tokenizer DIR"
                ) from None
    arch = dict(cfg.text.arch)
    if cfg.tokenizer == "own" or len(tokenizer) > arch.get("vocab_size", 0):
        arch["vocab_size"] = len(tokenizer)
    if cfg.tokenizer == "own":
        ids = _special_ids(tokenizer)
        arch.update(ids)
        arch["decoder_start_token_id"] = ids["eos_token_id"] if cfg.text.family == "bart" else ids["pad_token_id"]
        arch.pop("forced_bos_token_id", None)
    cfg = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, arch=arch))
    _check(cfg)
    model = I2HModel(cfg, load_weights=pretrained)
    # Write the loaded architectures into the config, so the saved directory rebuilds offline.
    text_arch = _hf_dict(model.text.config)
    vision = cfg.vision
    if cfg.vision.kind == "clip":
        vision = dataclasses.replace(vision, arch=_hf_dict(model.vision.net.config))
    dc = model.vision.data_config
    image = dataclasses.replace(cfg.image, mean=tuple(dc["mean"]), std=tuple(dc["std"]))
    cfg = dataclasses.replace(cfg, vision=vision, text=dataclasses.replace(cfg.text, arch=text_arch), image=image)
    model.config = cfg
    return Bundle(model, tokenizer, processor_for(cfg), generation_defaults(cfg))


def _check(cfg: I2HConfig) -> None:
    if cfg.text.family == "bart" and cfg.through_text_encoder:
        stride = {"clip": 32}.get(cfg.vision.kind, 16 if "patch16" in cfg.vision.name else 32)
        n = (cfg.image.height // stride) * (cfg.image.width // stride)
        limit = cfg.text.arch.get("max_position_embeddings", 1024)
        if n > limit:
            raise ConfigError(
                f"{n} visual tokens exceed the BART encoder's {limit} positions; lower image.height/width "
                "or set through_text_encoder=false"
            )
    if cfg.text.family == "bart" and cfg.max_length > cfg.text.arch.get("max_position_embeddings", 1024):
        raise ConfigError("max_length is longer than the decoder's max_position_embeddings")


def processor_for(cfg: I2HConfig) -> ImageProcessor:
    return ImageProcessor(width=cfg.image.width, height=cfg.image.height, mean=cfg.image.mean,
                          std=cfg.image.std, pad_value=cfg.image.pad_value)


def generation_defaults(cfg: I2HConfig) -> dict:
    a = cfg.text.arch
    gen = dict(
        max_new_tokens=cfg.max_length,
        num_beams=1,
        do_sample=False,
        decoder_start_token_id=a.get("decoder_start_token_id"),
        eos_token_id=a.get("eos_token_id"),
        pad_token_id=a.get("pad_token_id"),
        bos_token_id=a.get("bos_token_id"),
    )
    if a.get("forced_bos_token_id") is not None:
        gen["forced_bos_token_id"] = a["forced_bos_token_id"]
    return gen


def save(bundle: Bundle, out: str | Path) -> Path:
    """Write the model directory atomically: config, weights, tokenizer, preprocessing, generation."""
    from safetensors.torch import save_model

    out = Path(out)
    optimized = getattr(bundle.model, "optimized", None)  # set by i2h.export / i2h.prune
    if optimized and optimized.get("quantization"):
        from .export import save_quantized

        return save_quantized(bundle, out)
    with atomic_dir(out) as tmp:
        data = {"model_type": "i2h", "format_version": FORMAT_VERSION, **bundle.model.config.to_dict()}
        if optimized:
            data["optimized"] = optimized
        (tmp / CONFIG_FILE).write_text(json.dumps(data, indent=2, sort_keys=True))
        # save_model handles tied tensors (shared embeddings / LM head) that save_file refuses.
        save_model(bundle.model, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        bundle.tokenizer.save_pretrained(str(tmp))
        bundle.processor.save_pretrained(tmp)
        (tmp / GENERATION_FILE).write_text(json.dumps(bundle.generation, indent=2))
    return out


def _upgrade(data: dict) -> dict:
    """Bring an older config.json up to this version (the one place old checkpoints are handled)."""
    data = dict(data)
    if data.pop("model_type", "i2h") != "i2h":
        raise CheckpointError("not an i2h model (config.json model_type is not 'i2h')")
    data.pop("format_version", 0)
    data.pop("optimized", None)  # pruned heads / int8 layers: read by load(), not part of the architecture
    return data


def resolve(name_or_path: str | Path) -> Path | str:
    """A local model directory, a preset name (returned as is), or a Hub id (downloaded)."""
    p = Path(name_or_path)
    if p.is_dir():
        if not (p / CONFIG_FILE).exists():
            raise CheckpointError(f"{p}: not a model directory (no {CONFIG_FILE}); make one with `i2h model create`")
        return p
    name = str(name_or_path)
    if name in PRESETS:
        return name
    if p.exists():
        raise CheckpointError(f"{p}: is a file; give a model directory, a preset ({', '.join(PRESETS)}) or a Hub id")
    if name.count("/") == 1 and not name.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(name))
        except Exception as e:  # network, auth, missing repo: all mean "cannot get it"
            raise CheckpointError(f"{name}: not a local folder, and the Hub download failed ({e.__class__.__name__})") from None
    raise CheckpointError(f"{name}: no such model directory or preset; presets: {', '.join(PRESETS)}")


def load(name_or_path: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """Load a model directory (or Hub id); a preset name gives that preset with random weights."""
    from safetensors.torch import load_model

    from .tokenizer import load_tokenizer

    where = resolve(name_or_path)
    if isinstance(where, str):
        bundle = create(where)
        bundle.model.to(device).eval()
        return bundle
    try:
        raw = json.loads((where / CONFIG_FILE).read_text())
        cfg = I2HConfig.from_dict(_upgrade(raw))
    except (json.JSONDecodeError, ConfigError) as e:
        raise CheckpointError(f"{where / CONFIG_FILE}: unreadable config ({e})") from None
    model = I2HModel(cfg, load_weights=False)
    weights = where / WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointError(f"{where}: no {WEIGHTS_FILE}; the directory is incomplete")
    if raw.get("optimized"):  # an exported int8 or head-pruned model (i2h export / i2h prune)
        from .export import load_optimized

        load_optimized(model, where, raw["optimized"], device)
        missing = unexpected = None
    else:
        missing, unexpected = load_model(model, str(weights), strict=False, device=str(device))
    if missing or unexpected:
        raise CheckpointError(f"{weights}: weights do not fit the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    gen_path = where / GENERATION_FILE
    generation = json.loads(gen_path.read_text()) if gen_path.exists() else generation_defaults(cfg)
    bundle = Bundle(model.to(device).eval(), load_tokenizer(where), ImageProcessor.from_pretrained(where), generation)
    return bundle


DEFAULT_MODEL = Path(__file__).parent / "assets" / "default-model"


def default_model_dir() -> Path:
    """The model bundled with the package, used when no --model is given."""
    if not (DEFAULT_MODEL / CONFIG_FILE).exists():
        raise CheckpointError(
            f"no default model is bundled at {DEFAULT_MODEL}; pass --model DIR (make one with "
            "`i2h model create --preset tiny --out DIR` and train it with `i2h train`)"
        )
    return DEFAULT_MODEL
