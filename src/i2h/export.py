"""Inference exports: int8 dynamic quantization (a loadable model directory) and ONNX with an ONNX Runtime decoder."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CONFIG_FILE, WEIGHTS_FILE, Bundle, CheckpointError, atomic_dir, save
from .fast import GreedyDecoder, greedy_loop, max_length_of, resolve_generation

INT8 = "int8-dynamic"
ONNX_DIR = "onnx"


# ---------------------------------------------------------------------------------------------
# int8: the text model's and the projection's nn.Linear layers become dynamically quantized linears
# (int8 weights per output channel, activations quantized per call); the CNN stays in fp32.

def int8_targets(model) -> list[str]:
    """Names of the linear layers int8 quantization replaces."""
    return [name for name, m in model.named_modules()
            if type(m) is nn.Linear and name.startswith(("text.", "projection."))]


def quantize_int8(model, names: list[str] | None = None):
    """Replace the linear layers (default: `int8_targets`) by int8 dynamic ones, in place; returns the model."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    names = int8_targets(model) if names is None else names
    if not names:
        raise ValueError("no linear layers to quantize (is the model already quantized?)")
    quantize_dynamic(model, {n: per_channel_dynamic_qconfig for n in names}, dtype=torch.qint8, inplace=True)
    model.optimized = {**getattr(model, "optimized", {}), "quantization": INT8, "int8_modules": list(names)}
    return model


def _float_tensors(model) -> dict[str, torch.Tensor]:
    # Parameters and buffers, each shared tensor once (tied embeddings); quantized layers hold theirs
    # as packed params, which named_parameters does not list.
    out = {n: p.detach() for n, p in model.named_parameters()}
    out.update({n: b.detach() for n, b in model.named_buffers()})
    return {n: t.contiguous() for n, t in out.items()}


def save_quantized(bundle: Bundle, out: str | Path) -> Path:
    """Write a quantized model directory that `i2h.checkpoint.load` reads (called by checkpoint.save)."""
    from safetensors.torch import save_file

    model = bundle.model
    spec = dict(model.optimized)
    tensors = _float_tensors(model)
    for name in spec["int8_modules"]:
        q = model.get_submodule(name)
        w = q.weight()  # per-channel qint8 (out, in)
        tensors[f"{name}.qweight"] = w.int_repr().contiguous()
        tensors[f"{name}.qscale"] = w.q_per_channel_scales().to(torch.float32).contiguous()
        tensors[f"{name}.qzero"] = w.q_per_channel_zero_points().to(torch.int64).contiguous()
        if q.bias() is not None:
            tensors[f"{name}.bias"] = q.bias().detach().contiguous()
    out = Path(out)
    with atomic_dir(out) as tmp:
        data = {"model_type": "i2h", "format_version": 1, "optimized": spec, **model.config.to_dict()}
        (tmp / CONFIG_FILE).write_text(json.dumps(data, indent=2, sort_keys=True))
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "quantization": INT8})
        bundle.tokenizer.save_pretrained(str(tmp))
        bundle.processor.save_pretrained(tmp)
        (tmp / "generation_config.json").write_text(json.dumps(bundle.generation, indent=2))
    return out


