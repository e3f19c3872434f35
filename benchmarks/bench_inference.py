"""Inference speed of every decoding variant against HF generate, in one run (same as `i2h bench`).

    python benchmarks/bench_inference.py --model small mnv3-distilbart --tokens 32 --threads 2
"""
import sys

from i2h.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
