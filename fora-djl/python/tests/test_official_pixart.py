"""Our PixArt against the official PixArt-alpha class, when a checkout is given:

    OFFICIAL_PIXART=/path/to/PixArt-alpha /usr/bin/python3 -m pytest -q tests/test_official_pixart.py

Only `diffusion/model/nets/PixArt.py` and `PixArt_blocks.py` of that checkout are read; nothing
of it is committed here. Those files import timm, xformers, einops and the repository's own
registry, logger and checkpoint helpers, none of which Debian packages, so `_stubs` provides
the few names they use: timm's `PatchEmbed`, `Mlp`, `Attention`, `DropPath` with timm's
arguments and parameter names, xformers' `memory_efficient_attention` and
`BlockDiagonalMask.from_seqlens` as plain softmax attention with the block-diagonal mask made
dense, and no-op registry and checkpointing. Everything else (embedders, adaLN-single,
blocks, cross-attention, final layer, unpatchify, initialisation, position table) is the
official code.
"""
import importlib.util
import math
import os
import sys
import types

import pytest
import torch
from torch import nn

from fora_tools.pixart import PixArt, PixArtConfig, load_official, perturb_zero_layers, preset

OFFICIAL = os.environ.get("OFFICIAL_PIXART")
pytestmark = pytest.mark.skipif(not OFFICIAL, reason="set OFFICIAL_PIXART to a PixArt-alpha/PixArt-alpha checkout")

SMALL = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=3, num_heads=4, caption_channels=48,
             model_max_length=10)


