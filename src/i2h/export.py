"""Inference exports: int8 model directories (PyTorch dynamic quantization) and ONNX (fp32 or block-wise int8) with an ONNX Runtime decoder."""
from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CONFIG_FILE, WEIGHTS_FILE, Bundle, CheckpointError, atomic_dir, atomic_write_text, save
from .fast import GreedyDecoder, greedy_loop, max_length_of, model_reason, resolve_generation

INT8 = "int8-dynamic"
ONNX_INT8_BLOCK = 32
ONNX_INT8 = f"int8-block{ONNX_INT8_BLOCK}"
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
# ONNX: encoder.onnx (pixels -> cross-attention K/V of every decoder layer) and decoder.onnx (one token ->
# logits). The self-attention cache is one buffer per layer and K/V, (B, H, L, Dh), allocated once per call:
# ONNX Runtime's GroupQueryAttention writes the new token's K/V into it in place (past and present bound to
# the same memory with IO binding), so a step reads the cache once and copies nothing, whatever its length.
# Greedy search stays in Python (fast.greedy_loop).

CACHE_FORMAT = "shared-buffer-gqa"


class _OnnxEncoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.dec = GreedyDecoder(model)

    def forward(self, pixel_values):  # (B, 3, H, W) -> per layer K^T (B, H, Dh, N) and V (B, H, N, Dh)
        memory = self.model.encode(pixel_values)
        return tuple(t for k, v in self.dec.cross_kv(memory) for t in (k.transpose(2, 3), v))


class _SelfAttention(torch.autograd.Function):
    """One decoding step's self-attention over a shared K/V buffer: traced as ONNX Runtime's
    com.microsoft GroupQueryAttention (K/V written at position seqlens_k, attention over total_len)."""

    @staticmethod
    def forward(ctx, q, k, v, past_k, past_v, seqlens_k, total_len, heads: int, scale: float):
        B, _, D = q.shape
        dh = D // heads
        t = int(total_len) - 1
        kc, vc = past_k.clone(), past_v.clone()
        kc[:, :, t] = k.view(B, heads, dh)
        vc[:, :, t] = v.view(B, heads, dh)
        w = torch.softmax(q.view(B, heads, 1, dh) @ kc[:, :, : t + 1].transpose(2, 3) * scale, dim=-1)
        return (w @ vc[:, :, : t + 1]).reshape(B, 1, D), kc, vc

    @staticmethod
    def symbolic(g, q, k, v, past_k, past_v, seqlens_k, total_len, heads, scale):
        out = g.op("com.microsoft::GroupQueryAttention", q, k, v, past_k, past_v, seqlens_k, total_len,
                   num_heads_i=heads, kv_num_heads_i=heads, scale_f=scale, outputs=3)
        for value, like in zip(out, (q, past_k, past_v)):  # the output types, for the exporter's shape inference
            value.setType(like.type())
        return out


class _OnnxDecoderStep(nn.Module):
    """The fast decoder's step (fast.GreedyDecoder.step) with its caches as inputs and outputs."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.g = GreedyDecoder(model)
        self.n = len(self.g.layers)

    def forward(self, ids, seqlens_k, total_len, *caches):
        # ids (B,) int64; seqlens_k (B,) int32 = position of this token; total_len () int32 = position + 1;
        # caches: n pairs of K/V buffers (B, H, L, Dh), then n pairs of cross K^T (B, H, Dh, N) / V (B, H, N, Dh).
        g, n = self.g, self.n
        B = ids.shape[0]
        x = g.norm_embed(g.embed(ids) + g.positions[seqlens_k.long()])
        present = []
        for i, p in enumerate(g.layers):
            pk, pv, ckt, cv = caches[2 * i], caches[2 * i + 1], caches[2 * n + 2 * i], caches[2 * n + 2 * i + 1]
            q, k, v = p["qkv"](x).split(p["width"], dim=-1)
            h, kc, vc = _SelfAttention.apply(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), pk, pv, seqlens_k,
                                             total_len, p["width"] // p["dh"], float(p["scale"]))
            present += [kc, vc]
            x = p["norm1"](x + p["out"](h.reshape(B, -1)))
            q = p["cq"](x).reshape(B, -1, 1, p["cdh"])
            h = torch.softmax(torch.matmul(q, ckt) * p["cscale"], dim=-1) @ cv
            x = p["norm2"](x + p["cout"](h.reshape(B, -1)))
            x = p["norm3"](x + p["fc2"](p["act"](p["fc1"](x))))
        logits = g.lm_head(x) + g.logits_bias
        return (logits, *present)


def _replace_graph(m, nodes: list, inits: dict, path: Path) -> None:
    """Give model `m` these nodes and the initializers they use, and write it over `path` (temp, then rename)."""
    import onnx

    used = {i for node in nodes for i in node.input}
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.initializer[:]
    m.graph.initializer.extend(t for name, t in inits.items() if name in used)
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save(m, str(tmp))
    tmp.replace(path)


def _weights_as_matmuls(path: Path) -> None:
    """Rewrite an exported graph in place so ONNX Runtime's quantizer and its MatMul kernels see the weights:
    traced weights arrive as Constant nodes and linears as Gemm(x, W, b, transB=1); make the large constants
    initializers and each such Gemm a MatMul with W transposed once, plus an Add of the bias."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    nodes = []
    for node in g.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            t = node.attribute[0].t
            if int(np.prod(t.dims)) >= 1024:
                arr = numpy_helper.to_array(t)
                inits[node.output[0]] = numpy_helper.from_array(arr, node.output[0])
                continue
        nodes.append(node)
    users: dict[str, int] = {}
    for node in nodes:
        for i in node.input:
            users[i] = users.get(i, 0) + 1
    out_nodes = []
    for node in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type == "Gemm" and attrs.get("transB") == 1 and not attrs.get("transA")
                and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and node.input[1] in inits):
            w = node.input[1]
            wt = f"{w}_T"
            if wt not in inits:
                inits[wt] = numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(inits[w]).T), wt)
            users[w] -= 1
            if len(node.input) > 2 and node.input[2]:
                mid = f"{node.output[0]}_mm"
                out_nodes.append(helper.make_node("MatMul", [node.input[0], wt], [mid], name=f"{node.name}_mm"))
                out_nodes.append(helper.make_node("Add", [mid, node.input[2]], list(node.output), name=f"{node.name}_bias"))
            else:
                out_nodes.append(helper.make_node("MatMul", [node.input[0], wt], list(node.output), name=node.name))
        else:
            out_nodes.append(node)
    _replace_graph(m, out_nodes, inits, path)


