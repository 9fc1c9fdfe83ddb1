"""``timm:`` and ``clip:`` models against the real timm and open_clip architectures.

No pretrained weights can be downloaded here, so each checkpoint is made by the library itself
from a randomly initialized model, saved in the exact format it publishes (timm: a plain state
dict, ``model.safetensors`` / ``pytorch_model.bin``; open_clip: the full CLIP state dict,
``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin``), and loaded back through
``load_model(..., weights=F)``, the CLI's ``--weights`` and the Hugging Face cache layout; the
outputs must equal the original module's. The open_clip models are small configurations of its
real classes (VisionTransformer, ModifiedResNet, TextTransformer), registered the way open_clip
registers its own. These tests run in the second environment (``.venv-tx``, see ``.ci/run``) and
are skipped where timm / open_clip are not installed, except the missing-library message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import featurevis as fv
from featurevis.core.errors import FeaturevisError
from featurevis.zoo import hub

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Small configurations of open_clip's own classes, in its config format.
TINY_CLIP = {
    "fvtest-ViT": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "fvtest-RN": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
}
TEXT_CFG = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}


def normalized(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def save(sd: dict, path: Path) -> Path:
    """``sd`` as the libraries publish it: safetensors, or a pickled plain state dict."""
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save(sd, path)
    return path


def put_in_hf_cache(cache: Path, repo: str, file: str, source: Path) -> None:
    """``source`` where huggingface_hub keeps ``repo``'s ``file``: refs/main names the snapshot."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / file).write_bytes(source.read_bytes())


def run_cli(*args: str, prelude: str | None = None) -> subprocess.CompletedProcess:
    """``featurevis ARGS`` in a fresh interpreter (after ``prelude``, e.g. registering a config)."""
    if prelude is None:
        cmd = [sys.executable, "-m", "featurevis.cli", *args]
    else:
        cmd = [sys.executable, "-c", f"import sys; {prelude}; from featurevis.cli import main; sys.exit(main())", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


# -- without the libraries ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "module", "hint"),
    [
        ("timm:vit_tiny_patch16_224", "timm", "needs timm: pip install 'featurevis[timm]'"),
        ("clip:ViT-B-32", "open_clip", "needs open-clip-torch: pip install 'featurevis[clip]'"),
    ],
)
def test_a_missing_library_is_one_line_saying_what_to_install(monkeypatch, name, module, hint):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as when it is not installed
    with pytest.raises(FeaturevisError) as e:
        fv.load_model(name, weights="random")
    assert str(e.value) == f"{name} {hint}"


def test_random_weights_are_only_for_library_models():
    with pytest.raises(FeaturevisError, match="random is for timm:/clip: models"):
        fv.load_model("efficientnet_lite0", weights="random")


def test_the_core_imports_none_of_the_optional_libraries():
    """timm and open_clip (and the torchvision they import) load only with a timm:/clip: name."""
    code = (
        "import sys, featurevis as fv, featurevis.zoo, featurevis.cli.main, featurevis.catalog.build; "
        "print(sorted(m for m in ('timm', 'open_clip', 'torchvision') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_featurevis_models_tells_how_to_name_and_install_them(capsys):
    from featurevis.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for prefix, extra in (("timm:NAME", "timm"), ("clip:ARCH[:TAG]", "clip")):
        line = next(ln for ln in out.splitlines() if ln.startswith(prefix))
        assert "installed)" in line or f"pip install 'featurevis[{extra}]'" in line
    assert f"Hugging Face cache {os.environ['HF_HUB_CACHE']}" in out and "In the cache: none" in out


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # needed to make such a file
def test_a_torchscript_archive_is_refused_in_one_line(tmp_path):
    """OpenAI's original CLIP files are TorchScript: code, which weights_only loading never runs."""
    f = tmp_path / "ViT-B-32.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(f))
    with pytest.raises(FeaturevisError, match=r"^refusing to load .*ViT-B-32\.pt: it is a TorchScript archive"):
        fv.load_model("vgg16", weights=f)


# -- timm ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timm():
    return pytest.importorskip("timm")


@pytest.fixture(scope="module")
def vit_tiny(timm, tmp_path_factory):
    """A random vit_tiny_patch16_224 and its checkpoint in both of timm's formats."""
    torch.manual_seed(0)
    net = timm.create_model("vit_tiny_patch16_224").eval()
    folder = tmp_path_factory.mktemp("vit_tiny")
    files = {ext: save(net.state_dict(), folder / f"model{ext}") for ext in (".pth", ".safetensors")}
    return net, files


@pytest.mark.parametrize("ext", [".pth", ".safetensors"])
def test_a_timm_checkpoint_loads_back_exactly(vit_tiny, ext):
    net, files = vit_tiny
    model = fv.load_model("timm:vit_tiny_patch16_224", weights=files[ext])
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], net(normalized(x, (0.5,) * 3, (0.5,) * 3)))
    assert model.name == "timm:vit_tiny_patch16_224"
    assert (model.input_size, model.labels[0]) == (224, "tench")
    assert model.default_layer == "blocks.6.mlp.fc1"  # the middle block's MLP hidden units
    assert not model.channels_last
    assert model.text_encoder is None


