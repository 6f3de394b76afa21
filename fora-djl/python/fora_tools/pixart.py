"""PixArt-alpha in the official state-dict layout (PixArt-alpha/PixArt-alpha,
diffusion/model/nets/PixArt.py and PixArt_blocks.py), and its TorchScript face.

Written from the layout facts in shared/notes/dit-and-fora.md and the public source; no code
of that repository is copied. What makes it PixArt rather than DiT:

* adaLN-single: one shared `t_block` (SiLU, Linear D -> 6D) maps the timestep embedding t to
  t0; block i's six vectors are `blocks.i.scale_shift_table [6, D] + t0.reshape(N, 6, D)`.
* the block: `x += gate_msa * attn(t2i_modulate(norm1(x), shift_msa, scale_msa))`, then an
  UNGATED `x += cross_attn(x, y, mask)` to the caption tokens, then
  `x += gate_mlp * mlp(t2i_modulate(norm2(x), shift_mlp, scale_mlp))`.
* captions: `y_embedder.y_proj` (fc1 4096 -> D, tanh GELU, fc2 D -> D) projects precomputed
  T5 embeddings [N, 120, 4096]; the buffer `y_embedder.y_embedding` [120, 4096] is the null
  caption of classifier-free guidance. A token mask [N, 120] (1 = real token) restricts each
  sample's cross-attention to its own real tokens (the official code packs the real tokens of
  all samples and uses a block-diagonal xformers mask: the same softmax).
* final layer (T2IFinalLayer): `scale_shift_table [2, D] + t` (t, not t0), LN, linear.

`PixArt.forward(x, t, y, mask)` accepts the official shapes (y [N, 1, L, W] or [N, L, W];
mask [N, L] or [N, 1, 1, L]).
"""
import math
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .dit import Attention, Mlp, PatchEmbed, TimestepEmbedder

FAMILY = "pixart-alpha"


@dataclass
class PixArtConfig:
    input_size: int = 32
    in_channels: int = 4
    patch_size: int = 2
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    pred_sigma: bool = True
    caption_channels: int = 4096
    model_max_length: int = 120
    lewei_scale: float = 1.0

    @property
    def out_channels(self) -> int:
        return self.in_channels * 2 if self.pred_sigma else self.in_channels

    @property
    def grid(self) -> int:
        return self.input_size // self.patch_size

    @property
    def tokens(self) -> int:
        return self.grid ** 2

    @property
    def base_size(self) -> int:
        """The official `base_size = input_size // patch_size` of the position table."""
        return self.input_size // self.patch_size

    def to_json(self) -> dict:
        """The manifest's `architecture` section: the DiT fields the Java loader reads, plus PixArt's."""
        d = asdict(self)
        d.pop("pred_sigma")
        d.update(family=FAMILY, learn_sigma=self.pred_sigma, out_channels=self.out_channels, tokens=self.tokens,
                 base_size=self.base_size)
        return d

    @staticmethod
    def from_json(d: dict) -> "PixArtConfig":
        keys = PixArtConfig.__dataclass_fields__.keys()
        kw = {k: v for k, v in d.items() if k in keys}
        if "learn_sigma" in d and "pred_sigma" not in d:
            kw["pred_sigma"] = d["learn_sigma"]
        return PixArtConfig(**kw)


# The published PixArt-alpha transformer (PixArt_XL_2: depth 28, D 1152, 16 heads, patch 2) at
# the two square sizes the plain PixArt class serves (the 1024 checkpoint is PixArtMS, with size
# and aspect-ratio embedders, which this module does not cover).
PRESETS = {
    "PixArt-XL/2-256": dict(input_size=32),
    "PixArt-XL/2-512": dict(input_size=64),
}


def preset(name: str) -> PixArtConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown PixArt preset {name!r}; known: {sorted(PRESETS)}")
    return PixArtConfig(**PRESETS[name])


