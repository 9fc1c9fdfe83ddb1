"""The CLI: real renders from the command line, and one-line errors with exit code 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

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


# -- one convention, one table, one output check ------------------------------------------
def parse(*argv: str):
    """The namespace a command gets, without running it."""
    from featurevis.cli.main import _BY_NAME, command_parser

    parser, _ = command_parser(_BY_NAME[argv[0]])
    return parser.parse(argv[1:])


@pytest.mark.parametrize(
    "old,new",
    [
        (["render", "lite0", "_blocks.8:12", "-o", "a.png"], ["render", "_blocks.8:12", "-m", "lite0", "-o", "a.png"]),
        (["render", "lite0", "-o", "a.png", "_blocks.8:12"], ["render", "-m", "lite0", "_blocks.8:12", "-o", "a.png"]),
        (["layers", "inception_v1", "--all"], ["layers", "--all", "-m", "inception_v1"]),
        (["catalog", "build", "lite1", "--out", "c"], ["catalog", "build", "--model", "lite1", "-o", "c"]),
        (["prior-train", "lite0", "--layer", "_blocks.3"], ["prior-train", "--layer", "_blocks.3", "-m", "lite0"]),
        (["evolve", "lite2", "--class", "1", "--out", "e"], ["evolve", "--class", "1", "-m", "lite2", "-o", "e"]),
    ],
)
def test_model_option_parses_like_the_old_positional(old, new, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse(*old) == parse(*new)
    assert parse(*new).model == new[new.index("-m" if "-m" in new else "--model") + 1]


def test_model_option_renders_the_same_image_as_the_old_spelling(tmp_path):
    common = ["--size", "32", "--steps", "2", "-q"]
    assert main(["render", "lite0", "_blocks.4:7", "-o", str(tmp_path / "old.png"), *common]) == 0
    assert main(["render", "_blocks.4:7", "-m", "lite0", "-o", str(tmp_path / "new.png"), *common]) == 0
    assert main(["render", "_blocks.4:7", "-o", str(tmp_path / "default.png"), *common]) == 0  # lite0 is the default
    old = Image.open(tmp_path / "old.png").tobytes()
    assert old == Image.open(tmp_path / "new.png").tobytes() == Image.open(tmp_path / "default.png").tobytes()


def test_layers_default_model_and_alias_agree(capsys):
    outputs = []
    for argv in (["layers", "lite0"], ["layers", "-m", "efficientnet_lite0"], ["layers"]):
        assert main([*argv, "--size", "64"]) == 0
        outputs.append(capsys.readouterr().out)
    assert len(set(outputs)) == 1 and "_blocks.8" in outputs[0]
    assert parse("layers", "lite0", "-m", "efficientnet_lite0").model == "efficientnet_lite0"  # the same model twice


@pytest.mark.parametrize(
    "command", [["render", "lite0", "_blocks.8:1"], ["layers", "lite0"], ["evolve", "lite0", "-c", "1"]]
)
def test_two_different_models_is_one_line_exit_2(command, capsys):
    assert main([*command, "-m", "vgg16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["featurevis: error: two models given: 'lite0' and -m 'vgg16'; name one (-m MODEL)"]


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "_blocks.8:1", "-o", "{bad}/x.png"],
        ["dream", "photo.png", "-o", "{bad}/x.png"],
        ["dream", "photo.png", "--frames", "2", "-o", "{bad}/x.gif"],
        ["invert", "photo.png", "-l", "_blocks.1", "-o", "{bad}/x.png"],
        ["style", "photo.png", "style.png", "-o", "{bad}/x.png"],
        ["style-train", "style.png", "-o", "{bad}/net.pt"],
        ["style-apply", "net.pt", "photo.png", "-o", "{bad}/x.png"],
        ["fool", "photo.png", "-o", "{bad}/x.png"],
        ["saliency", "photo.png", "-o", "{bad}/x.png"],
        ["evolve", "--class", "1", "-o", "{bad}/evolved"],
        ["prior-train", "--layer", "_blocks.3", "-o", "{bad}/p.pt"],
        ["catalog", "build", "--out", "{bad}/catalog"],
        ["demo", "--out", "{bad}/demo"],
    ],
)
def test_unwritable_output_fails_before_any_work(argv, tmp_path, monkeypatch, capsys):
    """The output sits under a file, so no folder can be made there (this holds for root too)."""
    import importlib

    from featurevis.cli.main import _BY_NAME

    (tmp_path / "file").write_text("not a folder")
    module = importlib.import_module(f"featurevis.cli.{_BY_NAME[argv[0]].module}")
    monkeypatch.setattr(module, "run", lambda args: pytest.fail("the command ran"))
    assert main([a.replace("{bad}", str(tmp_path / "file")) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write there" in err[0], err
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["render", "_blocks.8:1", "--lr", "nan"], "--lr must be a finite number, got 'nan'"),
        (["render", "_blocks.8:1", "--lr=-inf"], "--lr must be a finite number, got '-inf'"),
        (["render", "_blocks.8:1", "--lr", "0"], "--lr must be positive and at most 10, got '0'"),
        (["render", "_blocks.8:1", "--steps", "0"], "--steps must be positive, got '0'"),
        (["render", "_blocks.8:1", "--diversity", "nan"], "--diversity must be a finite number"),
        (["invert", "p.png", "--lr", "nan"], "--lr must be a finite number"),
        (["style", "a.png", "b.png", "--steps", "0"], "--steps must be positive"),
        (["style", "a.png", "b.png", "--tv", "inf"], "--tv must be a finite number"),
        (["dream", "p.png", "--step-size", "nan"], "--step-size must be a finite number"),
        (["prior-train", "--layer", "x", "--lr", "nan"], "--lr must be a finite number"),
        (["saliency", "p.png", "--size", "-1"], "--size must be >= 0, got '-1'"),
        (["catalog", "build", "--steps", "1.5"], "--steps must be an integer, got '1.5'"),
        (["fool", "p.png", "--eps", "nan"], "--eps must be positive and finite"),
        (["evolve", "-c", "1", "--crossover", "nan"], "--crossover must be a finite number"),
    ],
)
def test_bad_numbers_are_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1 and message in lines[0], lines


def test_help_lists_the_table_in_order_without_loading_torch():
    from featurevis.cli.main import COMMANDS

    code = "import sys\nfrom featurevis.cli import main\ntry:\n main(['--help'])\nexcept SystemExit:\n pass\n"
    r = subprocess.run([sys.executable, "-c", f"{code}print('torch' in sys.modules)"], capture_output=True, text=True)
    out = r.stdout.splitlines()
    assert out[-1] == "False", r.stdout  # `featurevis --help` does not import torch
    listed = [line.split()[0] for line in out if re.match(r"    \S", line)]  # not the wrapped help lines
    assert listed == [c.name for c in COMMANDS]


@pytest.mark.parametrize("name", ["demo", "render", "style-apply", "catalog", "serve"])
def test_every_command_has_its_own_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith(f"usage: featurevis {name}")


def test_every_table_row_builds_its_parser():
    from featurevis.cli.main import COMMANDS, command_parser

    for command in COMMANDS:
        parser, module = command_parser(command)
        assert parser.prog == f"featurevis {command.name}" and callable(module.run)


def test_ctrl_c_in_a_command_is_one_line_exit_130(monkeypatch, capsys):
    import featurevis.cli.models as models

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "run", interrupted)
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "featurevis: interrupted\n"


def test_ctrl_c_while_the_model_loads_is_one_line_exit_130(monkeypatch, capsys):
    import featurevis.zoo

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(featurevis.zoo, "load_model", interrupted)
    assert main(["render", "_blocks.8:1", "-q"]) == 130
    assert capsys.readouterr().err == "featurevis: interrupted\n"


def test_ctrl_c_during_startup_in_a_real_process_is_one_line_exit_130():
    """Ctrl-C while torch is still being imported: no traceback, exit 130.

    The interrupt is raised by an import hook the moment torch starts importing, so the test
    does not depend on when a signal lands (a SIGINT sent after a sleep could land inside a
    library's own ``try: import ... except: pass`` and be swallowed there)."""
    start = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "import runpy\n"
        "sys.argv = ['featurevis', 'layers']\n"
        "runpy.run_module('featurevis.cli', run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", start], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130 and proc.stderr == "featurevis: interrupted\n" and proc.stdout == "", proc.stderr


