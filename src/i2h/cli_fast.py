"""CLI commands for fast inference: `bench`, `export` (int8, ONNX) and `prune`."""
from __future__ import annotations

import sys
from pathlib import Path


def _err(msg: str) -> None:
    print(f"i2h: error: {msg}", file=sys.stderr)


def register(sub) -> None:
    b = sub.add_parser("bench", help="inference speed: HF generate vs lean loop, int8, pruned, ONNX (random weights)")
    b.add_argument("--model", nargs="+", default=["default", "mnv3-distilbart"], metavar="MODEL",
                   help="'default' (the bundled model), model directories, or presets built with random weights "
                        "(default: default mnv3-distilbart)")
    b.add_argument("--variants", default="hf,fast,int8,pruned,onnx,onnx-int8",
                   help="comma-separated from hf, fast, int8, pruned, onnx, onnx-int8")
    b.add_argument("--tokens", type=int, default=32, help="new tokens per decode, EOS suppressed (default 32)")
    b.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    b.add_argument("--threads", type=int, default=None, help="torch/ORT threads (default: torch's)")
    b.add_argument("--reps", type=int, default=2, help="timed repeats; the fastest counts (default 2)")
    b.add_argument("--page-tokens", type=int, default=800, help="tokens of one page for end-to-end (default 800)")
    b.add_argument("--int8-block", type=int, default=32, metavar="N", help="onnx-int8: weights per scale (default 32)")
    b.add_argument("--json", action="store_true", help="print JSON instead of tables")
    b.set_defaults(func=cmd_bench)

    e = sub.add_parser("export", help="write an int8 and/or ONNX model directory")
    e.add_argument("--model", default=None, help="model directory, preset or Hub id (default: the bundled model)")
    e.add_argument("--out", required=True)
    e.add_argument("--format", choices=["pytorch", "onnx"], default="pytorch")
    e.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="int8: pytorch format, dynamic int8 linear layers; onnx format, the decoder's weights "
                        "in int8 blocks")
    e.add_argument("--int8-block", type=int, default=32, metavar="N",
                   help="onnx int8: weights per scale, 16-256 (default 32; 128 is faster and coarser)")
    e.set_defaults(func=cmd_export)

    p = sub.add_parser("prune", help="structured and magnitude pruning of the decoder, with a recovery fine-tune")
    p.add_argument("--model", required=True, help="model directory or preset")
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, default=None, help="decoder layers to keep (spread evenly)")
    p.add_argument("--heads", type=int, default=None, help="attention heads to keep per decoder attention")
    p.add_argument("--ffn", type=int, default=None, help="FFN width to keep per decoder layer")
    p.add_argument("--sparsity", type=float, default=None, help="magnitude pruning: fraction of decoder weights zeroed")
    p.add_argument("--recover-data", default=None, help="shards/folder for the recovery fine-tune")
    p.add_argument("--recover-steps", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--eval-data", default=None, help="shards for a teacher-forced loss before and after")
    p.set_defaults(func=cmd_prune)


def cmd_bench(args) -> int:
    from .bench import VARIANTS, format_table, run, to_json

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or args.tokens < 1:
        _err(f"--variants {','.join(bad)}: choose from {', '.join(VARIANTS)}" if bad else "--tokens must be >= 1")
        return 2
    from .config import PRESETS

    unknown = [m for m in args.model if m not in PRESETS and m != "default" and not (Path(m) / "config.json").is_file()]
    if unknown:
        _err(f"--model {' '.join(unknown)}: give presets ({', '.join(PRESETS)}; built with random weights), "
             "'default' (the bundled model) or model directories")
        return 2
    log = None if args.json else (lambda s: print(s, file=sys.stderr))
    result = run(args.model, variants, args.tokens, args.threads, tuple(args.batch), args.reps, args.page_tokens, log,
                 int8_block=args.int8_block)
    print(to_json(result) if args.json else format_table(result))
    return 0


def _load(model):
    from .checkpoint import default_model_dir, load

    return load(model if model else default_model_dir())


def cmd_export(args) -> int:
    from .checkpoint import CheckpointError, save

    try:
        bundle = _load(args.model)
    except CheckpointError as e:
        _err(str(e))
        return 2
    if getattr(bundle.model, "optimized", {}).get("quantization"):
        _err(f"--model {args.model}: already quantized; export from the fp32 model")
        return 2
    if args.format == "onnx":
        from .export import export_onnx

        try:
            out = export_onnx(bundle, args.out, int8=args.quantize == "int8", int8_block=args.int8_block)
        except ValueError as e:
            _err(f"--model {args.model or 'default'}: {e}")
            return 2
    else:
        if args.quantize == "int8":
            from .export import quantize_int8

            quantize_int8(bundle.model)
        out = save(bundle, args.out)
    from .export import file_size

    print(f"wrote {out} ({args.format}, {args.quantize}, {file_size(out) / 2**20:.1f} MB)", file=sys.stderr)
    return 0


def cmd_prune(args) -> int:
    import time

    import torch

    from .checkpoint import CheckpointError, save
    from .fast import greedy_generate
    from . import prune as P

    if not any(x is not None for x in (args.layers, args.heads, args.ffn, args.sparsity)):
        _err("nothing to prune: give --layers, --heads, --ffn and/or --sparsity")
        return 2
    if args.recover_steps and not args.recover_data:
        _err("--recover-steps needs --recover-data (training shards)")
        return 2
    try:
        bundle = _load(args.model)
    except CheckpointError as e:
        _err(str(e))
        return 2
    model = bundle.model.eval()
    model.text.generation_config.forced_eos_token_id = None

    def measure(tag):
        cfg = model.config
        px = torch.zeros(1, 3, cfg.image.height, cfg.image.width)
        with torch.inference_mode():
            mem = model.encode(px)
            kw = dict(max_new_tokens=16, min_new_tokens=16)
            greedy_generate(model, memory=mem, **kw)
            t0 = time.perf_counter()
            greedy_generate(model, memory=mem, **kw)
            tok_s = 16 / (time.perf_counter() - t0)
        row = {"stage": tag, "decoder_params_M": P.decoder_params(model) / 1e6, "sparsity": P.sparsity(model),
               "tok_s_b1": tok_s}
        if args.eval_data:
            row["val_loss"] = P.teacher_forced_loss(bundle, args.eval_data)
        return row

    rows = [measure("before")]
    masks = None
    try:
        if args.layers is not None:
            print(f"kept decoder layers {P.prune_layers(model, args.layers)}", file=sys.stderr)
        if args.heads is not None:
            P.prune_heads(model, args.heads)
        if args.ffn is not None:
            P.prune_ffn(model, args.ffn)
        if args.sparsity is not None:
            masks = P.magnitude_masks(model, args.sparsity)
    except ValueError as e:
        _err(str(e))
        return 2
    rows.append(measure("pruned"))
    if args.recover_steps:
        P.recover(bundle, args.recover_data, args.recover_steps, lr=args.lr, masks=masks,
                  log=lambda s: print(s, file=sys.stderr))
        rows.append(measure("recovered"))
    out = save(bundle, args.out)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    print(f"wrote {Path(out)}", file=sys.stderr)
    return 0
