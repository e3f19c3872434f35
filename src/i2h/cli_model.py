"""CLI commands for models: `generate`, `model create|info`, `tokenizer train`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _err(msg: str) -> None:
    print(f"i2h: error: {msg}", file=sys.stderr)


def load_predictor(args):
    """The Predictor for a command's --model, --device and --backend; its notes (a first ONNX export) go to
    stderr. Raises what i2h.load raises; each command words the error for its own flags."""
    from .generate import load

    return load(args.model, device=args.device, backend=args.backend,
                log=lambda msg: print(f"i2h: {msg}", file=sys.stderr))


def register(sub) -> None:
    from .config import BACKENDS

    g = sub.add_parser("generate", help="screenshots -> HTML files")
    g.add_argument("images", nargs="+", metavar="IMAGE")
    g.add_argument("--model", default=None, help="model directory, preset or Hub id (default: the bundled model)")
    g.add_argument("--out", required=True, help="folder for <stem>.html")
    g.add_argument("--max-new-tokens", type=int, default=None)
    g.add_argument("--num-beams", type=int, default=None)
    g.add_argument("--sample", action="store_true", help="sample instead of greedy/beam search")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--batch-size", type=int, default=4)
    g.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    g.add_argument("--compare", action="store_true",
                   help="also write <stem>.compare.png: the input beside the rendered output")
    g.add_argument("--no-ground-text", action="store_true",
                   help="keep the model's own text (default: put the text OCR reads in the screenshot into the HTML)")
    g.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (default): the model's own choice, else ONNX Runtime (exported once into the cache, "
                        "the same greedy tokens as hf), else torch; onnx-int8: int8 weights; torch: the lean "
                        "PyTorch loop; hf: Hugging Face generate")
    g.set_defaults(func=cmd_generate)

    m = sub.add_parser("model", help="create or inspect a model").add_subparsers(dest="model_cmd", metavar="ACTION")
    c = m.add_parser("create", help="write a new model directory (random or pretrained weights)")
    c.add_argument("--preset", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the preset's)")
    c.add_argument("--pretrained", action="store_true", help="load the pretrained weights the preset names (needs the Hub)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field, e.g. image.width=640")
    c.set_defaults(func=cmd_model_create)
    i = m.add_parser("info", help="architecture and parameter counts")
    i.add_argument("model", help="model directory, preset or Hub id")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_model_info)

    t = sub.add_parser("tokenizer", help="train the HTML tokenizer").add_subparsers(dest="tok_cmd", metavar="ACTION")
    tt = t.add_parser("train", help="byte-level BPE on HTML files, folders or Parquet shards")
    tt.add_argument("sources", nargs="+", metavar="FILES_OR_SHARDS")
    tt.add_argument("--vocab-size", type=int, default=8192)
    tt.add_argument("--out", required=True)
    tt.add_argument("--no-normalize", action="store_true", help="train on the HTML as written")
    tt.set_defaults(func=cmd_tokenizer_train)


def parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_generate(args) -> int:
    from .checkpoint import CheckpointError
    from .images import ImageError

    try:
        predictor = load_predictor(args)
    except (CheckpointError, RuntimeError, ValueError) as e:
        _err(str(e))
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from .checkpoint import atomic_write_text

    from .ground import make_grounder

    grounder = make_grounder(enabled=not args.no_ground_text)
    failed = 0
    total = len(args.images)
    for start in range(0, total, args.batch_size):
        chunk = args.images[start : start + args.batch_size]
        results = predictor.predict_paths(
            chunk, max_new_tokens=args.max_new_tokens, num_beams=args.num_beams, do_sample=args.sample,
            temperature=args.temperature, top_p=args.top_p, seed=args.seed, ground=grounder,
        )
        for path, res in zip(chunk, results):
            if isinstance(res, ImageError):
                failed += 1
                _err(str(res))
                continue
            dest = out / f"{Path(path).stem}.html"
            atomic_write_text(dest, res.html)
            if args.compare:
                _write_compare(path, res.html, out / f"{Path(path).stem}.compare.png")
            note = " (hit the token limit: page may be incomplete)" if res.truncated else ""
            note += " (repetition loop cut)" if res.loop_cut else ""
            print(f"[{start + chunk.index(path) + 1}/{total}] {path} -> {dest}: {res.tokens} tokens, "
                  f"{res.seconds:.2f}s{note}", file=sys.stderr)
    if grounder is not None:
        grounder.close()
    if failed:
        _err(f"{failed} of {total} input(s) failed")
    return 1 if failed else 0


def _write_compare(image_path, html: str, dest: Path) -> None:
    """Render the output at the input's size (offline renderer) and save input | output side by side."""
    import os

    from .images import load_image, side_by_side
    from .render import Renderer

    shot = load_image(image_path)
    with Renderer(width=shot.width, height=min(shot.height, 4096), full_page=False, pool_size=1) as renderer:
        rendered = renderer.render(html)
    if rendered.error:
        _err(f"{image_path}: the output did not render ({rendered.error}); comparison shows a blank page")
    tmp = dest.with_name(f".{dest.name}.tmp.png")
    side_by_side(shot, rendered.image).save(tmp)
    os.replace(tmp, dest)