def test_render_schedule_reaches_the_recipe(monkeypatch, tmp_path):
    import featurevis.recipes.render as recipe

    seen = {}

    def fake_render(model, obj, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "render", fake_render)
    assert main(["render", "_blocks.8:1", "--schedule", "cosine", "-o", str(tmp_path / "x.png")]) == 130
    assert seen["schedule"] == "cosine"


@pytest.mark.parametrize(("flags", "steps"), [([], 16), (["--no-redirect-relu"], 0)])
def test_render_redirects_relus_unless_told_not_to(monkeypatch, tmp_path, flags, steps):
    import featurevis.recipes.render as recipe

    seen = {}

    def fake_render(model, obj, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "render", fake_render)
    assert main(["render", "_blocks.8:1", *flags, "-o", str(tmp_path / "x.png")]) == 130
    assert seen["redirect_relu"] == steps


def test_render_alpha_writes_an_rgba_png(tmp_path):
    from PIL import Image

    out = tmp_path / "a.png"
    assert main(["render", "_blocks.8:12", "--alpha", "--size", "64", "--steps", "8", "-q", "-o", str(out)]) == 0
    im = Image.open(out)
    assert im.mode == "RGBA" and im.size == (64, 64)
    alpha = im.getchannel("A")
    assert alpha.getextrema()[0] < alpha.getextrema()[1]  # a real alpha channel, not a constant


