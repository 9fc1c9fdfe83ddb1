"""The CLI: real renders from the command line, and one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image

from featurevis.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "featurevis.cli", *args], capture_output=True, text=True)


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "present" in out


def test_layers_lists_shapes(capsys):
    assert main(["layers", "lite0"]) == 0
    out = capsys.readouterr().out
    assert "_blocks.8" in out and "(112, 14, 14)" in out and "logits" in out


def test_render_writes_an_image(tmp_path, capsys):
    out = tmp_path / "sub" / "c.png"
    code = main(
        [
            "render",
            "lite0",
            "_blocks.4:7",
            "-o",
            str(out),
            "--size",
            "64",
            "--steps",
            "6",
            "--batch",
            "2",
            "--snapshots",
            "3",
            "-q",
        ]
    )
    assert code == 0
    assert Image.open(out).size == (64 * 2 + 2, 64)
    assert (tmp_path / "sub" / "c_step3.png").exists()
    assert "wrote" in capsys.readouterr().out


def test_render_class_by_name_prints_prediction(tmp_path, capsys):
    code = main(
        [
            "render",
            "lite0",
            'class:"Egyptian cat"',
            "-o",
            str(tmp_path / "cat.png"),
            "--size",
            "64",
            "--steps",
            "4",
            "-q",
        ]
    )
    assert code == 0
    assert "predicted:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["render", "lite9", "_blocks.8:1"], "unknown model 'lite9'"),
        (["render", "lite0", "_blocks.88:1"], "unknown layer '_blocks.88'; closest: _blocks.8"),
        (["render", "lite0", "_blocks.8:999"], "channel 999 out of range: _blocks.8 has channels 0..111"),
        (["render", "lite0", "_blocks.8:abc"], "malformed target"),
        (["render", "lite0", "_blocks.8:1@3"], "neuron position must be @X,Y"),
        (["render", "lite0", "class:1000"], "out of range"),
        (["render", "lite0", "class:zebrafish"], "unknown class"),
        (["render", "lite0", "_blocks.8:1", "-o", "/proc/nope/x.png"], "cannot write"),
        (["render", "lite0", "_blocks.8:1", "-o", "out.txt"], "unknown image format"),
        (["render", "lite0", "_blocks.8:1", "--steps", "0"], "must be positive"),
        (["layers", "nope"], "unknown model"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, message):
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_unwritable_output_fails_before_rendering(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if os.access(ro, os.W_OK):  # root ignores permissions
        pytest.skip("running as root: permissions are not enforced")
    r = run_cli("render", "lite0", "_blocks.8:1", "-o", str(ro / "x.png"))
    assert r.returncode == 2 and "cannot write" in r.stderr


def test_demo_writes_gallery(tmp_path, monkeypatch):
    import featurevis.cli.demo as demo

    monkeypatch.setattr(demo, "DEMO_LAYERS", [("_blocks.2", [0, 1], "early")])
    monkeypatch.setattr(demo, "DEMO_CLASSES", [285])
    assert main(["demo", "--out", str(tmp_path / "d"), "--steps", "3", "--size", "48", "-q"]) == 0
    html = (tmp_path / "d" / "index.html").read_text()
    assert "_blocks.2:0" in html and "Egyptian cat" in html
    assert (tmp_path / "d" / "_blocks.2_1.png").exists() and (tmp_path / "d" / "class_285.png").exists()
