import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from i2h.images import ImageError, ImageProcessor, load_image


def _png_claiming(width, height) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb), without the pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]  # chunk type + 13 bytes of header data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "L", "1", "P", "CMYK", "I;16", "I", "F"])
def test_odd_modes_are_converted(mode, tmp_path):
    img = Image.new("RGB", (40, 30), (200, 100, 50)).convert(mode)
    if mode == "I;16":
        img = Image.fromarray((np.ones((30, 40)) * 40000).astype(np.uint16))
    path = tmp_path / f"x.{'tif' if mode in ('I;16', 'I', 'F', 'CMYK') else 'png'}"
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (40, 30)


def test_alpha_is_composited_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_image(img).getpixel((0, 0)) == (255, 255, 255)


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    good = io.BytesIO()
    Image.new("RGB", (200, 200), "red").save(good, "PNG")
    (tmp_path / "cut.png").write_bytes(good.getvalue()[:200])
    (tmp_path / "bomb.png").write_bytes(_png_claiming(30000, 30000))
    cases = {"missing.png": "no such file", "empty.png": "empty", "text.png": "not an image",
             "cut.png": "truncated", "bomb.png": "too many pixels"}
    for name, words in cases.items():
        with pytest.raises(ImageError, match=words) as info:
            load_image(tmp_path / name)
        assert name in str(info.value)


def _proc(w=64, h=64):
    return ImageProcessor(width=w, height=h, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def test_short_pages_are_padded_not_squashed():
    img = Image.new("RGB", (128, 32), (0, 0, 0))
    fitted = _proc().fit(img)
    assert fitted.size == (64, 64)
    assert fitted.getpixel((10, 10)) == (0, 0, 0)  # content scaled by 1/2 keeps the top 16 rows
    assert fitted.getpixel((10, 40)) == (255, 255, 255)  # white padding below


def test_tall_pages_are_cropped_to_the_top():
    img = Image.new("RGB", (128, 1000), (255, 255, 255))
    img.paste((0, 0, 255), (0, 0, 128, 128))  # the top screenful is blue
    fitted = _proc().fit(img)
    assert fitted.size == (64, 64)
    assert fitted.getpixel((30, 60))[2] > 200 and fitted.getpixel((30, 60))[0] < 50


def test_tensor_is_normalised_and_round_trips(tmp_path):
    proc = _proc(32, 48)
    t = proc(Image.new("RGB", (64, 96), (255, 255, 255)))
    assert t.shape == (3, 48, 32)
    assert float(t.max()) == pytest.approx(1.0)
    proc.save_pretrained(tmp_path)
    assert ImageProcessor.from_pretrained(tmp_path) == proc