def test_render_alpha_needs_a_png(tmp_path, capsys):
    assert main(["render", "_blocks.8:12", "--alpha", "-o", str(tmp_path / "a.jpg")]) == 2
    assert "RGBA PNG" in capsys.readouterr().err


def test_render_to_writes_one_row_of_frames(tmp_path):
    from PIL import Image

    out = tmp_path / "i.png"
    args = ["render", "_blocks.8:12", "--to", "_blocks.8:40", "--frames", "3", "--size", "32", "--steps", "2"]
    assert main([*args, "-q", "-o", str(out)]) == 0
    assert Image.open(out).size == (3 * 32 + 2 * 2, 32)


def test_render_with_several_models_sums_the_target_over_them(tmp_path, capsys):
    out = tmp_path / "both.png"
    args = ["render", "class:1", "-m", "lite0,lite1", "--size", "64", "--steps", "3", "-o", str(out), "-q"]
    assert main(args) == 0
    assert out.is_file()
    assert "logodds:1, summed over efficientnet_lite0 + efficientnet_lite1" in capsys.readouterr().out
    assert main([*args, "--weights", str(tmp_path / "w.pth")]) == 2
    assert "--weights takes one model" in capsys.readouterr().err


def test_a_cli_render_spares_itself_the_dynamo_import(tmp_path):
    """The fixed cost of a one-shot run (featurevis.cli.startup): the optimizer never imports
    torch._dynamo (1.6-1.9 s here), and the image is still written."""
    out = tmp_path / "c.png"
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('DYNAMO', 'torch._dynamo' in sys.modules))\n"
        "sys.argv = ['featurevis', 'render', 'lite0', 'class:1', '--steps', '2', '--size', '64', '-q',\n"
        "            '-o', sys.argv[1]]\n"
        "from featurevis.cli.main import main\n"
        "sys.exit(main())\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.exists()
    assert "DYNAMO False" in r.stdout


def test_openmp_workers_sleep_only_when_the_machine_is_busy(monkeypatch):
    from featurevis.cli import startup

    assert startup.wait_policy(0.3, 2) is None and startup.wait_policy(1.0, 2) == "PASSIVE"
    assert startup.wait_policy(7.9, 16) is None and startup.wait_policy(8.0, 16) == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    startup.before_torch()  # the user's choice stands (and torch is loaded here anyway)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_busy_means_what_runs_now_not_the_lagging_load_average(tmp_path):
    from featurevis.cli import startup

    snapshot = tmp_path / "loadavg"
    snapshot.write_text("1.95 1.40 0.80 1/312 4711\n")  # a heavy job just ended: only the reader runs
    assert startup.others_running(str(snapshot), reads=2, gap_s=0) == 0.0
    assert startup.wait_policy(startup.others_running(str(snapshot)), 2) is None
    snapshot.write_text("0.10 0.10 0.10 3/312 4711\n")  # two others started a moment ago
    assert startup.others_running(str(snapshot), reads=1) == 2.0
    assert startup.others_running(str(tmp_path / "missing")) is None
    snapshot.write_text("garbage\n")
    assert startup.others_running(str(snapshot)) is None
    if not os.path.exists("/proc/loadavg"):
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert startup.others_running(reads=9) >= 1  # a CPU-bound neighbour is seen at once
    finally:
        spinner.kill()
        spinner.wait(5)


def test_the_engines_adam_steps_exactly_as_torchs():
    import torch

    from featurevis.core.engine import Adam

    ours, theirs = (torch.nn.Parameter(torch.linspace(-1, 1, 7)) for _ in range(2))
    opts = Adam([ours], lr=0.05), torch.optim.Adam([theirs], lr=0.05)
    for step in range(5):
        for p, opt in zip((ours, theirs), opts, strict=True):
            opt.zero_grad()
            (p.pow(3).sum() * (step + 1)).backward()
            opt.step()
    assert torch.equal(ours, theirs)
