"""Our checkpoints against the official facebookresearch/DiT class, when a checkout is given:

    OFFICIAL_DIT=/path/to/DiT /usr/bin/python3 -m pytest -q tests/test_official_dit.py

Nothing of it is committed here. Its models.py imports three timm layers, and timm is not
packaged by Debian, so `_timm_layers` provides them with timm's constructor arguments and
parameter names; everything else (embedders, blocks, final layer, unpatchify, the
initialisation) is the official code.
"""
import importlib.util
import os
import sys
import types

import pytest
import torch
from torch import nn

from fora_tools.dit import DiT, DiTConfig, PRESETS
from test_tooling import perturb

OFFICIAL = os.environ.get("OFFICIAL_DIT")
pytestmark = pytest.mark.skipif(not OFFICIAL, reason="set OFFICIAL_DIT to a facebookresearch/DiT checkout")


def _timm_layers() -> types.ModuleType:
    class PatchEmbed(nn.Module):
        def __init__(self, img_size, patch_size, in_chans, embed_dim, bias=True):
            super().__init__()
            self.patch_size = (patch_size, patch_size)
            self.num_patches = (img_size // patch_size) ** 2
            self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size, bias=bias)

        def forward(self, x):
            return self.proj(x).flatten(2).transpose(1, 2)

    class Attention(nn.Module):
        def __init__(self, dim, num_heads=8, qkv_bias=False):
            super().__init__()
            self.num_heads = num_heads
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, d = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
            w = (q @ k.transpose(-2, -1) * (d // self.num_heads) ** -0.5).softmax(-1)
            return self.proj((w @ v).transpose(1, 2).reshape(b, n, d))

    class Mlp(nn.Module):
        def __init__(self, in_features, hidden_features, act_layer, drop=0):
            super().__init__()
            self.fc1 = nn.Linear(in_features, hidden_features)
            self.act = act_layer()
            self.fc2 = nn.Linear(hidden_features, in_features)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    vt = types.ModuleType("timm.models.vision_transformer")
    vt.PatchEmbed, vt.Attention, vt.Mlp = PatchEmbed, Attention, Mlp
    return vt


@pytest.fixture(scope="module")
def official():
    vt = _timm_layers()
    for name in ("timm", "timm.models"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["timm.models.vision_transformer"] = vt
    spec = importlib.util.spec_from_file_location("official_dit_models", os.path.join(OFFICIAL, "models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _official_of(module, cfg: DiTConfig) -> nn.Module:
    return module.DiT(input_size=cfg.input_size, patch_size=cfg.patch_size, in_channels=cfg.in_channels,
                      hidden_size=cfg.hidden_size, depth=cfg.depth, num_heads=cfg.num_heads,
                      mlp_ratio=cfg.mlp_ratio, num_classes=cfg.num_classes, learn_sigma=cfg.learn_sigma).eval()


def _inputs(cfg: DiTConfig):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g)
    return x, torch.tensor([0.0, 17.0, 500.0, 999.0]), torch.tensor([0, 3, 7, cfg.num_classes])


def _same_after_loading(source: nn.Module, target: nn.Module, cfg: DiTConfig) -> None:
    target.load_state_dict(source.state_dict(), strict=True)
    x, t, y = _inputs(cfg)
    with torch.no_grad():
        assert torch.allclose(target(x, t, y), source(x, t, y), atol=1e-5)


def test_our_checkpoint_loads_into_the_official_class_and_computes_the_same(official):
    cfg = DiTConfig()
    torch.manual_seed(5)
    _same_after_loading(perturb(DiT(cfg)), _official_of(official, cfg), cfg)


def test_official_checkpoint_loads_into_ours_and_computes_the_same(official):
    cfg = DiTConfig(input_size=32, in_channels=4, num_classes=1000, **PRESETS["DiT-S/2"])
    torch.manual_seed(5)
    _same_after_loading(perturb(_official_of(official, cfg)), DiT(cfg).eval(), cfg)


def test_official_initialisation_equals_ours_where_it_is_fixed(official):
    """The fixed parts of the initialisation: the sin-cos position table and the zeroed adaLN layers."""
    cfg = DiTConfig(input_size=32, in_channels=4, num_classes=1000, **PRESETS["DiT-S/2"])
    theirs, ours = _official_of(official, cfg).state_dict(), DiT(cfg).state_dict()
    assert set(theirs) == set(ours)
    for name, value in theirs.items():
        assert value.shape == ours[name].shape, name
    assert torch.allclose(theirs["pos_embed"], ours["pos_embed"], atol=1e-6)
    for name in (k for k in theirs if "adaLN_modulation" in k or k.startswith("final_layer.linear")):
        assert torch.count_nonzero(theirs[name]) == 0 and torch.count_nonzero(ours[name]) == 0, name


def test_dit_xl2_key_and_shape_sets_are_the_official_ones(official):
    cfg = DiTConfig(input_size=32, in_channels=4, num_classes=1000, **PRESETS["DiT-XL/2"])
    theirs = official.DiT_models["DiT-XL/2"]().state_dict()
    ours = DiT(cfg).state_dict()
    assert {k: tuple(v.shape) for k, v in theirs.items()} == {k: tuple(v.shape) for k, v in ours.items()}