def load_optimized(model, where: Path, spec: dict, device="cpu") -> None:
    """Fill a freshly built model from an optimized directory (checkpoint.load calls this when config.json
    has an `optimized` entry): head pruning first (shapes), then the weights, then int8 layers."""
    from safetensors.torch import load_file

    from .prune import shrink_heads

    if spec.get("heads"):
        shrink_heads(model, {k: list(range(n)) for k, n in spec["heads"].items()})
    if spec.get("quantization") not in (None, INT8):
        raise CheckpointError(f"{where}: unknown quantization {spec['quantization']!r}; this i2h reads {INT8!r}")
    qnames = spec.get("int8_modules", []) if spec.get("quantization") == INT8 else []
    if not qnames:  # pruned only: an ordinary safetensors checkpoint of the smaller shapes
        from safetensors.torch import load_model

        missing, unexpected = load_model(model, str(where / WEIGHTS_FILE), strict=False, device=str(device))
        if missing or unexpected:
            raise CheckpointError(f"{where / WEIGHTS_FILE}: weights do not fit the config "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        model.optimized = dict(spec)
        return
    tensors = load_file(str(where / WEIGHTS_FILE), device=str(device))
    if qnames:
        quantize_int8(model, qnames)
    qkeys = {k for k in tensors if k.rsplit(".", 1)[0] in set(qnames)}
    floats = {k: v for k, v in tensors.items() if k not in qkeys}
    want = _float_tensors(model)
    missing = sorted(set(want) - set(floats))
    unexpected = sorted(set(floats) - set(want))
    if missing or unexpected:
        raise CheckpointError(f"{where / WEIGHTS_FILE}: weights do not fit the config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    with torch.no_grad():  # copied in place: load_state_dict would also visit the int8 layers' packed state
        for name, t in floats.items():
            want[name].copy_(t)
    for name in qnames:
        try:
            w = torch._make_per_channel_quantized_tensor(tensors[f"{name}.qweight"], tensors[f"{name}.qscale"].double(),
                                                         tensors[f"{name}.qzero"], 0)
        except KeyError as e:
            raise CheckpointError(f"{where / WEIGHTS_FILE}: int8 layer {name} is incomplete ({e})") from None
        model.get_submodule(name).set_weight_bias(w, tensors.get(f"{name}.bias"))
    model.optimized = dict(spec)


def file_size(path: str | Path) -> int:
    """Bytes on disk of a file or a folder (recursively)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------------
# ONNX: encoder.onnx (pixels -> cross-attention K/V of every decoder layer) and decoder.onnx (one token
# with past self-attention K/V -> logits and present K/V). Greedy search stays in Python (fast.greedy_loop).

class _OnnxEncoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.dec = GreedyDecoder(model)

    def forward(self, pixel_values):  # (B, 3, H, W) -> 2 * layers tensors (B, H, N, Dh)
        memory = self.model.encode(pixel_values)
        return tuple(t for kv in self.dec.cross_kv(memory) for t in kv)


class _OnnxDecoderStep(nn.Module):
    """The fast decoder's step with explicit caches: concatenation instead of in-place writes."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.g = GreedyDecoder(model)
        self.n = len(self.g.layers)

    def forward(self, ids, position, *caches):
        # ids (B,), position () int64; caches: n pairs past K/V (B, H, T, Dh), then n pairs cross K/V.
        g, n = self.g, self.n
        B = ids.shape[0]
        x = g.norm_embed(g.embed(ids) + g.positions[position])
        present = []
        for i, p in enumerate(g.layers):
            pk, pv, ck, cv = caches[2 * i], caches[2 * i + 1], caches[2 * n + 2 * i], caches[2 * n + 2 * i + 1]
            dh = p["dh"]
            q, k, v = p["qkv"](x).split(p["width"], dim=-1)
            k = torch.cat([pk, k.reshape(B, -1, 1, dh)], dim=2)
            v = torch.cat([pv, v.reshape(B, -1, 1, dh)], dim=2)
            present += [k, v]
            h = torch.softmax(torch.matmul(q.reshape(B, -1, 1, dh), k.transpose(2, 3)) * p["scale"], dim=-1) @ v
            x = p["norm1"](x + p["out"](h.reshape(B, -1)))
            q = p["cq"](x).reshape(B, -1, 1, p["cdh"])
            h = torch.softmax(torch.matmul(q, ck.transpose(2, 3)) * p["cscale"], dim=-1) @ cv
            x = p["norm2"](x + p["cout"](h.reshape(B, -1)))
            x = p["norm3"](x + p["fc2"](p["act"](p["fc1"](x))))
        logits = g.lm_head(x) + g.logits_bias
        return (logits, *present)


def export_onnx(bundle: Bundle, out: str | Path, opset: int = 17) -> Path:
    """Write a model directory (the PyTorch checkpoint, so it loads everywhere) plus onnx/encoder.onnx and
    onnx/decoder.onnx for `Predictor(..., backend="onnx")`."""
    import warnings

    model = bundle.model.eval()
    if getattr(model, "optimized", {}).get("quantization"):
        raise ValueError("export ONNX from the fp32 model; quantize the ONNX files with --quantize int8 instead")
    cfg = model.config
    out = Path(out)
    tmp_model = out.parent / f".{out.name}.pt-tmp"
    save(bundle, tmp_model)
    with atomic_dir(out) as tmp:
        for f in tmp_model.iterdir():
            f.rename(tmp / f.name)
        tmp_model.rmdir()
        d = tmp / ONNX_DIR
        d.mkdir()
        # eval(): the exporter restores each wrapper's mode afterwards, and a wrapper is born in training mode.
        enc, step = _OnnxEncoder(model).eval(), _OnnxDecoderStep(model).eval()
        n = step.n
        px = torch.zeros(1, 3, cfg.image.height, cfg.image.width)
        with torch.inference_mode():
            cross = enc(px)
        kv_names = [f"cross_{w}_{i}" for i in range(n) for w in ("k", "v")]
        past_names = [f"past_{w}_{i}" for i in range(n) for w in ("k", "v")]
        present_names = [f"present_{w}_{i}" for i in range(n) for w in ("k", "v")]
        heads = [p["width"] // p["dh"] for p in step.g.layers]
        past = [torch.zeros(1, heads[i // 2], 0, step.g.layers[i // 2]["dh"]) for i in range(2 * n)]
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(enc, (px,), str(d / "encoder.onnx"), dynamo=False, opset_version=opset,
                              input_names=["pixel_values"], output_names=kv_names,
                              dynamic_axes={"pixel_values": {0: "batch"}, **{k: {0: "batch"} for k in kv_names}})
            torch.onnx.export(step, (torch.zeros(1, dtype=torch.long), torch.tensor(0), *past, *cross),
                              str(d / "decoder.onnx"), dynamo=False, opset_version=opset,
                              input_names=["input_ids", "position", *past_names, *kv_names],
                              output_names=["logits", *present_names],
                              dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"},
                                            **{k: {0: "batch", 2: "past"} for k in past_names},
                                            **{k: {0: "batch", 2: "past1"} for k in present_names},
                                            **{k: {0: "batch"} for k in kv_names}})
        (d / "meta.json").write_text(json.dumps({"layers": n, "heads": heads,
                                                  "head_dim": [p["dh"] for p in step.g.layers]}, indent=2))
    return out


def quantize_onnx(onnx_dir: str | Path) -> None:
    """int8 dynamic quantization of both ONNX graphs' MatMul weights, in place (ONNX Runtime's quantizer)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    d = Path(onnx_dir)
    for name in ("encoder.onnx", "decoder.onnx"):
        tmp = d / f".{name}.tmp"
        quantize_dynamic(str(d / name), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        tmp.replace(d / name)


class OnnxDecoder:
    """Greedy decoding with ONNX Runtime: the same loop and settings as fast.GreedyDecoder."""

    def __init__(self, model, onnx_dir: str | Path, threads: int | None = None):
        import onnxruntime as ort

        d = Path(onnx_dir)
        if not (d / "decoder.onnx").exists():
            raise CheckpointError(f"{d.parent}: no ONNX export in it; make one with "
                                  f"`i2h export --format onnx --model {d.parent} --out DIR`")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.model = model
        self.encoder = ort.InferenceSession(str(d / "encoder.onnx"), opts, providers=["CPUExecutionProvider"])
        self.decoder = ort.InferenceSession(str(d / "decoder.onnx"), opts, providers=["CPUExecutionProvider"])
        self.meta = json.loads((d / "meta.json").read_text())
        self.kv_names = [o.name for o in self.encoder.get_outputs()]

    def encode(self, pixel_values: torch.Tensor) -> list:
        return self.encoder.run(None, {"pixel_values": pixel_values.numpy().astype("float32")})

    def generate(self, pixel_values: torch.Tensor | None = None, stopping_criteria=None, streamer=None,
                 cross: list | None = None, **gen_kwargs) -> torch.Tensor:
        """Screenshots (B, 3, H, W), or `cross` from `encode`, -> token ids (B, T)."""
        import numpy as np

        gc = resolve_generation(self.model, gen_kwargs)
        cross = self.encode(pixel_values) if cross is None else cross
        B = cross[0].shape[0]
        n = self.meta["layers"]
        feeds = {name: arr for name, arr in zip(self.kv_names, cross)}
        past = [np.zeros((B, self.meta["heads"][i // 2], 0, self.meta["head_dim"][i // 2]), np.float32)
                for i in range(2 * n)]
        past_names = [f"past_{w}_{i}" for i in range(n) for w in ("k", "v")]

        def step(ids, t):
            nonlocal past
            feeds.update(zip(past_names, past))
            feeds["input_ids"] = ids.numpy()
            feeds["position"] = np.array(t, dtype=np.int64)
            logits, *past = self.decoder.run(None, feeds)
            return torch.from_numpy(logits)

        if max_length_of(gc) > self.meta.get("max_positions", 1 << 30):
            raise ValueError("max_new_tokens exceeds the decoder's positions")
        return greedy_loop(step, gc, B, torch.device("cpu"), stopping_criteria, streamer)