def cmd_model_create(args) -> int:
    from .checkpoint import CheckpointError, create, save
    from .config import ConfigError, get_preset
    from .tokenizer import load_tokenizer

    try:
        cfg = get_preset(args.preset)
        if args.set:
            cfg = cfg.replace(**parse_overrides(args.set))
        tok = load_tokenizer(args.tokenizer) if args.tokenizer else None
        bundle = create(cfg, tokenizer=tok, pretrained=args.pretrained)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        _err(str(e))
        return 2
    save(bundle, args.out)
    n = bundle.model.parameter_counts()["total"]
    print(f"wrote {args.out}: preset {args.preset}, {n / 1e6:.2f}M parameters, "
          f"{'pretrained' if args.pretrained else 'random'} weights", file=sys.stderr)
    return 0


def model_info(target: str) -> dict:
    """Architecture summary of a model directory, preset or Hub id."""
    from .checkpoint import CONFIG_FILE, resolve
    from .config import I2HConfig, get_preset
    from .model import I2HModel
    import torch

    where = resolve(target)
    if isinstance(where, str):
        cfg = get_preset(where)
    else:
        from .checkpoint import _upgrade

        cfg = I2HConfig.from_dict(_upgrade(json.loads((where / CONFIG_FILE).read_text())))
    with torch.device("meta"):  # sizes only: no memory, no weight init
        model = I2HModel(cfg, load_weights=False)
    counts = model.parameter_counts()
    return {
        "model": str(target),
        "preset": cfg.preset,
        "vision_encoder": f"{cfg.vision.kind}:{cfg.vision.name}",
        "text_model": f"{cfg.text.family}" + (f" ({cfg.text.name})" if cfg.text.name else " (from scratch)"),
        "visual_tokens_through_text_encoder": cfg.through_text_encoder,
        "input_size": [cfg.image.width, cfg.image.height],
        "vocab_size": cfg.vocab_size,
        "max_output_tokens": cfg.max_length,
        "parameters": counts,
    }


def cmd_model_info(args) -> int:
    from .checkpoint import CheckpointError

    try:
        info = model_info(args.model)
    except CheckpointError as e:
        _err(str(e))
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key != "parameters":
            print(f"{key:36s} {value}")
    print("parameters:")
    for part, n in info["parameters"].items():
        print(f"  {part:34s} {n:>13,d}  ({n / 1e6:.2f}M)")
    return 0


def cmd_tokenizer_train(args) -> int:
    from .tokenizer import iter_html_sources, save_tokenizer, train_tokenizer

    try:
        pages = list(iter_html_sources(args.sources))
    except (FileNotFoundError, OSError) as e:
        _err(str(e))
        return 2
    if not pages:
        _err("no HTML pages found in the sources given")
        return 2
    tok = train_tokenizer(pages, vocab_size=args.vocab_size, normalize=not args.no_normalize)
    save_tokenizer(tok, args.out)
    print(f"wrote {args.out}: {len(tok)} tokens, trained on {len(pages)} pages", file=sys.stderr)
    return 0