def pos_embed_table(dim: int, grid: int, base_size: int, lewei_scale: float) -> torch.Tensor:
    """The fixed 2-D sin-cos table with PixArt's position scaling: positions
    `arange(grid) / (grid / base_size) / lewei_scale` (float32, as the official numpy code), first
    half of the channels for the column, second half for the row, each [sin | cos]."""
    pos = np.arange(grid, dtype=np.float32) / (grid / base_size) / lewei_scale
    pos = torch.from_numpy(pos.astype(np.float32)).double()

    def one_axis(d: int, p: torch.Tensor) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = p.reshape(-1, 1) * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    rows = pos.repeat_interleave(grid)  # token k sits at row k // grid
    cols = pos.repeat(grid)             # and column k % grid
    return torch.cat([one_axis(dim // 2, cols), one_axis(dim // 2, rows)], dim=1).float()


def t2i_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [N, T, D] with per-sample shift and scale [N, D]."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class CaptionMlp(nn.Module):
    """timm's Mlp with out_features != in_features: `fc1` (W -> D), tanh GELU, `fc2` (D -> D)."""

    def __init__(self, in_features: int, hidden: int, out_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CaptionEmbedder(nn.Module):
    def __init__(self, caption_channels: int, dim: int, tokens: int):
        super().__init__()
        self.y_proj = CaptionMlp(caption_channels, dim, dim)
        self.register_buffer("y_embedding", torch.randn(tokens, caption_channels) / caption_channels ** 0.5)

    def forward(self, caption: torch.Tensor) -> torch.Tensor:
        return self.y_proj(caption)


class CrossAttention(nn.Module):
    """MultiHeadCrossAttention: queries from the image tokens, keys and values from the caption
    tokens; padding tokens (mask 0) get no weight."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D], context [N, L, D], mask [N, L] float (1 = real token)."""
        b, n, d = x.shape
        length = context.shape[1]
        q = self.q_linear(x).reshape(b, n, self.heads, self.head_dim).transpose(1, 2)
        kv = self.kv_linear(context).reshape(b, length, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)
        scores = (q @ k.transpose(-2, -1)) * (self.head_dim ** -0.5)
        scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        out = scores.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class PixArtBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.cross_attn = CrossAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim ** 0.5)

    def modulation(self, t0: torch.Tensor) -> torch.Tensor:
        """adaLN-single: [N, 6, D] = shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp."""
        return self.scale_shift_table[None] + t0.reshape(t0.shape[0], 6, -1)

    def attention_branch(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.attn(t2i_modulate(self.norm1(x), shift, scale))

    def cross_branch(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.cross_attn(x, context, mask)

    def mlp_branch(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.mlp(t2i_modulate(self.norm2(x), shift, scale))

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor, t0: torch.Tensor) -> torch.Tensor:
        m = self.modulation(t0)
        x = x + m[:, 2].unsqueeze(1) * self.attention_branch(x, m[:, 0], m[:, 1])
        x = x + self.cross_branch(x, context, mask)
        return x + m[:, 5].unsqueeze(1) * self.mlp_branch(x, m[:, 3], m[:, 4])


class T2IFinalLayer(nn.Module):
    def __init__(self, dim: int, patch: int, out_ch: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_ch, bias=True)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim ** 0.5)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        m = self.scale_shift_table[None] + t[:, None]
        return self.linear(t2i_modulate(self.norm_final(x), m[:, 0], m[:, 1]))


class PixArt(nn.Module):
    def __init__(self, cfg: PixArtConfig):
        super().__init__()
        self.cfg = cfg
        self.patch = cfg.patch_size
        self.grid = cfg.grid
        self.out_channels = cfg.out_channels
        d = cfg.hidden_size
        self.x_embedder = PatchEmbed(cfg.patch_size, cfg.in_channels, d)
        self.t_embedder = TimestepEmbedder(d)
        self.register_buffer("pos_embed", torch.zeros(1, cfg.tokens, d))
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d, bias=True))
        self.y_embedder = CaptionEmbedder(cfg.caption_channels, d, cfg.model_max_length)
        self.blocks = nn.ModuleList([PixArtBlock(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.final_layer = T2IFinalLayer(d, cfg.patch_size, cfg.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: xavier linears, fixed position table, N(0, 0.02) for the
        timestep, t_block and caption projections, zero cross-attention output and final linear."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        self.pos_embed.copy_(pos_embed_table(self.cfg.hidden_size, self.grid, self.cfg.base_size,
                                             self.cfg.lewei_scale)[None])
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        for lin in (self.t_embedder.mlp[0], self.t_embedder.mlp[2], self.t_block[1], self.y_embedder.y_proj.fc1,
                    self.y_embedder.y_proj.fc2):
            nn.init.normal_(lin.weight, std=0.02)
        for b in self.blocks:
            nn.init.zeros_(b.cross_attn.proj.weight)
            nn.init.zeros_(b.cross_attn.proj.bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def embed(self, x: torch.Tensor, t: torch.Tensor, caption: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> tokens [N, T, D], t embedding [N, D] (what the final layer reads; t_block makes the
        blocks' vectors from it), caption context [N, L, D]."""
        tokens = self.x_embedder(x) + self.pos_embed
        return tokens, self.t_embedder(t), self.y_embedder(caption)

    def modulations(self, t: torch.Tensor) -> torch.Tensor:
        """[depth, 6, N, D]."""
        t0 = self.t_block(t)
        outs: List[torch.Tensor] = []
        for block in self.blocks:
            outs.append(block.modulation(t0).transpose(0, 1))
        return torch.stack(outs)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        n, p, g, ch = x.shape[0], self.patch, self.grid, self.out_channels
        x = x.reshape(n, g, g, p, p, ch).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(n, ch, g * p, g * p)

    def final(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unpatchify(self.final_layer(x, t))

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, y: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if y.dim() == 4:  # the official [N, 1, L, W]
            y = y.squeeze(1)
        if mask is None:
            mask = torch.ones(y.shape[0], y.shape[1], dtype=x.dtype, device=x.device)
        mask = mask.reshape(mask.shape[0], -1).to(x.dtype)
        if mask.shape[0] != y.shape[0]:  # the official code repeats the prompts' mask over the CFG batch
            mask = mask.repeat(y.shape[0] // mask.shape[0], 1)
        h, t, context = self.embed(x, timestep, y)
        t0 = self.t_block(t)
        for block in self.blocks:
            h = block(h, context, mask, t0)
        return self.final(h, t)


class ExportablePixArt(nn.Module):
    """The TorchScript face of a PixArt: `forward` is the whole model (the uncached baseline);
    the exported methods are its stages, one call each, for the Java cached forward. One file
    holds the weights once; the block index is an argument."""

    def __init__(self, model: PixArt):
        super().__init__()
        self.model = model
        self.depth = model.cfg.depth

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N,C,H,W], t [N] original timesteps, y [N,L,W] caption embeddings, mask [N,L] float (1 = real)."""
        h, temb, context = self.model.embed(x, t, y)
        t0 = self.model.t_block(temb)
        for block in self.model.blocks:
            h = block(h, context, mask, t0)
        return self.model.final(h, temb)

    @torch.jit.export
    def embed(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> tokens [N,T,D], t embedding [N,D], caption context [N,L,D]."""
        return self.model.embed(x, t, y)

    @torch.jit.export
    def modulation(self, t: torch.Tensor) -> torch.Tensor:
        """adaLN-single for every block in one call: [depth, 6, N, D]."""
        return self.model.modulations(t)

    @torch.jit.export
    def attention(self, block: int, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        for i, b in enumerate(self.model.blocks):
            if i == block:
                return b.attention_branch(x, shift, scale)
        raise IndexError("block index out of range")

    @torch.jit.export
    def cross_attention(self, block: int, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The ungated cross-attention branch: x [N,T,D], context [N,L,D], mask [N,L] float."""
        for i, b in enumerate(self.model.blocks):
            if i == block:
                return b.cross_branch(x, context, mask)
        raise IndexError("block index out of range")

    @torch.jit.export
    def mlp(self, block: int, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        for i, b in enumerate(self.model.blocks):
            if i == block:
                return b.mlp_branch(x, shift, scale)
        raise IndexError("block index out of range")

    @torch.jit.export
    def final_layer(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """T2IFinalLayer + unpatchify: tokens [N,T,D], t embedding [N,D] -> [N, out_channels, H, W]."""
        return self.model.final(x, t)

    @torch.jit.export
    def null_caption(self) -> torch.Tensor:
        """The null caption embedding `y_embedder.y_embedding` [L, W] (classifier-free guidance)."""
        return self.model.y_embedder.y_embedding


def load_checkpoint(path: str) -> dict:
    """An official PixArt checkpoint (`{'state_dict': ...}`, optionally with 'ema') or a plain state_dict."""
    sd = torch.load(path, map_location="cpu")
    for key in ("ema", "state_dict", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            return sd[key]
    return sd


def load_official(model: PixArt, state_dict: dict) -> None:
    """Strict load. The official inference script drops `pos_embed` and recomputes it; a state dict
    without it gets our (identical) fixed table."""
    sd = dict(state_dict)
    if "pos_embed" not in sd:
        sd["pos_embed"] = model.pos_embed.detach().clone()
    model.load_state_dict(sd, strict=True)


def perturb_zero_layers(model: PixArt, std: float = 0.02) -> PixArt:
    """The official initialisation zeroes every cross-attention output and the final linear, so a
    fresh PixArt ignores its captions and outputs zero. For random-weight exports and tests."""
    with torch.no_grad():
        for b in model.blocks:
            b.cross_attn.proj.weight.normal_(0.0, std)
            b.cross_attn.proj.bias.normal_(0.0, std)
        model.final_layer.linear.weight.normal_(0.0, std)
        model.final_layer.linear.bias.normal_(0.0, std)
    return model