def test_other_layouts_go_through_timms_converter(vit_tiny, tmp_path):
    """An older timm layout (the patch embedding as a linear layer's matrix) loads as timm
    converts it for ``pretrained=True``."""
    net, _ = vit_tiny
    sd = dict(net.state_dict())
    sd["patch_embed.proj.weight"] = sd["patch_embed.proj.weight"].flatten(1)
    model = fv.load_model("timm:vit_tiny_patch16_224", weights=save(sd, tmp_path / "old.pth"))
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], net(normalized(x, (0.5,) * 3, (0.5,) * 3)))
    assert "state_dict" not in model.net.pretrained_cfg  # the checkpoint is not kept twice


def test_deit_distilled_and_dino_keep_their_own_settings(timm, tmp_path):
    torch.manual_seed(0)
    deit = timm.create_model("deit_tiny_distilled_patch16_224").eval()
    model = fv.load_model("timm:deit_tiny_distilled_patch16_224", weights=save(deit.state_dict(), tmp_path / "d.pth"))
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():  # eval-mode DeiT averages its class and distillation heads
        torch.testing.assert_close(model(x)["logits"], deit(normalized(x, IMAGENET_MEAN, IMAGENET_STD)))
    assert model.net.num_prefix_tokens == 2
    dino = fv.load_model("timm:vit_small_patch16_224.dino", weights="random")
    assert dino.name == "timm:vit_small_patch16_224.dino (random weights)"
    assert dino.labels is None  # a DINO backbone has no classifier
    assert tuple(dino.mean.flatten().tolist()) == pytest.approx(IMAGENET_MEAN)
    assert dino.default_layer == "blocks.6.mlp.fc1"


def test_a_timm_vit_accepts_other_input_sizes(vit_tiny):
    """Renders jitter and rescale; the position embedding is resampled for a 10x10 patch grid."""
    model = fv.load_model("timm:vit_tiny_patch16_224", weights=vit_tiny[1][".pth"])
    acts = model(torch.rand(1, 3, 160, 160), ["blocks.6.mlp.fc1"])
    assert acts["blocks.6.mlp.fc1"].shape == (1, 768, 10, 10)  # read as its patch grid


def test_catalog_specs_take_library_names(timm):
    from featurevis.catalog.build import load_model_spec

    assert load_model_spec("timm:vit_tiny_patch16_224", "random").name == "timm:vit_tiny_patch16_224 (random weights)"


def test_a_timm_cnn_gets_its_next_to_last_stage(timm):
    model = fv.load_model("timm:resnet18", weights="random")
    assert model.default_layer == "layer3" and model.channels_last


def test_as_model_reads_a_timm_modules_pretrained_cfg(timm):
    model = fv.as_model(timm.create_model("vit_tiny_patch16_224"))
    assert tuple(model.mean.flatten().tolist()) == (0.5, 0.5, 0.5)
    assert model.input_size == 224 and len(model.labels) == 1000
    assert model.default_layer == "blocks.6.mlp.fc1"


def test_a_checkpoint_of_another_architecture_names_the_file_and_the_misfit(vit_tiny):
    f = vit_tiny[1][".pth"]
    with pytest.raises(FeaturevisError) as e:
        fv.load_model("timm:vit_small_patch16_224", weights=f)
    assert str(e.value).startswith(f"{f} is not a timm:vit_small_patch16_224 checkpoint: ")
    assert "cls_token" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FeaturevisError, match=re.escape("missing dist_token, head_dist.weight, head_dist.bias")):
        fv.load_model("timm:deit_tiny_distilled_patch16_224", weights=f)


