"""Inference benchmark: HF generate (baseline) vs the lean loop, int8, pruned and ONNX Runtime, beside the bandwidth bound."""
from __future__ import annotations

import copy
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

VARIANTS = ("hf", "fast", "int8", "pruned", "onnx", "onnx-int8")


def _now() -> float:
    return time.perf_counter()


def _best(fn, reps: int) -> float:
    """Fastest of `reps` timed calls (seconds): the least disturbed run on a shared machine."""
    best = float("inf")
    for _ in range(reps):
        t0 = _now()
        fn()
        best = min(best, _now() - t0)
    return best


def memory_bandwidth(mb: int = 256, reps: int = 5) -> float:
    """Read bandwidth in bytes/s: summing a buffer much larger than the caches (a GEMV reads its weights
    the same way, once per token)."""
    x = torch.ones(mb * (1 << 20) // 4)
    x.sum()
    return x.numel() * 4 / _best(lambda: x.sum(), reps)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def step_bytes(model, batch: int = 1, int8: bool | str = False, block: int = 32) -> dict:
    """Bytes one decoding step reads: every decoder weight matrix except the cross-attention K/V projections
    (applied once per page), the LM head, and the cached cross-attention K/V (B, H, N, Dh) per layer.
    int8=True counts the layers PyTorch quantized at one byte a weight; int8="all" counts every one so,
    plus a 4-byte scale per `block` weights (the ONNX export's block-wise int8)."""
    from torch import nn

    per = {True: 1.0, "all": 1.0 + 4 / block}.get(int8, 4.0)
    dec = model.text.model.decoder
    weights = 0
    for name, m in dec.named_modules():
        is_linear = type(m) is nn.Linear or type(m).__name__ == "Linear" and hasattr(m, "out_features")
        if is_linear and not name.endswith(("encoder_attn.k_proj", "encoder_attn.v_proj")):
            n = m.in_features * m.out_features
            weights += n * (per if int8 == "all" or int8 and type(m) is not nn.Linear else 4) + m.out_features * 4
    head = model.text.lm_head
    weights += head.in_features * head.out_features * (per if int8 == "all" or int8 and type(head) is not nn.Linear else 4)
    n_vis = model.config.image.height // 32 * (model.config.image.width // 32)
    d = model.text.config.d_model
    cross = len(dec.layers) * 2 * n_vis * d * 4 * batch
    return {"weights": weights, "cross_kv": cross, "total": weights + cross}


def _make(model_name: str):
    """A preset with random weights (seed 0), or "default" / a model directory with its own weights."""
    from .checkpoint import create, default_model_dir, load
    from .config import PRESETS
    from .tokenizer import default_tokenizer

    torch.manual_seed(0)
    if model_name in PRESETS:
        bundle = create(model_name, tokenizer=default_tokenizer())
    else:
        bundle = load(default_model_dir() if model_name == "default" else model_name)
    bundle.model.eval()
    bundle.model.text.generation_config.forced_eos_token_id = None  # as Predictor sets it
    return bundle


def _variant(base, kind: str, tmp: Path, int8_block: int = 32):
    """(bundle, decode function (memory or pixels, n_new, B) -> ids, encode function, files on disk)."""
    from .checkpoint import save

    if kind.startswith("onnx"):
        from .export import OnnxDecoder, write_onnx

        d = write_onnx(base, tmp / kind, int8=kind == "onnx-int8", int8_block=int8_block)
        dec = OnnxDecoder(base.model, d, threads=torch.get_num_threads())
        return dict(bundle=base, files=[d / "encoder.onnx", d / "decoder.onnx"], onnx=dec)
    bundle = base
    if kind in ("int8", "pruned"):
        bundle = copy.deepcopy(base)
        if kind == "int8":
            from .export import quantize_int8

            quantize_int8(bundle.model)
        else:
            from .prune import prune_ffn, prune_layers

            n = len(bundle.model.text.model.decoder.layers)
            prune_layers(bundle.model, max(1, n // 2))
            prune_ffn(bundle.model, bundle.model.text.config.decoder_ffn_dim // 2)
        bundle.model.eval()
    out = save(bundle, tmp / kind)
    return dict(bundle=bundle, files=[out / "model.safetensors"])


def _page_image():
    """The screenshot end-to-end timing starts from: examples/notes-app.png (1280x720) in a checkout, else a
    1280x720 page drawn here."""
    from PIL import Image, ImageDraw

    from .images import load_image

    ex = Path(__file__).resolve().parents[2] / "examples" / "notes-app.png"
    if ex.is_file():
        return load_image(ex)
    img = Image.new("RGB", (1280, 720), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, 1280, 64], fill="#1e3a8a")
    for i in range(12):
        d.text((80, 100 + 48 * i), f"Line {i} of a page", fill="black")
    return img


def _page(v: dict, model, base, image, tokens: int) -> None:
    """End to end for one page as i2h generate runs it: preprocess the screenshot, encode, decode exactly
    `tokens` tokens (EOS suppressed), detokenize and repair the HTML."""
    from .fast import greedy_generate
    from .generate import repair_html

    kw = dict(max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, num_beams=1)
    px = base.processor.batch([image])
    if "onnx" in v:
        ids = v["onnx"].generate(px, **kw)
    elif v.get("kind") == "hf":
        ids = model.generate(px, **kw)
    else:
        ids = greedy_generate(model, px, **kw)
    repair_html(base.tokenizer.decode(ids[0, 1:].tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False))


def bench_model(model_name: str = "small", variants=VARIANTS, new_tokens: int = 32, batch_sizes=(1, 8),
                reps: int = 2, page_tokens: int = 800, bandwidth: float | None = None, log=None,
                int8_block: int = 32) -> dict:
    """One model, every variant, in one run. Decoding is forced to `new_tokens` tokens (EOS suppressed
    with min_new_tokens) so every variant does the same work; greedy, no loop guard. End to end: one
    screenshot to repaired HTML with `page_tokens` tokens, timed once (0 skips it)."""
    from .export import file_size
    from .fast import greedy_generate

    bandwidth = bandwidth or memory_bandwidth()
    base = _make(model_name)
    cfg = base.model.config
    px1 = torch.randn(1, 3, cfg.image.height, cfg.image.width)
    page = _page_image()
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1)
    rows, ref_ids = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in variants:
            if log:
                log(f"[{model_name}] {kind} ...")
            rss0 = _rss()
            v = _variant(base, kind, Path(tmp), int8_block)
            v["kind"] = kind
            model = v["bundle"].model
            row = {"model": model_name, "variant": kind}
            with torch.inference_mode():
                if kind.startswith("onnx"):
                    enc = lambda px: v["onnx"].encode(px)  # noqa: E731
                else:
                    enc = lambda px: model.encode(px)  # noqa: E731
                enc(px1)
                row["encoder_ms"] = 1000 * _best(lambda: enc(px1), reps)
                for B in batch_sizes:
                    if B == batch_sizes[0]:  # the bandwidth read just before this row's timing, same conditions
                        row["bandwidth_gb_s"] = memory_bandwidth(reps=3) / 1e9
                    pxB = px1.expand(B, -1, -1, -1).contiguous()
                    if kind.startswith("onnx"):
                        cross = enc(pxB)
                        run = lambda: v["onnx"].generate(cross=cross, **kw)  # noqa: E731
                    else:
                        mem = model.encode(pxB)
                        if kind == "hf":
                            run = lambda: model.generate(None, memory=mem, **kw)  # noqa: E731
                        else:
                            run = lambda: greedy_generate(model, memory=mem, **kw)  # noqa: E731
                    ids = run()
                    if B == 1:
                        ref_ids.setdefault(kind, ids)
                    t = _best(run, reps)
                    row[f"tok_s_b{B}"] = new_tokens * B / t
                row["e2e_s_page"] = _best(lambda: _page(v, model, base, page, page_tokens), 1) if page_tokens else None
            row["rss_delta_mb"] = (_rss() - rss0) / 2**20
            row["disk_mb"] = sum(file_size(f) for f in v["files"]) / 2**20
            int8 = {"int8": True, "onnx-int8": "all"}.get(kind, False)
            sb = step_bytes(model, 1, int8=int8, block=int8_block)
            row["bytes_per_token_mb"] = sb["total"] / 2**20
            row["_bytes"] = sb["total"]
            if "hf" in ref_ids and kind in ("fast", "onnx"):  # the exact paths; int8 and pruned change the model
                row["same_tokens_as_hf"] = bool(torch.equal(ref_ids["hf"], ref_ids[kind]))
            rows.append(row)
            del v
    # Each row's bound uses the bandwidth read just before its own timing (this shared machine read
    # 25-55 GB/s over an hour); "of bound (best)" uses the best reading of the whole model run instead.
    best = max([bandwidth, memory_bandwidth()] + [r["bandwidth_gb_s"] * 1e9 for r in rows])
    for r in rows:
        b = r.pop("_bytes")
        r["bound_tok_s_b1"] = r["bandwidth_gb_s"] * 1e9 / b
        r["of_bound"] = r[f"tok_s_b{batch_sizes[0]}"] / r["bound_tok_s_b1"]
        r["of_bound_best"] = r[f"tok_s_b{batch_sizes[0]}"] * b / best
    bandwidth = best
    base_row = next((r for r in rows if r["variant"] == "hf"), None)
    for r in rows:
        if base_row:
            for k in [f"tok_s_b{B}" for B in batch_sizes]:
                r[f"x_hf_{k}"] = r[k] / base_row[k]
            if r["e2e_s_page"] and base_row["e2e_s_page"]:
                r["x_hf_e2e"] = base_row["e2e_s_page"] / r["e2e_s_page"]
    return {"model": model_name, "params": base.model.parameter_counts(), "new_tokens": new_tokens,
            "page_tokens": page_tokens, "bandwidth_gb_s": bandwidth / 1e9, "int8_block": int8_block, "rows": rows,
            "peak_rss_mb": _peak_rss() / 2**20}


def run(models=("default", "mnv3-distilbart"), variants=VARIANTS, new_tokens: int = 32, threads: int | None = None,
        batch_sizes=(1, 8), reps: int = 2, page_tokens: int = 800, log=None, int8_block: int = 32) -> dict:
    """The whole benchmark: the measured bandwidth, then each model's table."""
    if threads:
        torch.set_num_threads(threads)
    bw = memory_bandwidth()
    return {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "load_avg": os.getloadavg()},
        "bandwidth_gb_s": bw / 1e9,
        "models": [bench_model(m, variants, new_tokens, batch_sizes, reps, page_tokens, bw, log, int8_block)
                   for m in models],
    }


def format_table(result: dict) -> str:
    """Markdown tables, one per model, ratios against HF generate measured in the same run."""
    lines = [f"memory read bandwidth {result['bandwidth_gb_s']:.1f} GB/s; threads {result['machine']['torch_threads']}; "
             f"load average at start {', '.join(f'{x:.1f}' for x in result['machine']['load_avg'])}"]
    for m in result["models"]:
        bs = [k for k in m["rows"][0] if k.startswith("tok_s_b")]
        lines += ["", f"### {m['model']} ({m['params']['total'] / 1e6:.1f}M parameters; best bandwidth read {m['bandwidth_gb_s']:.1f} GB/s; "
                      f"{m['new_tokens']} new tokens "
                      f"forced; e2e = one 1280x720 screenshot to repaired HTML of {m['page_tokens']} tokens)", ""]
        head = ["variant", "encoder ms", *[f"tok/s b{k[7:]}" for k in bs], *[f"× hf b{k[7:]}" for k in bs],
                "e2e s/page", "× hf e2e", "disk MB", "RSS Δ MB", "MB read/token", "GB/s read", "bound tok/s b1",
                "of bound", "of best bound", "same tokens"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in m["rows"]:
            cells = [r["variant"], f"{r['encoder_ms']:.0f}", *[f"{r[k]:.1f}" for k in bs],
                     *[f"{r.get('x_hf_' + k, float('nan')):.2f}" for k in bs], f"{r['e2e_s_page']:.2f}" if r["e2e_s_page"] else "-",
                     f"{r['x_hf_e2e']:.2f}" if r.get("x_hf_e2e") else "-",
                     f"{r['disk_mb']:.1f}", f"{r['rss_delta_mb']:.0f}", f"{r['bytes_per_token_mb']:.1f}",
                     f"{r['bandwidth_gb_s']:.1f}", f"{r['bound_tok_s_b1']:.0f}", f"{100 * r['of_bound']:.0f}%",
                     f"{100 * r['of_bound_best']:.0f}%",
                     {True: "yes", False: "NO"}.get(r.get("same_tokens_as_hf"), "")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append(f"\nprocess peak RSS so far: {m['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


def to_json(result: dict) -> str:
    return json.dumps(result, indent=1, default=str)
