"""Frozen, nested model configs, the named presets, and JSON in and out."""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Decoding backends (i2h.generate.Predictor); a model directory may name its preferred one in
# INFERENCE_FILE ({"backend": ...}).
BACKENDS = ("auto", "onnx", "onnx-int8", "torch", "hf")
INFERENCE_FILE = "inference.json"


class ConfigError(ValueError):
    """A config or override that names a field that does not exist, or gives it the wrong type."""


@dataclass(frozen=True)
class VisionConfig:
    """The image encoder: a timm model by name, or the CLIP vision tower from transformers."""

    kind: str = "timm"  # "timm" | "clip"
    name: str = "mobilenetv3_small_100"  # timm model name, or a CLIP Hub id / local dir when pretrained
    pretrained: bool = False
    # timm only: a local weights file (or "hf-hub:..." id) to use instead of timm's default source.
    weights: str = ""
    # For kind="clip" with random weights: the CLIPVisionConfig fields (the architecture written out).
    arch: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TextConfig:
    """The sequence-to-sequence text model: the BART or T5 family from transformers."""

    family: str = "bart"  # "bart" | "t5"
    name: str = ""  # Hub id or local dir of pretrained weights (used when pretrained=True)
    pretrained: bool = False
    # The transformers config fields (d_model, layers, heads, vocab_size, special token ids, ...):
    # every preset builds offline from these with random weights.
    arch: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ImageConfig:
    """Model input: screenshots are resized to `width` (aspect kept), then padded or cropped to `height`."""

    width: int = 512
    height: int = 512
    # Empty means "take them from the encoder's own data config" (timm / CLIP); filled in at build time.
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    pad_value: int = 255  # pad with white: the default background of a web page


@dataclass(frozen=True)
class I2HConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    # True: projected visual tokens are the text model's encoder input embeddings (the encoder's
    # self-attention mixes the CNN's local features across the page). False: they go straight to the
    # decoder's cross-attention and the text encoder is not built at all.
    through_text_encoder: bool = True
    max_length: int = 1024  # longest HTML in tokens, EOS included
    # "own": our HTML byte-level BPE (from-scratch presets); "pretrained": the text model's own tokenizer.
    tokenizer: str = "own"
    preset: str = ""  # the preset this config came from, for `model info`

    # ---- JSON ----
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "I2HConfig":
        return _from_dict(cls, data, "config")

    @classmethod
    def from_json_file(cls, path: str | Path) -> "I2HConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def replace(self, **overrides: Any) -> "I2HConfig":
        """Return a copy with dotted overrides applied, e.g. replace(**{"image.width": 768})."""
        data = self.to_dict()
        for key, value in overrides.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown config field {key!r}")
                node = node[part]
            if parts[-1] not in node and not _is_arch_path(parts):
                raise ConfigError(f"unknown config field {key!r}")
            node[parts[-1]] = value
        return I2HConfig.from_dict(data)

    # ---- derived quantities (dials derived, not stored) ----
    @property
    def d_model(self) -> int:
        return int(self.text.arch["d_model"])

    @property
    def vocab_size(self) -> int:
        return int(self.text.arch["vocab_size"])


def _is_arch_path(parts: list[str]) -> bool:
    # Free-form transformers fields live under text.arch / vision.arch.
    return len(parts) == 3 and parts[1] == "arch"


