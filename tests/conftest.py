"""Shared fixtures: a tiny tokenizer and a tiny random-initialised model, made fresh in tmp folders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if os.environ.get("I2H_SHARED_DATA"):
    SHARED_DATA = Path(os.environ["I2H_SHARED_DATA"])

SAMPLE_PAGES = [
    """<!DOCTYPE html>
<html><head><title>Acme</title>
<style>
  body { margin: 0; font-family: sans-serif; }
  .hero   { padding: 40px; background: #1e3a8a; color: white; }
</style></head>
<body>
  <nav class="flex  justify-between"><a href="#">Home</a> <a href="#">Pricing</a></nav>
  <div class="hero"><h1>Build faster</h1>
     <p>Ship   your product in days, not months.</p>
     <button class='btn'>Get started</button></div>
  <ul><li>One</li><li>Two</li><li>Three</li></ul>
  <!-- a comment -->
  <pre>  keep   this  </pre>
</body></html>""",
    """<html><body class="bg-gray-100"><header class="p-4 text-xl">Blog</header>
<main class="grid grid-cols-3 gap-4"><article><h2>Post one</h2><p>Lorem ipsum dolor sit amet.</p></article>
<article><h2>Post two</h2><p>Consectetur adipiscing elit.</p></article></main>
<footer class="text-center text-sm">&copy; 2024 Acme &amp; Co</footer></body></html>""",
]


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """ONNX exports the tests cause go to a folder of this session, not the user's ~/.cache/i2h."""
    os.environ["I2H_CACHE"] = str(tmp_path_factory.mktemp("i2h-cache"))
    yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from i2h.tokenizer import train_tokenizer

    return train_tokenizer(SAMPLE_PAGES * 4, vocab_size=400)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_tokenizer):
    import torch

    from i2h.checkpoint import create

    torch.manual_seed(0)
    return create("tiny", tokenizer=tiny_tokenizer)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_bundle) -> Path:
    from i2h.checkpoint import save

    return save(tiny_bundle, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def screenshot(tmp_path) -> Path:
    """A small page-like RGB screenshot."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 200), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 320, 30), fill=(30, 58, 138))
    d.text((10, 50), "Build faster", fill="black")
    path = tmp_path / "shot.png"
    img.save(path)
    return path