def _stubs() -> dict:
    class PatchEmbed(nn.Module):
        def __init__(self, img_size, patch_size, in_chans, embed_dim, bias=True):
            super().__init__()
            self.patch_size = (patch_size, patch_size)
            self.num_patches = (img_size // patch_size) ** 2
            self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size, bias=bias)

        def forward(self, x):
            return self.proj(x).flatten(2).transpose(1, 2)

    class Mlp(nn.Module):
        def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
            super().__init__()
            out_features = out_features or in_features
            hidden_features = hidden_features or in_features
            self.fc1 = nn.Linear(in_features, hidden_features)
            self.act = act_layer()
            self.fc2 = nn.Linear(hidden_features, out_features)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class Attention(nn.Module):
        def __init__(self, dim, num_heads=8, qkv_bias=False, attn_drop=0.0, proj_drop=0.0, **_):
            super().__init__()
            self.num_heads = num_heads
            self.head_dim = dim // num_heads
            self.scale = self.head_dim ** -0.5
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
            self.attn_drop = nn.Dropout(attn_drop)
            self.proj = nn.Linear(dim, dim)
            self.proj_drop = nn.Dropout(proj_drop)

    class BlockDiagonalMask:
        def __init__(self, q_lens, kv_lens):
            self.q_lens, self.kv_lens = [int(n) for n in q_lens], [int(n) for n in kv_lens]

        @classmethod
        def from_seqlens(cls, q_seqlen, kv_seqlen=None):
            return cls(q_seqlen, kv_seqlen if kv_seqlen is not None else q_seqlen)

        def dense(self, dtype):
            bias = torch.full((sum(self.q_lens), sum(self.kv_lens)), float("-inf"), dtype=dtype)
            q0 = k0 = 0
            for q, k in zip(self.q_lens, self.kv_lens):
                bias[q0:q0 + q, k0:k0 + k] = 0
                q0, k0 = q0 + q, k0 + k
            return bias

    def memory_efficient_attention(q, k, v, p=0.0, attn_bias=None):
        """xformers' layout: [B, M, H, K]; softmax(q k^T / sqrt(K) + bias) v."""
        q, k, v = (a.transpose(1, 2) for a in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if isinstance(attn_bias, BlockDiagonalMask):
            scores = scores + attn_bias.dense(scores.dtype)
        elif attn_bias is not None:
            scores = scores + attn_bias.reshape(scores.shape)
        return (scores.softmax(-1) @ v).transpose(1, 2).contiguous()  # xformers returns a contiguous [B, M, H, K]

    class Registry:
        def register_module(self, *args, **kwargs):
            return args[0] if args and callable(args[0]) else (lambda f: f)

    def mod(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        return m

    stubs = {
        "timm": mod("timm"), "timm.models": mod("timm.models"),
        "timm.models.layers": mod("timm.models.layers", DropPath=nn.Identity),
        "timm.models.vision_transformer": mod("timm.models.vision_transformer", PatchEmbed=PatchEmbed, Mlp=Mlp,
                                              Attention=Attention),
        "einops": mod("einops", rearrange=None, repeat=None),
        "xformers": mod("xformers"),
        "xformers.ops": mod("xformers.ops", memory_efficient_attention=memory_efficient_attention,
                            fmha=mod("xformers.ops.fmha", BlockDiagonalMask=BlockDiagonalMask)),
        "diffusion": mod("diffusion"), "diffusion.model": mod("diffusion.model"),
        "diffusion.model.nets": mod("diffusion.model.nets"),
        "diffusion.model.builder": mod("diffusion.model.builder", MODELS=Registry()),
        "diffusion.model.utils": mod("diffusion.model.utils",
                                     auto_grad_checkpoint=lambda module, *a, **k: module(*a, **k),
                                     to_2tuple=lambda x: x if isinstance(x, tuple) else (x, x),
                                     add_decomposed_rel_pos=None),
        "diffusion.utils": mod("diffusion.utils"),
        "diffusion.utils.logger": mod("diffusion.utils.logger", get_root_logger=None),
    }
    for name, m in stubs.items():  # `import a.b` then `a.b.f` needs b as an attribute of a
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(stubs[parent], child, m)
    return stubs


@pytest.fixture(scope="module")
def official():
    stubs = _stubs()
    saved = {name: sys.modules.get(name) for name in list(stubs) + ["diffusion.model.nets.PixArt_blocks"]}
    sys.modules.update(stubs)
    try:
        nets = os.path.join(OFFICIAL, "diffusion", "model", "nets")
        modules = {}
        for name in ("PixArt_blocks", "PixArt"):
            spec = importlib.util.spec_from_file_location(f"diffusion.model.nets.{name}", os.path.join(nets, name + ".py"))
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            modules[name] = module
        yield modules["PixArt"]
    finally:
        for name, m in saved.items():
            if m is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = m
        sys.modules.pop("diffusion.model.nets.PixArt", None)


def _official_of(module, cfg: PixArtConfig) -> nn.Module:
    return module.PixArt(input_size=cfg.input_size, patch_size=cfg.patch_size, in_channels=cfg.in_channels,
                         hidden_size=cfg.hidden_size, depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
                         pred_sigma=cfg.pred_sigma, caption_channels=cfg.caption_channels,
                         lewei_scale=cfg.lewei_scale, model_max_length=cfg.model_max_length).eval()


def _perturb_official(m: nn.Module) -> nn.Module:
    with torch.no_grad():
        for b in m.blocks:
            b.cross_attn.proj.weight.normal_(0.0, 0.05)
            b.cross_attn.proj.bias.normal_(0.0, 0.05)
        m.final_layer.linear.weight.normal_(0.0, 0.05)
        m.final_layer.linear.bias.normal_(0.0, 0.05)
    return m


def _inputs(cfg: PixArtConfig):
    g = torch.Generator().manual_seed(3)
    n, length = 3, cfg.model_max_length
    x = torch.randn(n, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g)
    y = torch.randn(n, 1, length, cfg.caption_channels, generator=g)
    mask = torch.zeros(n, length)
    for i, real in enumerate((length, 4, 1)):  # a full caption, a short one, a single token
        mask[i, :real] = 1
    return x, torch.tensor([999.0, 480.5, 3.0]), y, mask


def _compare(ours: PixArt, theirs: nn.Module, cfg: PixArtConfig) -> None:
    x, t, y, mask = _inputs(cfg)
    with torch.no_grad():
        for m in (mask, None):
            want = theirs(x, t, y, mask=m)
            got = ours(x, t, y, m)
            assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_our_checkpoint_loads_into_the_official_class_and_computes_the_same(official):
    cfg = PixArtConfig(**SMALL)
    torch.manual_seed(5)
    ours = perturb_zero_layers(PixArt(cfg), std=0.05).eval()
    theirs = _official_of(official, cfg)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    _compare(ours, theirs, cfg)


def test_official_checkpoint_loads_into_ours_and_computes_the_same(official):
    cfg = PixArtConfig(**SMALL)
    torch.manual_seed(6)
    theirs = _perturb_official(_official_of(official, cfg))
    ours = PixArt(cfg).eval()
    load_official(ours, theirs.state_dict())
    _compare(ours, theirs, cfg)
    # The official inference script drops pos_embed and recomputes it: ours recomputes the same.
    sd = {k: v for k, v in theirs.state_dict().items() if k != "pos_embed"}
    again = PixArt(cfg).eval()
    load_official(again, sd)
    _compare(again, theirs, cfg)


def test_official_initialisation_equals_ours_where_it_is_fixed(official):
    """The position table (also with lewei_scale 2) and the zeroed layers."""
    for lewei in (1.0, 2.0):
        cfg = PixArtConfig(**dict(SMALL, input_size=16, lewei_scale=lewei))
        theirs, ours = _official_of(official, cfg).state_dict(), PixArt(cfg).state_dict()
        assert {k: tuple(v.shape) for k, v in theirs.items()} == {k: tuple(v.shape) for k, v in ours.items()}
        assert torch.allclose(theirs["pos_embed"], ours["pos_embed"], atol=1e-6)
        for name in (k for k in theirs if "cross_attn.proj" in k or k.startswith("final_layer.linear")):
            assert torch.count_nonzero(theirs[name]) == 0 and torch.count_nonzero(ours[name]) == 0, name


def test_pixart_xl2_256_key_and_shape_sets_are_the_official_ones(official):
    cfg = preset("PixArt-XL/2-256")
    theirs = {k: tuple(v.shape) for k, v in official.PixArt_XL_2(input_size=32).state_dict().items()}
    ours_model = PixArt(cfg)
    ours = {k: tuple(v.shape) for k, v in ours_model.state_dict().items()}
    assert theirs == ours
    assert ours["y_embedder.y_embedding"] == (120, 4096)
    assert ours["pos_embed"] == (1, 256, 1152)


@pytest.fixture(scope="module")
def official_dpm_solver():
    """PixArt-alpha's copy of the official DPM-Solver code (diffusion/model/dpm_solver.py)."""
    saved = sys.modules.get("tqdm")
    tq = types.ModuleType("tqdm")
    tq.tqdm = lambda it, *a, **k: it
    sys.modules["tqdm"] = tq
    try:
        path = os.path.join(OFFICIAL, "diffusion", "model", "dpm_solver.py")
        spec = importlib.util.spec_from_file_location("official_dpm_solver", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        if saved is None:
            sys.modules.pop("tqdm", None)
        else:
            sys.modules["tqdm"] = saved


@pytest.mark.parametrize("steps", [20, 7])
def test_reference_dpms_follows_the_official_dpm_solver_as_pixart_calls_it(official_dpm_solver, steps):
    """PixArt's DPMS: NoiseScheduleVP('discrete', linear betas), model_wrapper(noise, classifier-free),
    DPM_Solver(algorithm_type='dpmsolver++').sample(order=2, skip_type='time_uniform', method='multistep')
    against fora_tools.reference's `dpms`, on a toy noise model that depends on x, t and the condition."""
    from fora_tools.diffusion import Schedule, linear_betas
    from fora_tools.reference import sample

    def toy(x, t, cond):  # eps as a smooth function of everything it may depend on
        return 0.6 * torch.tanh(x) + 0.3 * torch.sin(t / 300.0)[:, None, None, None] + cond[:, None, None, None] * 0.2

    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    cond, uncond = torch.tensor([0.7, -1.2], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    ns = official_dpm_solver.NoiseScheduleVP("discrete", betas=linear_betas(), dtype=torch.float64)
    fn = official_dpm_solver.model_wrapper(toy, ns, model_type="noise", guidance_type="classifier-free", condition=cond,
                                           unconditional_condition=uncond, guidance_scale=4.5)
    want = official_dpm_solver.DPM_Solver(fn, ns, algorithm_type="dpmsolver++").sample(
        x, steps=steps, order=2, skip_type="time_uniform", method="multistep")
    got = sample(lambda xi, ti, ci, i: toy(xi, ti.double(), ci), Schedule.respaced(steps), x, cond, uncond, 4.5, "dpms", 4,
                 False, lambda a, b: torch.cat([a, b]))
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
