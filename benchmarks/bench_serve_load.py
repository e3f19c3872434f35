"""Load test for `i2h serve`: N concurrent clients for a fixed time against 127.0.0.1; throughput, p50/p99, statuses.

Starts a real server (`python -m i2h serve`) on a free local port with a tiny random model, then runs two
phases: as many clients as the server admits (workers + queue: every request must succeed) and several
times that many (the surplus must be turned away with 503 and nothing else). All traffic stays on
127.0.0.1. Exits 1 if a phase shows a status it should not.

    python3 benchmarks/bench_serve_load.py --duration 10 --max-queue 4 --over-factor 3
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

PAGES = [
    "<html><head><style>body{margin:0;font-family:sans-serif}.hero{padding:40px;background:#1e3a8a;color:#fff}"
    "</style></head><body><nav><a href=\"#\">Home</a><a href=\"#\">Pricing</a></nav><div class=\"hero\">"
    "<h1>Build faster</h1><p>Ship your product in days.</p><button>Get started</button></div></body></html>",
    "<html><body class=\"bg-gray-100\"><header class=\"p-4 text-xl\">Blog</header><main class=\"grid gap-4\">"
    "<article><h2>Post one</h2><p>Lorem ipsum dolor sit amet.</p></article></main><footer>&copy; 2024</footer>"
    "</body></html>",
]
HOST = "127.0.0.1"  # the only address this script talks to


def make_model(out: Path) -> Path:
    """The `tiny` preset with random weights; EOS pushed down so every request decodes its full budget."""
    import torch

    from i2h.checkpoint import create, save
    from i2h.tokenizer import train_tokenizer

    torch.manual_seed(0)
    bundle = create("tiny", tokenizer=train_tokenizer(PAGES * 4, vocab_size=400))
    with torch.no_grad():
        bundle.model.text.final_logits_bias[0, bundle.generation["eos_token_id"]] = -30.0
    return save(bundle, out / "tiny")


def screenshot() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1280, 800), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 1280, 120), fill=(30, 58, 138))
    d.text((40, 200), "Build faster", fill="black")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def client(http, url: str, image: bytes, fields: dict, until: float, log: list, backoff: float) -> None:
    while time.monotonic() < until:
        t0 = time.perf_counter()
        try:
            r = await http.post(url, files={"image": ("shot.png", image, "image/png")}, data=fields)
            status = r.status_code
        except Exception as e:  # a transport failure is a result to report, not a crash of the benchmark
            status = type(e).__name__
        log.append((status, time.perf_counter() - t0))
        if status == 503:  # wait as told by Retry-After, up to `backoff` (0: hammer the server)
            await asyncio.sleep(min(backoff, float(r.headers.get("retry-after", 1))))


async def phase(base: str, clients: int, seconds: float, image: bytes, fields: dict, backoff: float) -> dict:
    import httpx

    log: list = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as http:
        t0 = time.monotonic()
        await asyncio.gather(*(client(http, base + "/v1/generate", image, fields, t0 + seconds, log, backoff)
                               for _ in range(clients)))
        wall = time.monotonic() - t0
    ok = sorted(dt for s, dt in log if s == 200)
    pct = lambda q: ok[min(len(ok) - 1, int(q * len(ok)))] * 1000 if ok else float("nan")  # noqa: E731
    return {"clients": clients, "wall": wall, "ok": len(ok), "rps": len(ok) / wall, "p50": pct(0.50),
            "p99": pct(0.99), "statuses": Counter(s for s, _ in log)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-queue", type=int, default=4)
    ap.add_argument("--over-factor", type=int, default=3, help="clients over the limit = factor x (workers + queue)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--backoff", type=float, default=0.05,
                    help="most seconds a client waits after a 503 (Retry-After, capped); small = more pressure")
    ap.add_argument("--model", default=None, help="a model directory (default: a fresh tiny random model)")
    args = ap.parse_args()
    capacity = args.workers + args.max_queue
    if not (0 < args.duration <= 300 and 1 <= capacity * args.over_factor <= 256):
        ap.error("keep it bounded: --duration up to 300 s and at most 256 clients")

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(make_model(Path(tmp)))
        port = free_port()
        cmd = [sys.executable, "-m", "i2h", "serve", "--model", model, "--host", HOST, "--port", str(port),
               "--workers", str(args.workers), "--max-queue", str(args.max_queue), "--log-level", "warning"]
        server = subprocess.Popen(cmd, env={**os.environ, "NO_PROXY": "*"})
        base = f"http://{HOST}:{port}"
        try:
            import httpx

            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(base + "/health", timeout=2, trust_env=False).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    print("the server did not start; see its output above", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            image, fields = screenshot(), {"max_new_tokens": str(args.max_new_tokens)}
            # One request first, so model warm-up does not land in the first phase's latencies.
            warm = httpx.post(base + "/v1/generate", files={"image": ("shot.png", image, "image/png")}, data=fields,
                              timeout=120, trust_env=False).json()
            print(f"server: workers={args.workers} max_queue={args.max_queue} (admits {capacity}); "
                  f"{warm['tokens']} tokens a request; {len(image):,}-byte 1280x800 PNG; {args.duration:g} s a phase")
            results = {}
            for name, n in (("under", capacity), ("over", capacity * args.over_factor)):
                results[name] = asyncio.run(phase(base, n, args.duration, image, fields, args.backoff))
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()

    print(f"\n{'phase':<6} {'clients':>7} {'ok/s':>7} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for name, r in results.items():
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(r["statuses"].items(), key=str))
        print(f"{name:<6} {r['clients']:>7} {r['rps']:>7.2f} {r['p50']:>8.0f} {r['p99']:>8.0f}  {statuses}")
    bad_under = set(results["under"]["statuses"]) - {200}
    bad_over = set(results["over"]["statuses"]) - {200, 503}
    if bad_under or bad_over:
        print(f"\nFAIL: unexpected statuses under the limit {sorted(bad_under, key=str)}, "
              f"over it {sorted(bad_over, key=str)}", file=sys.stderr)
        return 1
    print("\nOK: no errors under the queue limit; over it, only 503 (with Retry-After)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