@pytest.mark.parametrize("ext", [".pth", ".safetensors"])
def test_a_truncated_checkpoint_is_one_line(vit_tiny, tmp_path, ext):
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(vit_tiny[1][ext].read_bytes()[:100_000])
    with pytest.raises(FeaturevisError, match=r"^cannot read .*cut.*: not a complete .*truncated or corrupt"):
        fv.load_model("timm:vit_tiny_patch16_224", weights=cut)


def test_unknown_timm_names_list_the_closest(timm):
    with pytest.raises(FeaturevisError, match="unknown timm model 'vit_tinny_patch16_224'; closest: vit_tiny_patch16"):
        fv.load_model("timm:vit_tinny_patch16_224", weights="random")
    with pytest.raises(
        FeaturevisError, match=re.escape("unknown timm pretrained variant 'vit_tiny_patch16_224.bogus'")
    ):
        fv.load_model("timm:vit_tiny_patch16_224.bogus", weights="random")


def test_offline_without_weights_names_the_repo_file_and_cache(timm):
    with pytest.raises(FeaturevisError) as e:
        fv.load_model("timm:vit_tiny_patch16_224")
    msg = str(e.value)
    assert "HF_HUB_OFFLINE is set" in msg
    assert "model.safetensors (or pytorch_model.bin) from https://huggingface.co/timm/vit_tiny_patch16_224." in msg
    assert os.environ["HF_HUB_CACHE"] in msg and "--weights FILE" in msg


@pytest.fixture
def unreachable_hub(monkeypatch):
    """A user with no network who has not set HF_HUB_OFFLINE: the hub's host refuses at once."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    for var in hub._PROXIES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_an_unreachable_hub_is_said_before_any_download(timm, unreachable_hub):
    """Without a network the hub library retries for about half a minute; one connection says why at once."""
    assert hub.hub_unreachable().startswith("127.0.0.1 cannot be reached: ")
    said = r"^weights for timm:vit_tiny_patch16_224.* are not here \(not downloading: 127\.0\.0\.1 cannot be reached: "
    with pytest.raises(FeaturevisError, match=said + r".*\): fetch model\.safetensors"):
        fv.load_model("timm:vit_tiny_patch16_224")
    assert "HF_HUB_OFFLINE" not in os.environ  # the probe left the user's settings as they were


def test_a_proxy_is_not_judged_by_a_direct_connection(monkeypatch, unreachable_hub):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert hub.hub_unreachable() is None


def test_weights_in_the_hugging_face_cache_are_found_offline(vit_tiny):
    net, files = vit_tiny
    put_in_hf_cache(
        Path(os.environ["HF_HUB_CACHE"]),
        "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k",
        "model.safetensors",
        files[".safetensors"],
    )
    model = fv.load_model("timm:vit_tiny_patch16_224")
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], net(normalized(x, (0.5,) * 3, (0.5,) * 3)))
    assert "timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k" in hub.cached_models()


def test_the_cli_takes_timm_names_and_weights(vit_tiny):
    r = run_cli("layers", "timm:vit_tiny_patch16_224", "--weights", str(vit_tiny[1][".safetensors"]))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("timm:vit_tiny_patch16_224 at 224 px") and "blocks.6" in r.stdout
    r = run_cli("layers", "-m", "timm:vit_tiny_patch16_224")  # offline (conftest), nothing cached
    assert r.returncode == 2 and "fetch model.safetensors" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# -- open_clip -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_configs(tmp_path_factory) -> Path:
    """A folder of the small configurations, in open_clip's config format."""
    folder = tmp_path_factory.mktemp("open_clip_configs")
    for arch, vision in TINY_CLIP.items():
        cfg = {"embed_dim": 32, "vision_cfg": vision, "text_cfg": TEXT_CFG}
        (folder / f"{arch}.json").write_text(json.dumps(cfg))
    return folder


@pytest.fixture(scope="module")
def open_clip(clip_configs):
    """open_clip with the small configurations registered (``add_model_config``)."""
    oc = pytest.importorskip("open_clip")
    oc.add_model_config(clip_configs)
    return oc


