"""A lean greedy decoder for BART-family models: static KV cache, cross-attention K/V once, a tight loop."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

# Generation settings that add HF logits processors or another search; any of them set (non-default)
# sends a call back to Hugging Face `generate`, so the fast path never silently changes the output.
_UNSUPPORTED_FIELDS = dict(
    guidance_scale=(None, 1, 1.0), sequence_bias=(None,), encoder_repetition_penalty=(None, 1.0),
    repetition_penalty=(None, 1.0), no_repeat_ngram_size=(None, 0), encoder_no_repeat_ngram_size=(None, 0),
    bad_words_ids=(None,), remove_invalid_values=(None, False), exponential_decay_length_penalty=(None,),
    suppress_tokens=(None,), begin_suppress_tokens=(None,), num_return_sequences=(None, 1),
    num_beams=(None, 1), do_sample=(None, False), max_time=(None,), stop_strings=(None,),
    penalty_alpha=(None,), watermarking_config=(None,), num_assistant_tokens=(None, 20, 5),
    prompt_lookup_num_tokens=(None,), assistant_early_exit=(None,), output_scores=(None, False),
    output_logits=(None, False), return_dict_in_generate=(None, False), cache_implementation=(None,),
    token_healing=(None, False), min_p=(None,), top_h=(None,),
)
# Call-time keyword arguments the fast path understands (the rest go into the GenerationConfig check).
_CALL_ARGS = {"stopping_criteria", "streamer"}


class FastPathUnsupported(ValueError):
    """The model or the generation settings need Hugging Face `generate`; the message says why."""


def model_reason(model) -> str | None:
    """Why this I2HModel cannot use the fast path (None when it can)."""
    text = getattr(model, "text", None)
    cfg = getattr(text, "config", None)
    if cfg is None or cfg.model_type != "bart":
        return f"the fast decoder handles BART text models, not {getattr(cfg, 'model_type', type(text).__name__)!r}"
    impl = getattr(cfg, "_attn_implementation", "sdpa")
    if impl not in ("sdpa", "eager"):
        return f"attention implementation {impl!r} is not handled (sdpa or eager)"
    if model.training:
        return "the model is in training mode (dropout): call model.eval() first"
    return None


def resolve_generation(model, gen_kwargs: dict):
    """HF's GenerationConfig for this call (model defaults updated by the keyword arguments), or raise
    FastPathUnsupported naming the setting the fast path does not reproduce."""
    gc = copy.deepcopy(model.text.generation_config)
    extra = {k: v for k, v in gen_kwargs.items() if k not in _CALL_ARGS}
    unused = gc.update(**extra)
    unknown = {k for k in unused if k not in ("use_cache",)}
    if unknown:
        raise FastPathUnsupported(f"generate argument(s) {sorted(unknown)} are not handled by the fast decoder")
    for name, defaults in _UNSUPPORTED_FIELDS.items():
        value = getattr(gc, name, None)
        if value not in defaults and not (isinstance(value, (list, dict)) and not value):
            raise FastPathUnsupported(f"generation setting {name}={value!r} is not handled by the fast decoder")
    return gc


def supports(model, **gen_kwargs) -> str | None:
    """None when `greedy_generate(model, ..., **gen_kwargs)` gives HF generate's exact tokens; else why not."""
    reason = model_reason(model)
    if reason:
        return reason
    try:
        resolve_generation(model, gen_kwargs)
    except FastPathUnsupported as e:
        return str(e)
    return None


def _as_list(x) -> list[int]:
    if x is None:
        return []
    if isinstance(x, torch.Tensor):
        return [int(v) for v in x.flatten().tolist()]
    return [int(v) for v in x] if isinstance(x, (list, tuple)) else [int(x)]


def _linear(module):
    """A call for one linear layer on (B, D) rows: the bare matmul for nn.Linear, else the module
    (a quantized or otherwise replaced layer keeps its own forward)."""
    if type(module) is torch.nn.Linear:
        # Detached: inference only (and ONNX tracing takes them as constants).
        w, b = module.weight.detach(), None if module.bias is None else module.bias.detach()
        return lambda x: F.linear(x, w, b)
    return module


def _fused_linear(modules):
    """q, k and v projections as one matmul when all three are plain nn.Linear (the same dot
    products, so the same numbers; tests check it); else the three calls, concatenated."""
    if all(type(m) is torch.nn.Linear for m in modules) and all(m.bias is not None for m in modules):
        w = torch.cat([m.weight.detach() for m in modules])  # (3 * H * Dh, D)
        b = torch.cat([m.bias.detach() for m in modules])
        return lambda x: F.linear(x, w, b)
    calls = [_linear(m) for m in modules]
    return lambda x: torch.cat([c(x) for c in calls], dim=-1)


