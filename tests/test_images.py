"""Image files in and out: every mode loads, bad files give one clear error, writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from featurevis import FeaturevisError, load_image, save_image


def test_modes_load_as_rgb_unit_range(tmp_path):
    arr = (np.arange(12 * 10 * 3) % 256).astype(np.uint8).reshape(10, 12, 3)
    Image.fromarray(arr).save(tmp_path / "rgb.png")
    Image.fromarray(arr).convert("L").save(tmp_path / "grey.png")
    Image.fromarray(arr).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray((np.arange(120).reshape(10, 12) * 500).astype(np.uint16)).save(tmp_path / "deep.png")
    for name in ("rgb", "grey", "rgba", "deep"):
        t = load_image(tmp_path / f"{name}.png")
        assert t.shape == (1, 3, 10, 12) and t.min() >= 0 and t.max() <= 1, name
    assert load_image(tmp_path / "deep.png").max() > 0.9  # 16-bit range kept


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (20, 10))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90
    im.save(tmp_path / "o.jpg", exif=exif)
    assert load_image(tmp_path / "o.jpg").shape == (1, 3, 20, 10)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("hello"), "not an image"),
        (lambda p: p.write_bytes(_png_bytes()[:60]), "damaged or truncated"),
        (lambda p: Image.new("RGB", (1, 1)).save(p, format="PNG"), "need at least 2x2"),
    ],
)
def test_bad_files(tmp_path, make, message):
    p = tmp_path / "bad.png"
    make(p)
    with pytest.raises(FeaturevisError, match=message):
        load_image(p)


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_save_is_atomic_and_roundtrips(tmp_path):
    img = torch.rand(3, 16, 20)
    p = save_image(img, tmp_path / "a" / "x.png")
    assert p.exists() and not list(p.parent.glob("*.tmp"))
    torch.testing.assert_close(load_image(p)[0], img, atol=1 / 255, rtol=0)
