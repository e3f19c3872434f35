"""CLI command `i2h train`: the same entry point as `accelerate launch -m i2h.train`."""
from __future__ import annotations


def register(sub) -> None:
    from .train import add_arguments, run

    t = sub.add_parser("train", help="train a model from a YAML recipe (resumes from OUT/checkpoints)")
    add_arguments(t)
    t.set_defaults(func=run)
