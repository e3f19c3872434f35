"""The network: vision encoder -> visual tokens with a 2-D position signal -> linear projection -> text model."""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from .config import I2HConfig, VisionConfig


class VisionEncoder(nn.Module):
    """Screenshot (B, 3, H, W) -> visual tokens (B, N, C) on an (h, w) grid, N = h * w."""

    def __init__(self, cfg: VisionConfig, image_size: tuple[int, int], load_weights: bool):
        super().__init__()
        self.kind = cfg.kind
        self.image_size = image_size  # (H, W)
        if cfg.kind == "timm":
            import timm

            kwargs = dict(pretrained=load_weights and cfg.pretrained, num_classes=0, global_pool="")
            if cfg.name.startswith(("vit_", "deit_", "eva", "beit")):
                # ViTs are built for our (H, W); timm resamples pretrained position embeddings to it.
                kwargs["img_size"] = image_size
            if load_weights and cfg.pretrained and cfg.weights:
                kwargs["pretrained_cfg_overlay"] = dict(file=cfg.weights)
            self.net = timm.create_model(cfg.name, **kwargs)
            self.data_config = timm.data.resolve_model_data_config(self.net)
            # MobileNetV3 pools before its 1x1 `conv_head`; we apply that 1x1 conv at every position
            # instead, so the whole feature extractor (minus the classifier) serves the tokens.
            self.per_position_head = type(self.net).__name__ == "MobileNetV3"
            self.out_dim = self.net.head_hidden_size if self.per_position_head else self.net.num_features
            self.prefix_tokens = getattr(self.net, "num_prefix_tokens", 0)
        elif cfg.kind == "clip":
            from transformers import CLIPVisionConfig, CLIPVisionModel

            if load_weights and cfg.pretrained:
                self.net = CLIPVisionModel.from_pretrained(cfg.name)
            else:
                self.net = CLIPVisionModel(CLIPVisionConfig(**cfg.arch))
            self.data_config = dict(
                mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)
            )
            self.out_dim = self.net.config.hidden_size
            self.patch = self.net.config.patch_size
            self.per_position_head = False
            self.prefix_tokens = 1  # the CLS token
        else:
            raise ValueError(f"unknown vision encoder kind {cfg.kind!r}; use 'timm' or 'clip'")

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        H, W = pixel_values.shape[-2:]
        if self.kind == "clip":
            out = self.net(pixel_values=pixel_values, interpolate_pos_encoding=True).last_hidden_state
            return out[:, self.prefix_tokens :], (H // self.patch, W // self.patch)
        feats = self.net.forward_features(pixel_values)
        if feats.ndim == 4:  # CNN: (B, C, h, w)
            if self.per_position_head:
                feats = self.net.act2(self.net.norm_head(self.net.conv_head(feats)))
            h, w = feats.shape[-2:]
            return feats.flatten(2).transpose(1, 2), (h, w)  # (B, h*w, C)
        # ViT: (B, prefix + h*w, C)
        gh, gw = self.net.patch_embed.grid_size
        return feats[:, self.prefix_tokens :], (gh, gw)


def sincos_2d(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """Fixed 2-D sine/cosine position signal (h*w, dim): half the channels for rows, half for columns.

    Fixed rather than learned so that any grid (a taller input, another width) gets a signal."""
    quarter = dim // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device) / max(quarter, 1))
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    y = ys.flatten()[:, None] * freq[None]  # (h*w, quarter)
    x = xs.flatten()[:, None] * freq[None]
    pe = torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=1)
    if pe.shape[1] < dim:
        pe = torch.nn.functional.pad(pe, (0, dim - pe.shape[1]))
    return pe


class Projection(nn.Module):
    """The alignment layer: visual features (B, N, C) -> text hidden size (B, N, D), plus 2-D positions."""

    def __init__(self, in_dim: int, d_model: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, feats: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = self.linear(feats)
        x = x + sincos_2d(*grid, x.shape[-1], device=x.device).to(x.dtype)
        return self.norm(x)


class _NoTextEncoder(nn.Module):
    """Stands in for the text encoder when visual tokens go straight to cross-attention."""

    main_input_name = "input_ids"

    def forward(self, *args, **kwargs):
        raise RuntimeError("this model feeds visual tokens straight to the decoder; it has no text encoder")


def build_text_model(cfg: I2HConfig, load_weights: bool) -> nn.Module:
    t = cfg.text
    if t.family == "bart":
        from transformers import BartConfig as Cfg, BartForConditionalGeneration as Model
    elif t.family == "t5":
        from transformers import T5Config as Cfg, T5ForConditionalGeneration as Model
    else:
        raise ValueError(f"unknown text model family {t.family!r}; use 'bart' or 't5'")
    if load_weights and t.pretrained:
        model = Model.from_pretrained(t.name)
        if model.config.vocab_size != cfg.vocab_size:
            model.resize_token_embeddings(cfg.vocab_size)
    else:
        model = Model(Cfg(**t.arch))
    if not cfg.through_text_encoder:
        # Not built into the checkpoint at all: its parameters would never be trained or used.
        if t.family == "bart":
            model.model.encoder = _NoTextEncoder()
        else:
            model.encoder = _NoTextEncoder()
    return model


class I2HModel(nn.Module):
    """Image-to-HTML encoder-decoder. `forward` gives the loss; `generate` gives token ids."""

    def __init__(self, cfg: I2HConfig, load_weights: bool = False):
        """`load_weights`: fetch the pretrained weights the config names (else random init)."""
        super().__init__()
        self.config = cfg
        self.vision = VisionEncoder(cfg.vision, (cfg.image.height, cfg.image.width), load_weights)
        self.text = build_text_model(cfg, load_weights)
        self.projection = Projection(self.vision.out_dim, self.text.config.d_model)  # the loaded model decides

    @property
    def text_encoder(self) -> nn.Module | None:
        return self.text.get_encoder() if self.config.through_text_encoder else None

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> memory for the decoder's cross-attention (B, N, D)."""
        feats, grid = self.vision(pixel_values)  # (B, N, C)
        x = self.projection(feats, grid)  # (B, N, D)
        if self.config.through_text_encoder:
            x = self.text.get_encoder()(inputs_embeds=x).last_hidden_state
        return x

    def forward(self, pixel_values, labels=None, decoder_input_ids=None, decoder_attention_mask=None, logits_mask=None):
        """With `logits_mask` (B, T) bool, returns `.logits` (M, V) for the masked positions only: the
        vocabulary projection of padding is most of a small model's training step, so skip it."""
        memory = self.encode(pixel_values)
        if logits_mask is None:
            return self.text(
                encoder_outputs=BaseModelOutput(last_hidden_state=memory),
                labels=labels,
                decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask,
            )
        hidden = self.text.get_decoder()(
            input_ids=decoder_input_ids, attention_mask=decoder_attention_mask, encoder_hidden_states=memory
        ).last_hidden_state  # (B, T, D)
        return SimpleNamespace(logits=self.lm_logits(hidden[logits_mask]))  # (M, V)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Decoder states (..., D) -> vocabulary logits (..., V), as the text model's own head computes them."""
        if self.config.text.family == "t5" and self.text.config.tie_word_embeddings:
            hidden = hidden * self.text.config.d_model**-0.5  # T5 rescales before a tied head
        logits = self.text.lm_head(hidden)
        bias = getattr(self.text, "final_logits_bias", None)  # BART's
        return logits + bias if bias is not None else logits

    @torch.no_grad()
    def generate(self, pixel_values: torch.Tensor, memory: torch.Tensor | None = None, **gen_kwargs):
        if memory is None:
            memory = self.encode(pixel_values)
        return self.text.generate(encoder_outputs=BaseModelOutput(last_hidden_state=memory), **gen_kwargs)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part; shared tensors (tied embeddings) are counted once, under embeddings."""
        seen: set[int] = set()

        def count(module) -> int:
            n = 0
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    n += p.numel()
            return n

        counts = {"vision_encoder": count(self.vision), "projection": count(self.projection)}
        counts["embeddings"] = count(self.text.get_input_embeddings()) + count(self.text.get_output_embeddings())
        enc = self.text_encoder
        counts["text_encoder"] = count(enc) if enc is not None else 0
        counts["decoder"] = count(self.text.get_decoder())
        counts["other"] = count(self.text)
        counts["total"] = sum(counts.values())
        return counts