def write_onnx(bundle: Bundle, d: str | Path, int8: bool = False, opset: int = 17,
               int8_block: int = ONNX_INT8_BLOCK) -> Path:
    """encoder.onnx, decoder.onnx and meta.json of an fp32 model into the folder `d` (made if missing);
    `int8`: the decoder's weights in int8 blocks of `int8_block` (see quantize_onnx)."""
    import warnings

    model = bundle.model.eval()
    if getattr(model, "optimized", {}).get("quantization"):
        raise ValueError("export ONNX from the fp32 model; quantize the ONNX files with --quantize int8 instead")
    reason = model_reason(model)
    if reason:
        raise ValueError(f"ONNX export: {reason}")
    cfg = model.config
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    # eval(): the exporter restores each wrapper's mode afterwards, and a wrapper is born in training mode.
    enc, step = _OnnxEncoder(model).eval(), _OnnxDecoderStep(model).eval()
    n = step.n
    px = torch.zeros(1, 3, cfg.image.height, cfg.image.width)
    with torch.inference_mode():
        cross = enc(px)
    kv_names = [f"cross_{w}_{i}" for i in range(n) for w in ("kt", "v")]
    past_names = [f"past_{w}_{i}" for i in range(n) for w in ("k", "v")]
    present_names = [f"present_{w}_{i}" for i in range(n) for w in ("k", "v")]
    heads = [p["width"] // p["dh"] for p in step.g.layers]
    past = [torch.zeros(1, heads[i // 2], 4, step.g.layers[i // 2]["dh"]) for i in range(2 * n)]
    seqlens, total = torch.zeros(1, dtype=torch.int32), torch.tensor(1, dtype=torch.int32)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(enc, (px,), str(d / "encoder.onnx"), dynamo=False, opset_version=opset,
                          input_names=["pixel_values"], output_names=kv_names,
                          dynamic_axes={"pixel_values": {0: "batch"}, **{k: {0: "batch"} for k in kv_names}})
        torch.onnx.export(step, (torch.zeros(1, dtype=torch.long), seqlens, total, *past, *cross),
                          str(d / "decoder.onnx"), dynamo=False, opset_version=opset,
                          custom_opsets={"com.microsoft": 1},
                          input_names=["input_ids", "seqlens_k", "total_sequence_length", *past_names, *kv_names],
                          output_names=["logits", *present_names],
                          dynamic_axes={"input_ids": {0: "batch"}, "seqlens_k": {0: "batch"}, "logits": {0: "batch"},
                                        **{k: {0: "batch", 2: "max_length"} for k in past_names + present_names},
                                        **{k: {0: "batch"} for k in kv_names}})
    for name in ("encoder.onnx", "decoder.onnx"):
        _weights_as_matmuls(d / name)
    meta = {"layers": n, "heads": heads, "head_dim": [p["dh"] for p in step.g.layers], "cache": CACHE_FORMAT,
            "max_positions": int(step.g.positions.shape[0]), "quantization": None}
    (d / "meta.json").write_text(json.dumps(meta, indent=2))
    if int8:
        quantize_onnx(d, int8_block)
    return d


def export_onnx(bundle: Bundle, out: str | Path, opset: int = 17, int8: bool = False,
                int8_block: int = ONNX_INT8_BLOCK) -> Path:
    """Write a model directory (the PyTorch checkpoint, so it loads everywhere) plus onnx/encoder.onnx and
    onnx/decoder.onnx for `Predictor(..., backend="onnx")`; `int8` quantizes the decoder's MatMul weights."""
    out = Path(out)
    tmp_model = out.parent / f".{out.name}.pt-tmp"
    save(bundle, tmp_model)
    with atomic_dir(out) as tmp:
        for f in tmp_model.iterdir():
            f.rename(tmp / f.name)
        tmp_model.rmdir()
        write_onnx(bundle, tmp / ONNX_DIR, int8=int8, opset=opset, int8_block=int8_block)
    return out


def cache_root() -> Path:
    """Where i2h keeps what it derives from models (ONNX exports): $I2H_CACHE, else $XDG_CACHE_HOME/i2h,
    else ~/.cache/i2h."""
    import os

    if os.environ.get("I2H_CACHE"):
        return Path(os.environ["I2H_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "i2h"


def _onnx_ok(d: Path, int8: bool) -> bool:
    try:
        meta = json.loads((d / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    q = meta.get("quantization")
    precision_ok = str(q).startswith("int8-block") if int8 else q is None
    return meta.get("cache") == CACHE_FORMAT and precision_ok and (d / "decoder.onnx").exists()


def onnx_for(bundle: Bundle, model_dir: str | Path, int8: bool = False, log=None) -> Path:
    """The ONNX files for a model directory: its own onnx/ folder when that is a current export of the wanted
    precision, else an export made once into the cache (keyed by the weights' and config's contents)."""
    import hashlib

    model_dir = Path(model_dir)
    own = model_dir / ONNX_DIR
    if _onnx_ok(own, int8):
        return own
    h = hashlib.sha256(f"{CACHE_FORMAT}|{ONNX_INT8 if int8 else 'fp32'}|{torch.__version__}".encode())
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        with open(model_dir / name, "rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
    where = cache_root() / "onnx" / h.hexdigest()[:20]
    if _onnx_ok(where, int8):
        return where
    if log:
        log(f"exporting {model_dir} to ONNX{' (int8)' if int8 else ''} once; cached in {where}")
    with atomic_dir(where) as tmp:
        write_onnx(bundle, tmp, int8=int8)
    return where


def _matmul_nbits(path: Path, bits: int = 8, block: int = ONNX_INT8_BLOCK) -> int:
    """Every MatMul of the graph at `path` whose right side is a float weight (K, N) becomes ONNX Runtime's
    MatMulNBits (com.microsoft): the weight in `bits`-bit integers with one fp32 scale per `block` inputs of
    each output column (symmetric, zero point 2^(bits-1)), computed with int8 activations quantized per block
    (accuracy_level 4). Rewritten in place; returns how many MatMuls were replaced."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    qmax = 2 ** (bits - 1) - 1
    nodes, done = [], 0
    for node in g.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or len(w.dims) != 2 or w.data_type != onnx.TensorProto.FLOAT:
            nodes.append(node)
            continue
        W = numpy_helper.to_array(w).astype(np.float32)  # (K, N)
        K, N = W.shape
        kb = -(-K // block)
        Wt = np.zeros((N, kb * block), np.float32)
        Wt[:, :K] = W.T
        Wt = Wt.reshape(N, kb, block)
        scale = np.abs(Wt).max(-1) / qmax
        scale[scale == 0] = 1.0
        q = (np.clip(np.round(Wt / scale[..., None]), -qmax - 1, qmax) + 2 ** (bits - 1)).astype(np.uint8)
        name = node.name or node.output[0]
        inits[f"{name}_qB"] = numpy_helper.from_array(q, f"{name}_qB")
        inits[f"{name}_qS"] = numpy_helper.from_array(scale.astype(np.float32).reshape(-1), f"{name}_qS")
        nodes.append(helper.make_node("MatMulNBits", [node.input[0], f"{name}_qB", f"{name}_qS"], list(node.output),
                                      name=f"{name}_q", domain="com.microsoft", K=K, N=N, bits=bits,
                                      block_size=block, accuracy_level=4))
        done += 1
    if not any(o.domain == "com.microsoft" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _replace_graph(m, nodes, inits, path)
    return done


def quantize_onnx(onnx_dir: str | Path, block: int = ONNX_INT8_BLOCK) -> None:
    """int8 weights for the decoder graph's linear layers (MatMulNBits, one fp32 scale per `block` weights:
    32 keeps the default model's greedy page token for token, 128 is faster and coarser), in place. The
    decoder only: its weights are read once per token; the encoder's once per page, where int8 would save
    milliseconds and perturb every token after."""
    if block not in (16, 32, 64, 128, 256):
        raise ValueError(f"int8 block size {block}: choose 16, 32, 64, 128 or 256")
    d = Path(onnx_dir)
    if not _matmul_nbits(d / "decoder.onnx", 8, block):
        raise ValueError(f"{d / 'decoder.onnx'}: no fp32 MatMul weights to quantize (already quantized?)")
    meta = json.loads((d / "meta.json").read_text())
    meta["quantization"] = f"int8-block{block}"
    atomic_write_text(d / "meta.json", json.dumps(meta, indent=2))


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 1


@contextlib.contextmanager
def _torch_single_threaded():
    """PyTorch on one thread while ONNX Runtime decodes: the loop's few torch ops (argmax over (B, V)) would
    otherwise wake PyTorch's spinning worker threads on the cores ONNX Runtime is using (batch 8 decoded at
    941 tokens/s with them, 2655 without). Counted, so overlapping decodes restore the setting once."""
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


class OnnxDecoder:
    """Greedy decoding with ONNX Runtime: the same loop and settings as fast.GreedyDecoder, the inputs
    and the K/V buffers bound once per call (IO binding), each step writing into them in place."""

    def __init__(self, model, onnx_dir: str | Path, threads: int | None = None):
        import onnxruntime as ort

        d = Path(onnx_dir)
        if not (d / "decoder.onnx").exists():
            raise CheckpointError(f"{d.parent}: no ONNX export in it; make one with "
                                  f"`i2h export --format onnx --model {d.parent} --out DIR`")
        self.meta = json.loads((d / "meta.json").read_text())
        if self.meta.get("cache") != CACHE_FORMAT:
            raise CheckpointError(f"{d}: an ONNX export from an older i2h (its cache format is "
                                  f"{self.meta.get('cache', 'concat')!r}); export it again with `i2h export --format onnx`")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.model = model
        self.encoder = ort.InferenceSession(str(d / "encoder.onnx"), opts, providers=["CPUExecutionProvider"])
        self.decoder = ort.InferenceSession(str(d / "decoder.onnx"), opts, providers=["CPUExecutionProvider"])
        self.kv_names = [o.name for o in self.encoder.get_outputs()]

    def encode(self, pixel_values: torch.Tensor) -> list:
        return self.encoder.run(None, {"pixel_values": pixel_values.numpy().astype("float32")})

    def generate(self, pixel_values: torch.Tensor | None = None, stopping_criteria=None, streamer=None,
                 cross: list | None = None, **gen_kwargs) -> torch.Tensor:
        """Screenshots (B, 3, H, W), or `cross` from `encode`, -> token ids (B, T)."""
        import numpy as np
        from onnxruntime import OrtValue

        gc = resolve_generation(self.model, gen_kwargs)
        cross = self.encode(pixel_values) if cross is None else cross
        B = cross[0].shape[0]
        n, L = self.meta["layers"], max_length_of(gc)
        if L - 1 > self.meta["max_positions"]:
            raise ValueError(f"{L - 1} new tokens exceed the decoder's {self.meta['max_positions']} positions; "
                             "lower max_new_tokens")
        io = self.decoder.io_binding()
        for name, arr in zip(self.kv_names, cross):
            io.bind_ortvalue_input(name, OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr)))
        for i in range(2 * n):  # one buffer per K/V: past and present are the same memory
            buf = OrtValue.ortvalue_from_numpy(
                np.zeros((B, self.meta["heads"][i // 2], L, self.meta["head_dim"][i // 2]), np.float32))
            w, layer = ("k", "v")[i % 2], i // 2
            io.bind_ortvalue_input(f"past_{w}_{layer}", buf)
            io.bind_ortvalue_output(f"present_{w}_{layer}", buf)
        ids, seqlens, total = np.zeros(B, np.int64), np.zeros(B, np.int32), np.zeros((), np.int32)
        logits = np.empty((B, self.model.text.lm_head.out_features), np.float32)
        for name, arr in (("input_ids", ids), ("seqlens_k", seqlens), ("total_sequence_length", total)):
            io.bind_ortvalue_input(name, OrtValue.ortvalue_from_numpy(arr))  # the arrays' memory, refilled below
        io.bind_ortvalue_output("logits", OrtValue.ortvalue_from_numpy(logits))
        scores = torch.from_numpy(logits)

        def step(cur, t):
            ids[:] = cur.numpy()
            seqlens[:] = t
            total[...] = t + 1
            self.decoder.run_with_iobinding(io)
            return scores

        with _torch_single_threaded():
            return greedy_loop(step, gc, B, torch.device("cpu"), stopping_criteria, streamer)