def _from_dict(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(tp, value, where):
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(float(v) for v in value)
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {value!r}")
        return dict(value)
    return value


# ---------------------------------------------------------------------------------------------
# Presets. Architectures are written out so that every preset builds offline with random weights;
# `pretrained=True` swaps in the Hub weights through the libraries' own loaders.

# DistilBART 6-6 (sshleifer/distilbart-cnn-6-6): BART-large width, 6 encoder and 6 decoder layers.
DISTILBART_6_6 = dict(
    vocab_size=50264, d_model=1024, encoder_layers=6, decoder_layers=6,
    encoder_attention_heads=16, decoder_attention_heads=16,
    encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
    activation_function="gelu", scale_embedding=False,
    pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=0,
)
# T5-base (t5-base).
T5_BASE = dict(
    vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_decoder_layers=12,
    num_heads=12, relative_attention_num_buckets=32, feed_forward_proj="relu", tie_word_embeddings=True,
    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
)
# CLIP ViT-B/32 vision tower (openai/clip-vit-base-patch32).
CLIP_VIT_B32 = dict(
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    patch_size=32, image_size=224, hidden_act="quick_gelu",
)
# Our own HTML tokenizer puts its special tokens in BART's order: <s>=0, <pad>=1, </s>=2, <unk>=3.
OWN_VOCAB_SIZE = 8192  # the bundled HTML tokenizer's size
OWN_SPECIAL_IDS = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)


def _small_bart(d_model, layers_enc, layers_dec, heads, ffn, max_pos):
    return dict(
        d_model=d_model, encoder_layers=layers_enc, decoder_layers=layers_dec,
        encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_position_embeddings=max_pos,
        activation_function="gelu", scale_embedding=False, dropout=0.1,
        vocab_size=OWN_VOCAB_SIZE,  # replaced by the actual tokenizer's size when a model is created
        **OWN_SPECIAL_IDS,
    )


PRESETS: dict[str, I2HConfig] = {
    # The design's main model.
    "mnv3-distilbart": I2HConfig(
        vision=VisionConfig(kind="timm", name="mobilenetv3_small_100"),
        text=TextConfig(family="bart", name="sshleifer/distilbart-cnn-6-6", arch=DISTILBART_6_6),
        image=ImageConfig(width=768, height=768), max_length=1024, tokenizer="pretrained",
    ),
    # The design's first model.
    "clip-t5": I2HConfig(
        vision=VisionConfig(kind="clip", name="openai/clip-vit-base-patch32", arch=CLIP_VIT_B32),
        text=TextConfig(family="t5", name="t5-base", arch=T5_BASE),
        image=ImageConfig(width=448, height=448), max_length=1024, tokenizer="pretrained",
    ),
    # The design's named next steps: other light encoders.
    "effnet-distilbart": I2HConfig(
        vision=VisionConfig(kind="timm", name="efficientnet_b0"),
        text=TextConfig(family="bart", name="sshleifer/distilbart-cnn-6-6", arch=DISTILBART_6_6),
        image=ImageConfig(width=768, height=768), max_length=1024, tokenizer="pretrained",
    ),
    "vittiny-distilbart": I2HConfig(
        vision=VisionConfig(kind="timm", name="vit_tiny_patch16_224"),
        text=TextConfig(family="bart", name="sshleifer/distilbart-cnn-6-6", arch=DISTILBART_6_6),
        # 16-px patches: 512 x 512 gives a 32 x 32 grid, 1024 tokens (BART's position limit).
        image=ImageConfig(width=512, height=512), max_length=1024, tokenizer="pretrained",
    ),
    # From scratch, CPU-sized, our tokenizer. `tiny` is for tests (a few seconds).
    "tiny": I2HConfig(
        vision=VisionConfig(kind="timm", name="mobilenetv3_small_050"),
        text=TextConfig(family="bart", arch=_small_bart(64, 1, 1, 2, 128, 2048)),
        image=ImageConfig(width=128, height=128), max_length=2048, tokenizer="own",
    ),
    # The future default model.
    "small": I2HConfig(
        vision=VisionConfig(kind="timm", name="mobilenetv3_small_100"),
        text=TextConfig(family="bart", arch=_small_bart(256, 3, 4, 4, 1024, 2048)),
        image=ImageConfig(width=512, height=512), max_length=2048, tokenizer="own",
    ),
}
PRESETS = {name: dataclasses.replace(cfg, preset=name) for name, cfg in PRESETS.items()}


def get_preset(name: str) -> I2HConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