@pytest.fixture(scope="module")
def clips(open_clip, tmp_path_factory):
    """Each small CLIP, randomly initialized, and its state dict in open_clip's two hub formats."""
    folder = tmp_path_factory.mktemp("clip_weights")
    out = {}
    for arch in TINY_CLIP:
        torch.manual_seed(0)
        clip = open_clip.create_model(arch).eval()
        files = {
            ext: save(clip.state_dict(), folder / f"{arch}{name}")
            for ext, name in ((".bin", ".bin"), (".safetensors", ".safetensors"))
        }
        out[arch] = clip, files
    return out


def reference_text(open_clip, clip, arch, texts):
    with torch.no_grad():
        return clip.encode_text(open_clip.get_tokenizer(arch)(texts), normalize=True)


@pytest.mark.parametrize("arch", list(TINY_CLIP))
@pytest.mark.parametrize("ext", [".bin", ".safetensors"])
def test_an_open_clip_checkpoint_loads_back_exactly(open_clip, clips, arch, ext):
    clip, files = clips[arch]
    model = fv.load_model(f"clip:{arch}", weights=files[ext])
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], clip.visual(normalized(x, OPENAI_MEAN, OPENAI_STD)))
    texts = ["a photo of a dog", "a diagram of a cell"]
    torch.testing.assert_close(model.text_encoder(texts), reference_text(open_clip, clip, arch, texts))
    assert (model.name, model.input_size, model.labels) == (f"clip:{arch}", 64, None)
    assert model.default_layer == ("transformer.resblocks.1.mlp.c_fc" if arch.endswith("ViT") else "layer4")


def test_the_text_encoder_gives_unit_embeddings_that_tell_texts_apart(clips):
    model = fv.load_model("clip:fvtest-ViT", weights=clips["fvtest-ViT"][1][".bin"])
    e = model.text_encoder(["a photo of a dog", "a photo of a cat", "a photo of a dog"])
    assert e.shape == (3, 32) and e.device == model.device and not e.requires_grad
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(3))
    assert (e[0] - e[1]).abs().max() > 1e-3
    torch.testing.assert_close(e[0], e[2])
    assert model.text_encoder("a photo of a dog").shape == (1, 32)


def test_an_image_tower_checkpoint_alone_has_no_text_encoder(clips, tmp_path):
    clip, _ = clips["fvtest-RN"]
    model = fv.load_model("clip:fvtest-RN", weights=save(clip.visual.state_dict(), tmp_path / "visual.pth"))
    assert model.text_encoder is None
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], clip.visual(normalized(x, OPENAI_MEAN, OPENAI_STD)))


def test_as_model_of_an_open_clip_model_keeps_its_text_encoder(open_clip, clips):
    clip, _ = clips["fvtest-ViT"]
    model = fv.as_model(clip)
    assert model.net is clip.visual and model.default_layer == "transformer.resblocks.1.mlp.c_fc"
    texts = ["a red apple"]
    torch.testing.assert_close(model.text_encoder(texts), reference_text(open_clip, clip, "fvtest-ViT", texts))
    assert hasattr(clip, "visual")  # the user's model is left whole


