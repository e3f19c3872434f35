"""Pruning the text decoder: whole layers, attention heads, FFN width (structured) and weight magnitude, plus a short recovery fine-tune."""
from __future__ import annotations

import dataclasses
import math
import time

import torch
from torch import nn


def _decoder(model):
    text = model.text
    if text.config.model_type != "bart":
        raise ValueError(f"pruning handles BART text models, not {text.config.model_type!r}")
    return text.model.decoder


def _set_arch(model, **fields) -> None:
    """Write changed architecture fields into both configs (ours, saved as JSON, and the HF one)."""
    arch = {**model.config.text.arch, **fields}
    model.config = dataclasses.replace(model.config, text=dataclasses.replace(model.config.text, arch=arch))
    for k, v in fields.items():
        setattr(model.text.config, k, v)


def spread_layers(n_old: int, n_new: int) -> list[int]:
    """Which layers to keep: spread evenly, first and last always (DistilBART's 12 -> 6 kept 0,2,4,7,9,11)."""
    if not 1 <= n_new <= n_old:
        raise ValueError(f"keep between 1 and {n_old} decoder layers, not {n_new}")
    if n_new == 1:
        return [n_old - 1]
    return sorted({round(i * (n_old - 1) / (n_new - 1)) for i in range(n_new)})


def prune_layers(model, keep: int | list[int]) -> list[int]:
    """Keep only some decoder layers (a count, spread evenly, or their indices); returns the indices kept."""
    dec = _decoder(model)
    idx = spread_layers(len(dec.layers), keep) if isinstance(keep, int) else sorted(keep)
    dec.layers = nn.ModuleList([dec.layers[i] for i in idx])
    for new, layer in enumerate(dec.layers):  # HF's cache is indexed by layer_idx
        layer.self_attn.layer_idx = layer.encoder_attn.layer_idx = new
    _set_arch(model, decoder_layers=len(idx))
    return idx


def _rows(lin: nn.Linear, keep: torch.Tensor) -> nn.Linear:
    new = nn.Linear(lin.in_features, len(keep), bias=lin.bias is not None)
    new.weight.data = lin.weight.data[keep].clone()
    if lin.bias is not None:
        new.bias.data = lin.bias.data[keep].clone()
    return new


def _cols(lin: nn.Linear, keep: torch.Tensor) -> nn.Linear:
    new = nn.Linear(len(keep), lin.out_features, bias=lin.bias is not None)
    new.weight.data = lin.weight.data[:, keep].clone()
    if lin.bias is not None:
        new.bias.data = lin.bias.data.clone()
    return new


def prune_ffn(model, width: int) -> None:
    """Keep the `width` FFN units per decoder layer with the largest |fc1 row| * |fc2 column|."""
    dec = _decoder(model)
    for layer in dec.layers:
        if not 1 <= width <= layer.fc1.out_features:
            raise ValueError(f"FFN width must be 1..{layer.fc1.out_features}, not {width}")
        score = layer.fc1.weight.norm(dim=1) * layer.fc2.weight.norm(dim=0)  # (F,)
        keep = score.topk(width).indices.sort().values
        layer.fc1, layer.fc2 = _rows(layer.fc1, keep), _cols(layer.fc2, keep)
    _set_arch(model, decoder_ffn_dim=width)


def head_scores(attn) -> torch.Tensor:
    """Importance of each head (H,): the norm of its slice of q, k, v rows and out_proj columns."""
    dh = attn.head_dim
    H = attn.k_proj.out_features // dh
    parts = [attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight, attn.out_proj.weight.T]
    return torch.stack([sum(p[h * dh : (h + 1) * dh].norm() ** 2 for p in parts) for h in range(H)])


def shrink_heads(model, kept: dict[str, list[int]]) -> None:
    """Cut attention modules down to the listed heads (module name -> head indices), in place."""
    for name, heads in kept.items():
        attn = model.get_submodule(name)
        dh = attn.head_dim
        rows = torch.cat([torch.arange(h * dh, (h + 1) * dh) for h in heads])
        attn.q_proj, attn.k_proj, attn.v_proj = (_rows(attn.q_proj, rows), _rows(attn.k_proj, rows),
                                                 _rows(attn.v_proj, rows))
        attn.out_proj = _cols(attn.out_proj, rows)
        attn.num_heads = len(heads)


