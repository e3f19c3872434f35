"""CLI commands for evaluation: `score` (one page) and `eval` (a model and baselines over a data set)."""
from __future__ import annotations

import json
import sys


def _err(msg: str) -> None:
    print(f"i2h: error: {msg}", file=sys.stderr)


def register(sub) -> None:
    from .config import BACKENDS

    s = sub.add_parser("score", help="score one predicted HTML file against a reference (prints JSON)")
    s.add_argument("pred", metavar="PRED.html")
    s.add_argument("ref", metavar="REF.html|REF.png",
                   help="reference HTML (all scores) or screenshot (whole-page scores only)")
    s.add_argument("--clip", default=None, metavar="DIR_OR_HUB_ID", help="CLIP weights for the CLIP score")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per render (default 10)")
    s.set_defaults(func=cmd_score)

    e = sub.add_parser("eval", help="predict, render and score a data set; write metrics.json and report.html")
    e.add_argument("--model", default=None, help="model directory, preset or Hub id (omit to run only the baselines)")
    e.add_argument("--data", required=True, help="folder of <id>.png + <id>.html pairs, or Parquet shards")
    e.add_argument("--n", type=int, default=None, help="only the first N pages")
    e.add_argument("--out", required=True, help="folder for metrics.json, report.html and images/")
    e.add_argument("--train", default=None, help="training pages (folder or shards) for the nearest baseline")
    e.add_argument("--baselines", default="blank,nearest,oracle",
                   help="comma-separated from blank, nearest, oracle; '' for none (default: all three)")
    e.add_argument("--clip", default=None, metavar="DIR_OR_HUB_ID", help="CLIP weights for the CLIP score")
    e.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    e.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="decoding backend, as for `i2h generate` (onnx-int8: measure int8's quality change)")
    e.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per render (default 10)")
    e.add_argument("--no-progress", action="store_true")
    e.add_argument("--max-new-tokens", type=int, default=None, help="cap the model's output length (default: its own)")
    e.add_argument("--no-ground-text", action="store_true",
                   help="report only the model's own text (default: also model+ground, with OCR text put in)")
    e.set_defaults(func=cmd_eval)


def cmd_score(args) -> int:
    from .evaluate import DataError, score_files
    from .images import ImageError

    try:
        scores = score_files(args.pred, args.ref, clip=args.clip, timeout_s=args.timeout)
    except (DataError, ImageError, ValueError) as e:
        _err(str(e))
        return 2
    print(json.dumps(scores, indent=1))
    return 0


def cmd_eval(args) -> int:
    from .evaluate import DataError, evaluate
    from .images import ImageError
    from .metrics import ClipScorer

    if args.n is not None and args.n < 1:
        _err(f"--n {args.n}: give a positive number of pages")
        return 2
    try:
        predictor = None
        if args.model:
            from .cli_model import load_predictor

            try:
                predictor = load_predictor(args)
                if args.max_new_tokens:
                    predictor.generation["max_new_tokens"] = args.max_new_tokens
            except (OSError, RuntimeError, ValueError) as e:
                _err(f"--model {args.model}: cannot load ({e}); give a model directory, preset or Hub id")
                return 2
        clip = ClipScorer(args.clip, device=args.device) if args.clip else None
        baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
        grounder = None
        if predictor is not None and not args.no_ground_text:
            from .ground import make_grounder

            grounder = make_grounder()
        try:
            result = evaluate(predictor, args.data, args.out, n=args.n, train=args.train, baselines=baselines,
                              clip=clip, timeout_s=args.timeout, progress=not args.no_progress, grounder=grounder)
        finally:
            if grounder is not None:
                grounder.close()
    except (DataError, ImageError, ValueError) as e:
        _err(str(e))
        return 2
    for name, s in result["systems"].items():
        m = s["mean"]
        fields = " ".join(f"{k}={100 * m[k]:.1f}" for k in ("overall", "block_match", "text", "position", "color",
                                                               "visual", "clip") if m.get(k) is not None)
        print(f"{name:>12}: {fields}  render failures={len(s['render_failures'])}")
    print(f"wrote {args.out}/metrics.json and {args.out}/report.html "
          f"({result['n_pages']} pages, {result['seconds']:.0f} s)")
    return 0
