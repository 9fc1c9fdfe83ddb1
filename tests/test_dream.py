"""DeepDream: the layer's objective grows while the photo stays recognizable; tiles, guides,
masks, zoom sequences and the CLI's one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import featurevis as fv
from featurevis import objectives as O
from featurevis.cli import main
from featurevis.core.tiling import tile_boxes, tiled_gradient, tiled_value
from featurevis.recipes.dream import dream_terms, load_mask, octave_shapes, save_video, zoom_in

pytestmark = pytest.mark.usefixtures("one_thread")


def small(photo: torch.Tensor, height: int) -> torch.Tensor:
    h, w = photo.shape[-2:]
    return F.interpolate(photo, size=(height, round(w * height / h)), mode="bilinear", antialias=True)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    metrics = pytest.importorskip("skimage.metrics")
    return metrics.structural_similarity(
        a[0].permute(1, 2, 0).numpy(), b[0].permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0
    )


# -- tiles ------------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w,tile", [(10, 10, 16), (100, 37, 16), (513, 1024, 512), (7, 300, 64)])
def test_tile_boxes_partition_the_image(h, w, tile):
    boxes = tile_boxes(h, w, tile)
    cover = torch.zeros(h, w, dtype=torch.int32)
    for y0, y1, x0, x1 in boxes:
        assert 0 < y1 - y0 <= tile and 0 < x1 - x0 <= tile
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()


def test_one_tile_gradient_is_the_plain_gradient(tiny):
    x = torch.rand(1, 3, 24, 20)
    obj = O.layer("conv2")
    grad, value = tiled_gradient(tiny, obj, x, tile=64)
    xr = x.clone().requires_grad_(True)
    v = obj(tiny(xr, ["conv2"]))
    v.sum().backward()
    torch.testing.assert_close(value, v.detach())
    torch.testing.assert_close(grad, xr.grad)


def test_shifted_tiles_are_the_tiles_of_the_rolled_image(tiny):
    """A shift cuts the tiles as a roll would, and sends each gradient back where its pixels
    came from, without a rolled copy of the image."""
    x = torch.rand(1, 3, 40, 56)
    obj = O.layer("conv2")
    grad, value = tiled_gradient(tiny, obj, x, tile=16, shift=(13, 30))
    grad_rolled, value_rolled = tiled_gradient(tiny, obj, torch.roll(x, (13, 30), dims=(-2, -1)), tile=16)
    torch.testing.assert_close(value, value_rolled)
    torch.testing.assert_close(grad, torch.roll(grad_rolled, (-13, -30), dims=(-2, -1)))
    assert not torch.allclose(value, tiled_value(tiny, obj, x, tile=16))  # the seams did move


def test_tiled_value_is_the_area_weighted_mean_of_tiles(tiny):
    x = torch.rand(1, 3, 30, 50)
    obj = O.channel("conv3", 2)
    parts = [
        (y1 - y0) * (x1 - x0) * obj(tiny(x[..., y0:y1, x0:x1], ["conv3"])) for y0, y1, x0, x1 in tile_boxes(30, 50, 16)
    ]
    torch.testing.assert_close(tiled_value(tiny, obj, x, tile=16), sum(parts) / (30 * 50))


def test_tiles_bound_what_the_network_sees(tiny):
    """Memory is bounded: whatever the image size, the network never sees more than a tile."""
    tiny.layers()  # the layout probe runs at the model's own input size, once
    seen: list[tuple[int, int]] = []
    hook = tiny.net.conv1.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape[-2:])))
    try:
        r = fv.dream(tiny, torch.rand(1, 3, 90, 130), "conv2", octaves=2, steps=3, tile=32, progress=False)
    finally:
        hook.remove()
    assert r.image.shape == (1, 3, 90, 130)
    assert seen and max(max(s) for s in seen) <= 32
    assert r.after > r.before


# -- the recipe ---------------------------------------------------------------------------------
def test_octave_shapes_end_at_the_photo_size():
    assert octave_shapes(300, 400, 4, 1.4)[-1] == (300, 400)
    assert [s[0] for s in octave_shapes(300, 400, 4, 2.0)] == [38, 75, 150, 300]
    assert octave_shapes(20, 30, 4, 1.4) == [(20, 30)]  # octaves too small to see are skipped


def test_dream_keeps_size_range_and_is_reproducible(tiny):
    x = torch.rand(1, 3, 67, 93)
    a = fv.dream(tiny, x, "conv2", octaves=3, steps=4, seed=3, progress=False)
    b = fv.dream(tiny, x, "conv2", octaves=3, steps=4, seed=3, progress=False)
    c = fv.dream(tiny, x, "conv2", octaves=3, steps=4, seed=4, progress=False)
    assert a.image.shape == x.shape and a.image.min() >= 0 and a.image.max() <= 1
    torch.testing.assert_close(a.image, b.image)
    assert not torch.equal(a.image, c.image)
    assert a.after > a.before and a.settings["octaves"] == 3


def test_dream_raises_the_layer_many_fold_and_stays_the_photo(lite0, photos):
    """Default settings on a real photo: the objective grows severalfold, structure survives."""
    x = small(photos["coffee"], 160)
    r = fv.dream(lite0, x, progress=False)
    assert r.objective == "_blocks.10"
    assert r.gain > 2.0, r
    s = ssim(x, r.image)
    assert 0.3 < s < 0.95, s  # visibly dreamed, still the photo


def test_weighted_layers_and_targets_parse(lite0):
    terms = dream_terms(lite0, "_blocks.6=1,_blocks.9=0.5")
    assert [(w, o.name) for w, o in terms] == [(1.0, "_blocks.6"), (0.5, "_blocks.9")]
    assert [o.name for _, o in dream_terms(lite0, "_blocks.8:12@3,4,_blocks.8:random=7")] == [
        "_blocks.8:12@3,4",
        "_blocks.8:direction",
    ]
    assert dream_terms(lite0, {"_blocks.2": 2.0})[0][0] == 2.0
    assert dream_terms(lite0, "class:285")[0][1].name == "logit:285"  # a dream reads the logit
    with pytest.raises(fv.FeaturevisError, match="malformed layer weight"):
        dream_terms(lite0, "_blocks.6=lots")
    with pytest.raises(fv.FeaturevisError, match="unknown layer"):
        dream_terms(lite0, ["_blocks.66"])


def test_controlled_dream_raises_its_own_channel(lite0, photos):
    """A channel objective makes a controlled dream: that channel, not another, is amplified."""
    x = small(photos["astronaut"], 96)
    a, b = O.channel("_blocks.8", 12), O.channel("_blocks.8", 40)
    ra = fv.dream(lite0, x, a, octaves=2, progress=False)
    rb = fv.dream(lite0, x, "_blocks.8:40", octaves=2, progress=False)
    assert ra.objective == "_blocks.8:12" and ra.after > ra.before
    assert float(tiled_value(lite0, a, ra.image)) > float(tiled_value(lite0, a, rb.image))
    assert float(tiled_value(lite0, b, rb.image)) > float(tiled_value(lite0, b, ra.image))


def test_guided_dream_moves_features_toward_the_guide(lite0, photos):
    """Each guided dream ends nearer its own guide's features than the dream guided elsewhere."""
    x = small(photos["coffee"], 128)
    guides = {name: small(photos[name], 128) for name in ("chelsea", "rocket")}
    layer = "_blocks.10"

    def signature(img: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return lite0(img, [layer])[layer].mean((2, 3))[0]

    def sim(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(F.cosine_similarity(signature(a), signature(b), dim=0))

    dreams = {n: fv.dream(lite0, x, layer, guide=g, octaves=3, progress=False).image for n, g in guides.items()}
    for name, guide in guides.items():
        other = next(n for n in guides if n != name)
        assert sim(dreams[name], guide) > sim(x, guide) + 0.05
        assert sim(dreams[name], guide) > sim(dreams[other], guide) + 0.05


def test_guide_needs_whole_layers(tiny):
    with pytest.raises(fv.FeaturevisError, match="guide works with whole layers"):
        fv.dream(tiny, torch.rand(1, 3, 32, 32), "conv2:1", guide=torch.rand(1, 3, 32, 32), progress=False)


def test_mask_leaves_the_unmasked_region_unchanged(tiny):
    x = torch.rand(1, 3, 40, 60)
    mask = torch.zeros(40, 60)
    mask[:, 30:] = 1
    r = fv.dream(tiny, x, "conv2", mask=mask, octaves=3, steps=6, progress=False)
    assert torch.equal(r.image[..., :30], x[..., :30])
    assert (r.image[..., 32:] - x[..., 32:]).abs().mean() > 0.02


def test_mask_from_a_file_is_resized(tmp_path):
    Image.fromarray((torch.linspace(0, 255, 20).repeat(10, 1)).byte().numpy(), "L").save(tmp_path / "m.png")
    m = load_mask(tmp_path / "m.png", (5, 40))
    assert m.shape == (1, 1, 5, 40) and m[..., 0].max() < 0.1 and m[..., -1].min() > 0.9


def test_ctrl_c_in_an_octave_stops_the_whole_dream(tiny):
    """Ctrl-C is the loop's (tests/test_engine.py); the dream forwards it: the octave it hit
    ends, no later octave takes a step, and the dream so far comes back flagged."""
    steps_at: list[tuple[int, int]] = []

    def interrupting(acts):
        if torch.is_grad_enabled():  # a gradient step, not an evaluation
            steps_at.append(tuple(acts["input"].shape[-2:]))
            if len(steps_at) == 7:
                raise KeyboardInterrupt
        return acts["conv2"].pow(2).flatten(1).mean(1)

    obj = fv.Objective(interrupting, frozenset({"conv2"}), "interrupting", (("conv2", None),))
    x = torch.rand(1, 3, 48, 48)
    r = fv.dream(tiny, x, obj, octaves=3, steps=10, progress=False)
    assert r.interrupted and r.image.shape == x.shape
    assert not torch.equal(r.image, x)
    assert len(steps_at) == 7 and set(steps_at) == {(34, 34)}  # the first of two octaves only


# -- zoom ---------------------------------------------------------------------------------------
def test_zoom_sequence_and_gif(tiny, tmp_path):
    x = torch.rand(1, 3, 32, 48)
    seen = []
    frames = fv.dream_zoom(
        tiny, x, 3, zoom=1.2, layers="conv2", octaves=1, steps=2, on_frame=lambda i, f: seen.append(i)
    )
    assert len(frames) == 3 and seen == [0, 1, 2] and all(f.shape == x.shape for f in frames)
    assert zoom_in(x, 1.0).allclose(x, atol=1e-5)
    out = save_video(frames, tmp_path / "z.gif", fps=10)
    with Image.open(out) as im:
        assert im.n_frames == 3 and im.size == (48, 32)


def test_zoom_stops_at_an_interrupted_frame(tiny):
    """An interrupted frame is kept and ends the sequence."""
    steps = {"n": 0}

    def interrupting(acts):
        if torch.is_grad_enabled():
            steps["n"] += 1
            if steps["n"] == 3:  # the second frame's first step
                raise KeyboardInterrupt
        return acts["conv2"].pow(2).flatten(1).mean(1)

    obj = fv.Objective(interrupting, frozenset({"conv2"}), "interrupting", (("conv2", None),))
    seen = []
    frames = fv.dream_zoom(
        tiny, torch.rand(1, 3, 32, 48), 5, layers=obj, octaves=1, steps=2, on_frame=lambda i, f: seen.append(i)
    )
    assert len(frames) == 2 and seen == [0, 1] and steps["n"] == 3


def test_mp4_needs_the_optional_extra_or_works(tiny, tmp_path):
    frames = [torch.rand(1, 3, 32, 48) for _ in range(2)]
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        with pytest.raises(fv.FeaturevisError, match=r"featurevis\[video\]"):
            save_video(frames, tmp_path / "z.mp4")
    else:
        assert save_video(frames, tmp_path / "z.mp4").stat().st_size > 0


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_dream_keeps_size_orientation_and_format(tmp_path, capsys):
    img = Image.new("RGB", (48, 32), (200, 120, 40))
    for i in range(0, 48, 6):
        img.paste((20, 40, 200), (i, 0, i + 3, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown: the upright photo is 32 wide, 48 high
    exif[0x010F] = "TestCam"
    img.save(tmp_path / "p.jpg", exif=exif.tobytes())
    out = tmp_path / "d.jpg"
    code = main(
        ["dream", str(tmp_path / "p.jpg"), "-l", "_blocks.2,_blocks.4=0.5", "--steps", "2", "-o", str(out), "-q"]
    )
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (32, 48)
        assert im.getexif().get(0x0112) == 1 and im.getexif().get(0x010F) == "TestCam"


def test_cli_default_output_keeps_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (40, 30), (90, 160, 30)).save(tmp_path / "leaf.png")
    assert main(["dream", "leaf.png", "-l", "_blocks.1", "--steps", "1", "--octaves", "1", "-q"]) == 0
    with Image.open(tmp_path / "leaf-dream.png") as im:
        assert im.size == (40, 30)


def test_cli_zoom_writes_frames_and_gif(tmp_path):
    Image.new("RGB", (40, 30), (90, 160, 30)).save(tmp_path / "p.png")
    out = tmp_path / "z.gif"
    args = ["dream", str(tmp_path / "p.png"), "-l", "_blocks.1", "--frames", "2", "--steps", "1", "--octaves", "1"]
    assert main([*args, "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "z_frames").iterdir()) == ["frame_0000.png", "frame_0001.png"]
    with Image.open(out) as im:
        assert im.n_frames == 2


@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image at all")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    Image.new("RGB", (40, 30)).save(tmp_path / "ok.png")
    return tmp_path


@pytest.mark.parametrize(
    "args,message",
    [
        (["notes.jpg"], "not an image Pillow can read"),
        (["cut.png"], "damaged or truncated"),
        (["dot.png"], "need at least 2x2"),
        (["missing.png"], "no such file"),
        (["ok.png", "-l", "_blocks.99"], "unknown layer '_blocks.99'"),
        (["ok.png", "-l", "_blocks.6=much"], "malformed layer weight"),
        (["ok.png", "-l", "_blocks.6:999"], "channel 999 out of range"),
        (["ok.png", "-o", "/proc/nope/x.png"], "cannot write"),
        (["notes.jpg", "-o", "/proc/nope/x.png"], "cannot write"),  # output checked before anything
        (["ok.png", "-o", "out.txt"], "unknown image format"),
        (["ok.png", "--frames", "2", "-o", "z.png"], "written as .gif or .mp4"),
        (["ok.png", "--guide", "notes.jpg"], "not an image"),
        (["ok.png", "--steps", "0"], "must be positive"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(bad_inputs, monkeypatch, capsys, args, message):
    monkeypatch.chdir(bad_inputs)
    try:
        code = main(["dream", *args, "-q"])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_cli_error_in_a_real_process_has_no_traceback(bad_inputs):
    r = subprocess.run(
        [sys.executable, "-W", "error", "-m", "featurevis.cli", "dream", str(bad_inputs / "cut.png")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "truncated" in r.stderr and "Traceback" not in r.stderr
