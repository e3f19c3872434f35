"""CLI command `serve`: load a model once and serve the HTTP API and the web page."""
from __future__ import annotations

import sys


def _err(msg: str) -> None:
    print(f"i2h: error: {msg}", file=sys.stderr)


def register(sub) -> None:
    from .config import BACKENDS
    from .serve import Settings

    d = Settings()
    s = sub.add_parser("serve", help="HTTP API and web page: drop a screenshot, get its HTML",
                       description="Serve a model: the page at /, the API at /v1/generate, docs at /docs.")
    s.add_argument("--model", default=None, help="model directory, preset or Hub id (default: the bundled model)")
    s.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    s.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="decoding backend, as for `i2h generate`")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=d.workers, help=f"generations at once (default {d.workers})")
    s.add_argument("--max-queue", type=int, default=d.max_queue,
                   help=f"requests waiting for a worker before 503 (default {d.max_queue})")
    s.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / 1024 / 1024,
                   help=f"largest screenshot file (default {d.max_upload_bytes / 1024 / 1024:g})")
    s.add_argument("--max-pixels", type=int, default=d.max_pixels, help=f"largest image, width x height (default {d.max_pixels:,})")
    s.add_argument("--timeout", type=float, default=d.timeout_s, help=f"seconds per request, queueing included (default {d.timeout_s:g})")
    s.add_argument("--max-new-tokens-limit", type=int, default=d.max_new_tokens_limit,
                   help=f"most tokens a request may ask for (default {d.max_new_tokens_limit})")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from .checkpoint import CheckpointError
    from .cli_model import load_predictor
    from .serve import Settings, run

    flags = {"max_upload_bytes": "--max-upload-mb", "max_pixels": "--max-pixels", "workers": "--workers",
             "max_queue": "--max-queue", "timeout_s": "--timeout", "max_new_tokens_limit": "--max-new-tokens-limit"}
    try:
        settings = Settings(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                            workers=args.workers, max_queue=args.max_queue, timeout_s=args.timeout,
                            max_new_tokens_limit=args.max_new_tokens_limit, model_name=args.model or "default")
    except ValueError as e:
        name, _, rest = str(e).partition("=")  # "max_queue=-1: must be 0 or more"
        _err(f"{flags.get(name, name)} {rest}")
        return 2
    if not 0 <= args.port <= 65535:
        _err(f"--port {args.port}: give a port from 0 to 65535")
        return 2
    # Loaded here, before the server starts, so a bad --model is one clear line and not a server
    # that comes up and then fails every request.
    try:
        predictor = load_predictor(args)
    except (CheckpointError, RuntimeError, ValueError) as e:
        _err(str(e))
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"i2h: note: listening on {args.host}; the API has no authentication, put it behind a proxy "
              "that has", file=sys.stderr)
    run(predictor, settings, host=args.host, port=args.port, log_level=args.log_level)
    return 0
