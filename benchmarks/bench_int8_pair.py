"""fp32 vs int8 ONNX decoding of one model, timed in alternation so both see the same machine.

`i2h bench` times each variant in its own minute; on a shared machine the fp32/int8 ratio then moves with
the neighbours (1.85x-2.75x in three runs of the same code). Here one decoder step at a fixed position is
timed for fp32, then for each int8 block size, then fp32 again, several rounds; each round prints its ratios.

    python benchmarks/bench_int8_pair.py --model mnv3-distilbart --blocks 32 128 --rounds 5
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _session(d: Path, bundle, position: int, threads: int):
    """An ONNX Runtime decoder with every input bound once: a step at `position` with random caches."""
    import json

    import onnxruntime as ort
    from onnxruntime import OrtValue

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    dec = ort.InferenceSession(str(d / "decoder.onnx"), opts, providers=["CPUExecutionProvider"])
    enc = ort.InferenceSession(str(d / "encoder.onnx"), opts, providers=["CPUExecutionProvider"])
    meta = json.loads((d / "meta.json").read_text())
    cfg = bundle.model.config
    cross = enc.run(None, {"pixel_values": np.random.randn(1, 3, cfg.image.height, cfg.image.width).astype(np.float32)})
    io, keep = dec.io_binding(), list(cross)
    for out, arr in zip(enc.get_outputs(), cross):
        io.bind_ortvalue_input(out.name, OrtValue.ortvalue_from_numpy(arr))
    for i in range(2 * meta["layers"]):
        buf = np.random.randn(1, meta["heads"][i // 2], position + 1, meta["head_dim"][i // 2]).astype(np.float32)
        keep.append(buf)
        value = OrtValue.ortvalue_from_numpy(buf)
        w = ("k", "v")[i % 2]
        io.bind_ortvalue_input(f"past_{w}_{i // 2}", value)
        io.bind_ortvalue_output(f"present_{w}_{i // 2}", value)
    io.bind_cpu_input("input_ids", np.array([5]))
    io.bind_cpu_input("seqlens_k", np.array([position], np.int32))
    io.bind_cpu_input("total_sequence_length", np.array(position + 1, np.int32))
    io.bind_output("logits")
    for _ in range(3):
        dec.run_with_iobinding(io)
    return dec, io, keep


def _tok_s(sess, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        sess[0].run_with_iobinding(sess[1])
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mnv3-distilbart", help="a preset (random weights), 'default' or a model dir")
    ap.add_argument("--blocks", type=int, nargs="+", default=[32, 128], help="int8 block sizes to compare")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30, help="decoder steps timed per variant per round")
    ap.add_argument("--position", type=int, default=64, help="position of the timed token (cache length)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from i2h.bench import _make
    from i2h.export import quantize_onnx, write_onnx

    bundle = _make(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = write_onnx(bundle, Path(tmp) / "fp32")
        dirs = {"fp32": fp32}
        for b in args.blocks:
            import shutil

            d = Path(tmp) / f"int8-b{b}"
            shutil.copytree(fp32, d)
            quantize_onnx(d, b)
            dirs[f"int8-b{b}"] = d
        sessions = {k: _session(d, bundle, args.position, args.threads) for k, d in dirs.items()}
        ratios: dict[str, list[float]] = {k: [] for k in dirs if k != "fp32"}
        print(f"{args.model}: one decoder step at position {args.position}, batch 1, {args.threads} threads, "
              f"{args.steps} steps per variant per round")
        for r in range(args.rounds):
            speeds = {k: _tok_s(s, args.steps) for k, s in sessions.items()}
            fp = (speeds["fp32"] + _tok_s(sessions["fp32"], args.steps)) / 2  # fp32 before and after
            line = [f"round {r}: fp32 {fp:.1f} tok/s"]
            for k in ratios:
                ratios[k].append(speeds[k] / fp)
                line.append(f"{k} {speeds[k]:.1f} tok/s ({speeds[k] / fp:.2f}x)")
            print("; ".join(line))
        for k, v in ratios.items():
            print(f"{k} / fp32: median {statistics.median(v):.2f}x, range {min(v):.2f}-{max(v):.2f}x over {len(v)} rounds")


if __name__ == "__main__":
    main()