def test_named_open_clip_architectures_take_their_tags_settings(open_clip):
    vit = fv.load_model("clip:ViT-B-32:openai", weights="random")
    assert vit.name == "clip:ViT-B-32:openai (random weights)"
    assert type(vit.net.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"  # OpenAI's activation
    assert vit.default_layer == "transformer.resblocks.6.mlp.c_fc" and vit.input_size == 224
    assert tuple(vit.mean.flatten().tolist()) == pytest.approx(OPENAI_MEAN)
    rn = fv.load_model("clip:RN50", weights="random")  # a file without a tag: the architecture's own settings
    assert rn.name == "clip:RN50 (random weights)" and rn.default_layer == "layer4"
    assert type(rn.text_encoder.clip.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"


def test_a_clip_checkpoint_of_another_architecture_names_the_file(clips):
    f = clips["fvtest-ViT"][1][".safetensors"]
    with pytest.raises(FeaturevisError) as e:
        fv.load_model("clip:fvtest-RN", weights=f)
    assert str(e.value).startswith(f"{f} is not a clip:fvtest-RN checkpoint: missing visual.")
    assert "\n" not in str(e.value)


def test_unknown_clip_names_and_tags_list_the_closest(open_clip):
    with pytest.raises(FeaturevisError, match="unknown open_clip model 'ViT-B-33'; closest: ViT-B-32"):
        fv.load_model("clip:ViT-B-33")
    with pytest.raises(FeaturevisError, match="unknown pretrained tag of ViT-B-32 'bogus'; closest: openai"):
        fv.load_model("clip:ViT-B-32:bogus")
    with pytest.raises(FeaturevisError, match="no published weights are known for clip:fvtest-ViT"):
        fv.load_model("clip:fvtest-ViT")


def test_clip_offline_without_weights_names_the_repo_file_and_cache(open_clip):
    with pytest.raises(FeaturevisError) as e:
        fv.load_model("clip:ViT-B-32:laion2b_s34b_b79k")
    msg = str(e.value)
    assert "open_clip_model.safetensors (or open_clip_pytorch_model.bin)" in msg
    assert "https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg and os.environ["HF_HUB_CACHE"] in msg


def test_a_tags_weights_in_the_hugging_face_cache_are_found_offline(open_clip, clips, monkeypatch):
    from open_clip import pretrained

    clip, files = clips["fvtest-ViT"]
    cfg = {"hf_hub": "fvtest/tiny-clip/", "mean": OPENAI_MEAN, "std": OPENAI_STD, "quick_gelu": False}
    monkeypatch.setitem(pretrained._PRETRAINED, "fvtest-ViT", {"fvtag": cfg})  # as open_clip lists its own
    put_in_hf_cache(Path(os.environ["HF_HUB_CACHE"]), "fvtest/tiny-clip", "open_clip_pytorch_model.bin", files[".bin"])
    model = fv.load_model("clip:fvtest-ViT")  # no tag: the architecture's default tag
    assert model.name == "clip:fvtest-ViT:fvtag"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], clip.visual(normalized(x, OPENAI_MEAN, OPENAI_STD)))
    assert "clip:fvtest-ViT:fvtag" in hub.cached_models()


def hub_tokenizer_model(open_clip, clips, folder: Path, arch: str) -> fv.FeatureModel:
    """A tiny CLIP whose tokenizer comes from the hub (``fv/none``, in no cache)."""
    cfg = {
        "embed_dim": 32,
        "vision_cfg": TINY_CLIP["fvtest-ViT"],
        "text_cfg": {**TEXT_CFG, "hf_tokenizer_name": "fv/none"},
    }
    (folder / f"{arch}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)
    return fv.load_model(f"clip:{arch}", weights=clips["fvtest-ViT"][1][".bin"])


def test_a_tokenizer_missing_offline_is_one_line_at_text_time(open_clip, clips, tmp_path):
    """A text tower whose tokenizer comes from the hub loads; asking for a text says why not."""
    model = hub_tokenizer_model(open_clip, clips, tmp_path, "fvtest-HFtok")
    with pytest.raises(FeaturevisError, match=r"^clip:fvtest-HFtok: its tokenizer is not available \("):
        model.text_encoder(["a dog"])


def test_a_tokenizer_missing_with_the_hub_unreachable_is_one_line_at_once(open_clip, clips, tmp_path, unreachable_hub):
    """Not offline by the variable, but with no network: read from the cache alone, not after retries."""
    model = hub_tokenizer_model(open_clip, clips, tmp_path, "fvtest-HFtok2")
    said = r"^clip:fvtest-HFtok2: its tokenizer is not available \(not in the cache, and 127\.0\.0\.1 cannot be reached"
    with pytest.raises(FeaturevisError, match=said):
        model.text_encoder(["a dog"])
    assert "HF_HUB_OFFLINE" not in os.environ
    assert sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE is False


def test_the_cli_takes_clip_names_and_weights(clip_configs, clips):
    prelude = f"import open_clip; open_clip.add_model_config({str(clip_configs)!r})"
    f = clips["fvtest-RN"][1][".safetensors"]
    r = run_cli("layers", "clip:fvtest-RN", "--weights", str(f), prelude=prelude)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("clip:fvtest-RN at 64 px") and "layer4" in r.stdout
    r = run_cli("layers", "clip:fvtest-ViT", "--weights", str(f), prelude=prelude)
    assert r.returncode == 2 and "is not a clip:fvtest-ViT checkpoint" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
