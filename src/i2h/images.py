"""Reading and validating screenshots; resizing and padding them to the model's input."""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError

# A full-page screenshot 1280 px wide and 40000 px tall is 51 M pixels; past this we refuse.
MAX_PIXELS = 64_000_000
# Checked by us with a clear message; PIL's own bomb check (warning, then error at 2x) is kept as a
# second line of defence at the same limit.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
PREPROCESSOR_FILE = "preprocessor_config.json"


class ImageError(ValueError):
    """A screenshot that cannot be used; the message names it and says what to do."""


def _name(src, name):
    if name:
        return name
    if isinstance(src, (str, Path)):
        return str(src)
    return "<image>"


def load_image(src, name: str | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open a screenshot (path, bytes, file object or PIL image) as RGB; odd but valid modes are converted."""
    label = _name(src, name)
    if isinstance(src, Image.Image):
        img = src
    else:
        if isinstance(src, (str, Path)):
            path = Path(src)
            if not path.exists():
                raise ImageError(f"{label}: no such file")
            if path.is_dir():
                raise ImageError(f"{label}: is a folder; give an image file")
            if path.stat().st_size == 0:
                raise ImageError(f"{label}: empty file; give a PNG, JPEG or WebP screenshot")
            data = path.read_bytes()
        elif isinstance(src, (bytes, bytearray)):
            data = bytes(src)
            if not data:
                raise ImageError(f"{label}: empty upload; give a PNG, JPEG or WebP screenshot")
        else:
            data = src.read()
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise ImageError(f"{label}: too many pixels (over {max_pixels:,}); crop or downscale it") from None
        except UnidentifiedImageError:
            raise ImageError(f"{label}: not an image (PIL cannot identify it); give a PNG, JPEG or WebP screenshot") from None
    w, h = img.size
    if w * h > max_pixels:
        raise ImageError(f"{label}: {w}x{h} is too many pixels (over {max_pixels:,}); crop or downscale it")
    if w == 0 or h == 0:
        raise ImageError(f"{label}: image has no pixels ({w}x{h})")
    try:
        img.load()
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageError(f"{label}: cannot decode the image ({e}); the file may be truncated or corrupt") from None
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency is composited onto white (how a browser shows it)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: scale to 8 bits by the image's own range rather than clipping.
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


@dataclass(frozen=True)
class ImageProcessor:
    """Screenshot -> normalised tensor (3, height, width).

    Resized to `width` with the aspect ratio kept; a shorter page is padded at the bottom with white,
    a taller one is cropped to its top `height` pixels (the model sees the first screenful(s))."""

    width: int
    height: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pad_value: int = 255

    def fit(self, img: Image.Image) -> Image.Image:
        """Resize (aspect kept), then pad or crop to (width, height); returns RGB."""
        img = to_rgb(img)
        w, h = img.size
        scale = self.width / w
        # Crop before resizing: no work spent on rows that are thrown away.
        keep_rows = min(h, max(1, round(self.height / scale)))
        if keep_rows < h:
            img = img.crop((0, 0, w, keep_rows))
        new_h = min(self.height, max(1, round(keep_rows * scale)))
        if (w, keep_rows) != (self.width, new_h):
            img = img.resize((self.width, new_h), Image.Resampling.BICUBIC, reducing_gap=3.0)
        if new_h < self.height:
            canvas = Image.new("RGB", (self.width, self.height), (self.pad_value,) * 3)
            canvas.paste(img, (0, 0))
            img = canvas
        return img

    def __call__(self, img: Image.Image) -> torch.Tensor:
        arr = np.asarray(self.fit(img), dtype=np.float32) / 255.0  # (H, W, 3)
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())  # (3, H, W)

    def batch(self, images) -> torch.Tensor:
        return torch.stack([self(img) for img in images])

    def save_pretrained(self, directory: str | Path) -> None:
        d = asdict(self)
        d["image_processor_type"] = "i2h"
        (Path(directory) / PREPROCESSOR_FILE).write_text(json.dumps(d, indent=2))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "ImageProcessor":
        d = json.loads((Path(directory) / PREPROCESSOR_FILE).read_text())
        d.pop("image_processor_type", None)
        return cls(width=int(d["width"]), height=int(d["height"]), mean=tuple(d["mean"]),
                   std=tuple(d["std"]), pad_value=int(d.get("pad_value", 255)))


def side_by_side(left: Image.Image, right: Image.Image, labels=("input", "generated"), width: int = 640) -> Image.Image:
    """Two screenshots at one width, next to each other under their labels: what a person compares."""
    from PIL import ImageDraw

    def fit(img):
        img = to_rgb(img)
        return img.resize((width, max(1, round(img.height * width / img.width))), Image.Resampling.BILINEAR)

    a, b = fit(left), fit(right)
    pad, head = 16, 28
    canvas = Image.new("RGB", (2 * width + 3 * pad, max(a.height, b.height) + head + 2 * pad), (236, 238, 242))
    draw = ImageDraw.Draw(canvas)
    for x, img, label in ((pad, a, labels[0]), (2 * pad + width, b, labels[1])):
        draw.text((x, pad // 2 + 4), label, fill=(40, 40, 40))
        canvas.paste(img, (x, pad + head - 8))
        draw.rectangle((x - 1, pad + head - 9, x + img.width, pad + head - 8 + img.height), outline=(160, 160, 170))
    return canvas