def _norm(ln):
    shape, w, b, eps = ln.normalized_shape, ln.weight.detach(), ln.bias.detach(), ln.eps
    return lambda x: F.layer_norm(x, shape, w, b, eps)


class GreedyDecoder:
    """Greedy decoding of an I2HModel's BART decoder, token for token as `model.generate(do_sample=False,
    num_beams=1)`: the same matmuls and attention calls on (B, D) rows, minus the per-step machinery.

    Self-attention keys/values go into buffers allocated once per call (B, H, L, Dh) and are read as a
    prefix view; cross-attention keys/values are projected once from the encoder memory. The weights
    are captured when the decoder is built: build a new one after changing the model."""

    def __init__(self, model):
        reason = model_reason(model)
        if reason:
            raise FastPathUnsupported(reason)
        self.model = model
        text = model.text
        self.decoder = dec = text.model.decoder
        self.lm_head = _linear(text.lm_head)
        self.logits_bias = text.final_logits_bias.detach()  # (1, V)
        self.sdpa = text.config._attn_implementation == "sdpa"
        self.embed = dec.embed_tokens
        self.embed_scale = float(getattr(dec.embed_tokens, "embed_scale", 1.0) or 1.0)
        self.positions = dec.embed_positions.weight.detach()[dec.embed_positions.offset :]  # (L, D): BART's offset of 2
        self.norm_embed = _norm(dec.layernorm_embedding)
        self.layers = []
        for layer in dec.layers:
            a, c = layer.self_attn, layer.encoder_attn
            self.layers.append(dict(
                qkv=_fused_linear([a.q_proj, a.k_proj, a.v_proj]), width=a.k_proj.out_features,
                dh=a.head_dim, scale=a.scaling, out=_linear(a.out_proj), norm1=_norm(layer.self_attn_layer_norm),
                cq=_linear(c.q_proj), cdh=c.head_dim, cscale=c.scaling, cout=_linear(c.out_proj),
                norm2=_norm(layer.encoder_attn_layer_norm),
                fc1=_linear(layer.fc1), act=layer.activation_fn, fc2=_linear(layer.fc2), norm3=_norm(layer.final_layer_norm),
            ))

    # ---- one step ------------------------------------------------------------------------------
    def _attend(self, q, k, v, scaling):
        # q (B, H, 1, Dh); k, v (B, H, T, Dh) -> (B, H, 1, Dh): the call HF's attention interface makes.
        if self.sdpa:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, scale=scaling, is_causal=False)
        w = torch.matmul(q, k.transpose(2, 3)) * scaling
        return torch.matmul(F.softmax(w, dim=-1), v)

    def cross_kv(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Encoder memory (B, N, D) -> per layer the cross-attention (K, V), each (B, H, N, Dh)."""
        out = []
        B, N = memory.shape[:2]
        for layer in self.decoder.layers:
            a = layer.encoder_attn
            k = a.k_proj(memory).view(B, N, -1, a.head_dim).transpose(1, 2)
            v = a.v_proj(memory).view(B, N, -1, a.head_dim).transpose(1, 2)
            out.append((k, v))
        return out

    def step(self, ids: torch.Tensor, t: int, self_kv, cross) -> torch.Tensor:
        """Token ids (B,) at position t -> next-token logits (B, V) in float32; writes K/V at t."""
        B = ids.shape[0]
        x = self.embed(ids)  # (B, D), scaled as HF scales it
        x = self.norm_embed(x + self.positions[t])
        for p, (kc, vc), (ck, cv) in zip(self.layers, self_kv, cross):
            W, dh = p["width"], p["dh"]
            q, k, v = p["qkv"](x).split(W, dim=-1)  # (B, H * Dh) each
            kc[:, :, t] = k.view(B, -1, dh)
            vc[:, :, t] = v.view(B, -1, dh)
            h = self._attend(q.view(B, -1, 1, dh), kc[:, :, : t + 1], vc[:, :, : t + 1], p["scale"])
            x = p["norm1"](x + p["out"](h.reshape(B, -1)))
            q = p["cq"](x).view(B, -1, 1, p["cdh"])
            h = self._attend(q, ck, cv, p["cscale"])
            x = p["norm2"](x + p["cout"](h.reshape(B, -1)))
            x = p["norm3"](x + p["fc2"](p["act"](p["fc1"](x))))
        logits = self.lm_head(x) + self.logits_bias  # (B, V)
        return logits.to(dtype=torch.float32)

    # ---- the loop ------------------------------------------------------------------------------
    def start(self, memory: torch.Tensor, max_length: int):
        """Per-call state: cross K/V and empty self-attention K/V buffers, (B, H, L, Dh) per layer."""
        if max_length > self.positions.shape[0]:
            raise ValueError(f"{max_length - 1} new tokens exceed the decoder's {self.positions.shape[0]} positions; "
                             "lower max_new_tokens")
        B, dev = memory.shape[0], memory.device
        dtype = self.decoder.layernorm_embedding.weight.dtype
        cross = self.cross_kv(memory.to(dtype))
        self_kv = []
        for p in self.layers:  # H from k_proj's width: pruning may leave layers with different H
            shape = (B, p["width"] // p["dh"], max_length, p["dh"])
            self_kv.append((torch.empty(shape, dtype=dtype, device=dev), torch.empty(shape, dtype=dtype, device=dev)))
        return self_kv, cross

    @torch.inference_mode()
    def generate(self, pixel_values: torch.Tensor | None = None, memory: torch.Tensor | None = None,
                 stopping_criteria=None, streamer=None, **gen_kwargs) -> torch.Tensor:
        """Screenshots (B, 3, H, W) or encoder memory (B, N, D) -> token ids (B, T), decoder start first."""
        gc = resolve_generation(self.model, gen_kwargs)
        if memory is None:
            memory = self.model.encode(pixel_values)
        max_length = max_length_of(gc)
        self_kv, cross = self.start(memory, max_length)
        return greedy_loop(lambda ids, t: self.step(ids, t, self_kv, cross), gc, memory.shape[0], memory.device,
                           stopping_criteria, streamer)


def max_length_of(gc) -> int:
    """HF's length limit in decoder ids (the start token included)."""
    return gc.max_new_tokens + 1 if gc.max_new_tokens is not None else gc.max_length


def greedy_loop(step, gc, B: int, device, stopping_criteria=None, streamer=None) -> torch.Tensor:
    """HF's greedy search over `step(ids (B,), t) -> scores (B, V)`: its logits processors for these
    settings, its padding of finished rows and its stopping rules. Returns ids (B, T)."""
    start = gc.decoder_start_token_id if gc.decoder_start_token_id is not None else gc.bos_token_id
    eos = _as_list(gc.eos_token_id)
    pad = gc.pad_token_id if gc.pad_token_id is not None else (eos[0] if eos else None)
    max_length = max_length_of(gc)
    min_length = gc.min_length or 0
    min_new = gc.min_new_tokens or 0
    forced_bos, forced_eos = gc.forced_bos_token_id, _as_list(gc.forced_eos_token_id)
    out = torch.full((B, max(max_length, 1)), pad if pad is not None else 0, dtype=torch.long, device=device)
    out[:, 0] = start  # (B, L): the ids so far are out[:, :n]
    if streamer is not None:
        streamer.put(out[:, :1].cpu())
    eos_t = torch.tensor(eos, device=device) if eos else None
    unfinished = torch.ones(B, dtype=torch.long, device=device)  # 1 while a row is still decoding
    stops = list(stopping_criteria or [])
    n = 1
    cur = out[:, 0]
    for t in range(max_length - 1):
        scores = step(cur, t)  # (B, V)
        # The logits processors HF builds for these settings, in its order (n = its input length).
        if eos and (n < min_length or n - 1 < min_new):
            for e in eos:
                scores[:, e] = -float("inf")
        if forced_bos is not None and n == 1:
            scores = torch.full_like(scores, -float("inf"))
            scores[:, forced_bos] = 0
        if forced_eos and n == max_length - 1:
            scores = torch.full_like(scores, -float("inf"))
            for e in forced_eos:
                scores[:, e] = 0
        cur = torch.argmax(scores, dim=-1)
        if eos:
            cur = cur * unfinished + pad * (1 - unfinished)  # finished rows get padding
        out[:, n] = cur
        n += 1
        if streamer is not None:
            streamer.put(cur.cpu())
        done = ((cur == eos[0]) if len(eos) == 1 else torch.isin(cur, eos_t)) if eos else None
        for s in stops:
            flags = s(out[:, :n], None)
            done = flags if done is None else done | flags
        if done is not None:
            unfinished = unfinished * (~done).long()
            if not bool(unfinished.any()):
                break
    if streamer is not None:
        streamer.end()
    return out[:, :n]


def greedy_generate(model, pixel_values: torch.Tensor | None = None, memory: torch.Tensor | None = None,
                    **gen_kwargs) -> torch.Tensor:
    """`model.generate(pixel_values, do_sample=False, num_beams=1, **gen_kwargs)`, the same ids, faster."""
    return GreedyDecoder(model).generate(pixel_values, memory=memory, **gen_kwargs)