def prune_heads(model, keep: int) -> dict[str, int]:
    """Keep the `keep` most important heads in every decoder attention (self and cross). The head count
    is not a BART config field, so it is recorded in `model.optimized["heads"]` and saved beside the config."""
    dec = _decoder(model)
    kept = {}
    for i, layer in enumerate(dec.layers):
        for kind in ("self_attn", "encoder_attn"):
            attn = getattr(layer, kind)
            scores = head_scores(attn)
            if not 1 <= keep <= len(scores):
                raise ValueError(f"heads to keep must be 1..{len(scores)}, not {keep}")
            kept[f"text.model.decoder.layers.{i}.{kind}"] = scores.topk(keep).indices.sort().values.tolist()
    shrink_heads(model, kept)
    spec = {k: len(v) for k, v in kept.items()}
    model.optimized = {**getattr(model, "optimized", {}), "heads": spec}
    return spec


def magnitude_masks(model, sparsity: float) -> dict[str, torch.Tensor]:
    """Zero the smallest-|w| fraction of each decoder linear weight; returns the keep masks (for recovery)."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), not {sparsity}")
    masks = {}
    for name, m in _decoder(model).named_modules():
        if type(m) is nn.Linear:
            w = m.weight.data
            k = int(sparsity * w.numel())
            if k == 0:
                continue
            thresh = w.abs().flatten().kthvalue(k).values
            mask = w.abs() > thresh
            w.mul_(mask)
            masks[name] = mask
    return masks


def recover(bundle, data: str, steps: int, lr: float = 1e-4, batch_size: int = 4,
            masks: dict[str, torch.Tensor] | None = None, log=print) -> list[float]:
    """A short fine-tune after pruning (teacher-forced cross-entropy, AdamW); magnitude masks stay applied.
    Returns the losses."""
    from .data import make_loader
    from .train import teacher_forced

    model = bundle.model
    gen = bundle.generation
    loader = make_loader(data, bundle.tokenizer, bundle.processor, batch_size=batch_size, num_workers=0,
                         max_length=model.config.max_length, shuffle_buffer=64)
    dec = _decoder(model)
    mods = dict(dec.named_modules())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    t0 = time.perf_counter()
    it = iter(loader)
    for step in range(steps):
        batch = next(it, None)
        if batch is None:
            it = iter(loader)
            batch = next(it)
        if not batch.get("size"):
            continue
        loss, _, _ = teacher_forced(model, batch, gen["pad_token_id"], gen["decoder_start_token_id"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if masks:
            with torch.no_grad():
                for name, mask in masks.items():
                    mods[name].weight.mul_(mask)
        losses.append(float(loss))
        if log and (step % 10 == 0 or step == steps - 1):
            log(f"recover step {step + 1}/{steps}: loss {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    return losses


def sparsity(model) -> float:
    """Fraction of exactly-zero weights in the decoder's linear layers."""
    zeros = total = 0
    for m in _decoder(model).modules():
        if type(m) is nn.Linear:
            zeros += int((m.weight == 0).sum())
            total += m.weight.numel()
    return zeros / max(total, 1)


def decoder_params(model) -> int:
    return sum(p.numel() for p in _decoder(model).parameters())


def teacher_forced_loss(bundle, data: str, n_batches: int = 4, batch_size: int = 4) -> float:
    """Mean token cross-entropy on the first batches of `data` (a quick quality figure for a pruned model)."""
    from .data import make_loader
    from .train import teacher_forced

    model, gen = bundle.model.eval(), bundle.generation
    loader = make_loader(data, bundle.tokenizer, bundle.processor, batch_size=batch_size, num_workers=0,
                         max_length=model.config.max_length, shuffle_buffer=1)
    total, count = 0.0, 0
    with torch.inference_mode():
        for i, batch in enumerate(loader):
            if i >= n_batches:
                break
            if not batch.get("size"):
                continue
            loss, _, n = teacher_forced(model, batch, gen["pad_token_id"], gen["decoder_start_token_id"])
            total += float(loss) * int(n)
            count += int(n)
    return total / count if count else math.nan
