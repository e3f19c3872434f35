"""`i2h render` and `i2h data {synth,import,show,stats}`: parse arguments, call one library function each."""
from __future__ import annotations

import json
import sys


def _user_error(e: Exception) -> int:
    print(f"error: {e}", file=sys.stderr)
    return 2


def cmd_render(args) -> int:
    from .render import RenderError, render_files

    try:
        failed = render_files(args.html, args.out, width=args.width, full_page=args.full_page, timeout_s=args.timeout)
    except RenderError as e:
        return _user_error(e)
    return 1 if failed else 0


def cmd_synth(args) -> int:
    from .render import RenderError
    from .shards import ShardError, synth_shards

    try:
        summary = synth_shards(args.out, args.n, seed=args.seed, style=args.style, workers=args.workers, width=args.width, scale=args.scale)
    except (ShardError, RenderError, ValueError) as e:
        return _user_error(e)
    print(json.dumps(summary))
    return 0


def cmd_import(args) -> int:
    from .shards import ShardError, import_pairs

    try:
        summary = import_pairs(args.src, args.out)
    except ShardError as e:
        return _user_error(e)
    print(json.dumps(summary))
    return 0


def cmd_show(args) -> int:
    from .shards import ShardError, contact_sheet

    try:
        path = contact_sheet(args.dir, args.out, n=args.n)
    except ShardError as e:
        return _user_error(e)
    print(f"wrote {path}")
    return 0


def cmd_stats(args) -> int:
    from .shards import ShardError, shard_stats

    tokenizer = None
    try:
        from .tokenizer import default_tokenizer, load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else default_tokenizer()
    except FileNotFoundError as e:
        if args.tokenizer:
            return _user_error(e)
        print("note: no bundled tokenizer yet; token counts left out", file=sys.stderr)
    try:
        print(json.dumps(shard_stats(args.dir, tokenizer), indent=1))
    except ShardError as e:
        return _user_error(e)
    return 0


def register(sub) -> None:
    p = sub.add_parser("render", help="render HTML files to PNG screenshots, offline")
    p.add_argument("html", nargs="+", help="HTML files")
    p.add_argument("--out", required=True, help="folder for <name>.png")
    p.add_argument("--width", type=int, default=1280, help="viewport width in px (default 1280, as WebSight)")
    p.add_argument("--full-page", action="store_true", help="the whole page, not just the first 720 px")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per page before it is given up")
    p.set_defaults(func=cmd_render)

    data = sub.add_parser("data", help="make, import and inspect WebSight-format shards")
    dsub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    p = dsub.add_parser("synth", help="render N seeded synthetic pages into shards (resumable)")
    p.add_argument("--n", type=int, required=True, help="number of pages (indices 0..N-1)")
    p.add_argument("--out", required=True, help="shard folder; an existing one is extended")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", choices=["tailwind", "css", "mixed"], default="tailwind")
    p.add_argument("--workers", type=int, default=2, help="pages rendered at once")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--scale", type=float, default=1.0, help="screenshot pixels per CSS px (e.g. 0.4: 1280-px layout, 512-px image)")
    p.set_defaults(func=cmd_synth)

    p = dsub.add_parser("import", help="a folder of <id>.html + <id>.png pairs -> shards")
    p.add_argument("src", help="folder of pairs")
    p.add_argument("--out", required=True, help="shard folder")
    p.set_defaults(func=cmd_import)

    p = dsub.add_parser("show", help="contact sheet of a shard folder's first screenshots")
    p.add_argument("dir", help="shard folder")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--n", type=int, default=16)
    p.set_defaults(func=cmd_show)

    p = dsub.add_parser("stats", help="tokens, tags and image sizes per page")
    p.add_argument("dir", help="shard folder")
    p.add_argument("--tokenizer", help="tokenizer folder or tokenizer.json (default: the bundled one)")
    p.set_defaults(func=cmd_stats)
