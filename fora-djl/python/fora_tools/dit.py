"""A DiT whose state_dict has exactly the keys and shapes of the official DiT (adaLN-Zero).

Written from the DiT paper and the layout facts in shared/notes/dit-and-fora.md, so a real
checkpoint (e.g. DiT-XL/2-256) loads with strict=True and our checkpoints load into the
official class. `ExportableDiT` adds the per-stage methods the Java adapter calls.
"""
import math
from dataclasses import dataclass, asdict
from typing import List, Tuple

import torch
from torch import nn


@dataclass
class DiTConfig:
    input_size: int = 16
    in_channels: int = 3
    patch_size: int = 4
    hidden_size: int = 128
    depth: int = 6
    # 8 heads of 16 rather than 4 of 32: same parameters, and at 3,000 steps 73 % of the samples
    # showed their class against 63.5 % (tooling README).
    num_heads: int = 8
    mlp_ratio: float = 4.0
    num_classes: int = 10
    learn_sigma: bool = True

    @property
    def out_channels(self) -> int:
        return self.in_channels * 2 if self.learn_sigma else self.in_channels

    @property
    def tokens(self) -> int:
        return (self.input_size // self.patch_size) ** 2

    def to_json(self) -> dict:
        d = asdict(self)
        d["out_channels"] = self.out_channels
        d["tokens"] = self.tokens
        return d

    @staticmethod
    def from_json(d: dict) -> "DiTConfig":
        keys = DiTConfig.__dataclass_fields__.keys()
        return DiTConfig(**{k: v for k, v in d.items() if k in keys})


# The published sizes (shared/notes/dit-and-fora.md); "/2" is the patch size.
PRESETS = {
    "DiT-S/2": dict(hidden_size=384, depth=12, num_heads=6, patch_size=2),
    "DiT-B/2": dict(hidden_size=768, depth=12, num_heads=12, patch_size=2),
    "DiT-L/2": dict(hidden_size=1024, depth=24, num_heads=16, patch_size=2),
    "DiT-XL/2": dict(hidden_size=1152, depth=28, num_heads=16, patch_size=2),
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) timesteps: [cos | sin] halves."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2 == 1:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def sincos_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D table: first half of the channels encodes the column, second half the row
    (the order of the official table)."""
    def one_axis(d: int, pos: torch.Tensor) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    coords = torch.arange(grid, dtype=torch.float64)
    rows = coords.repeat_interleave(grid)  # token k sits at row k // grid
    cols = coords.repeat(grid)             # and column k % grid
    return torch.cat([one_axis(dim // 2, cols), one_axis(dim // 2, rows)], dim=1).float()


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, in_ch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Token-major in memory, not a transposed view of the convolution: a cached step adds
        # every feature into these tokens in place, which runs ~8x slower over a transposed layout.
        return self.proj(x).flatten(2).transpose(1, 2).contiguous()


class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))


class LabelEmbedder(nn.Module):
    """Class table with one extra row: index num_classes is the null class used by CFG."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(y)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * (self.head_dim ** -0.5)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """adaLN-Zero block with its stages exposed, so a cache can stand between branch and gate."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim, bias=True))

    def modulation(self, c: torch.Tensor) -> torch.Tensor:
        """[N, 6, D]: shift1, scale1, gate1, shift2, scale2, gate2."""
        return self.adaLN_modulation(c).reshape(c.shape[0], 6, -1)

    def attention_branch(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.attn(modulate(self.norm1(x), shift, scale))

    def mlp_branch(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.mlp(modulate(self.norm2(x), shift, scale))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        m = self.modulation(c)
        x = x + m[:, 2].unsqueeze(1) * self.attention_branch(x, m[:, 0], m[:, 1])
        return x + m[:, 5].unsqueeze(1) * self.mlp_branch(x, m[:, 3], m[:, 4])


class FinalLayer(nn.Module):
    def __init__(self, dim: int, patch: int, out_ch: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_ch, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim, bias=True))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        self.patch = cfg.patch_size
        self.out_channels = cfg.out_channels
        self.grid = cfg.input_size // cfg.patch_size
        self.x_embedder = PatchEmbed(cfg.patch_size, cfg.in_channels, cfg.hidden_size)
        self.t_embedder = TimestepEmbedder(cfg.hidden_size)
        self.y_embedder = LabelEmbedder(cfg.num_classes, cfg.hidden_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.tokens, cfg.hidden_size), requires_grad=False)
        self.blocks = nn.ModuleList(
            [DiTBlock(cfg.hidden_size, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.final_layer = FinalLayer(cfg.hidden_size, cfg.patch_size, cfg.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """adaLN-Zero initialisation: every block starts as the identity, the output as zero."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        self.pos_embed.data.copy_(sincos_pos_embed(self.cfg.hidden_size, self.grid)[None])
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for layer in [b.adaLN_modulation[1] for b in self.blocks] + [
                self.final_layer.adaLN_modulation[1], self.final_layer.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def embed(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        tokens = self.x_embedder(x) + self.pos_embed
        return tokens, self.t_embedder(t) + self.y_embedder(y)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        n, p, g, ch = x.shape[0], self.patch, self.grid, self.out_channels
        x = x.reshape(n, g, g, p, p, ch).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(n, ch, g * p, g * p)

    def final(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.unpatchify(self.final_layer(x, c))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, c = self.embed(x, t, y)
        for block in self.blocks:
            h = block(h, c)
        return self.final(h, c)


class ExportableDiT(nn.Module):
    """The TorchScript face of a DiT: `forward` is the whole model (the uncached baseline);
    the exported methods are its stages, one call each, for the Java cached forward.

    One file holds the weights once; the block index is an argument because TorchScript
    methods cannot be generated per block.
    """

    def __init__(self, dit: DiT):
        super().__init__()
        self.dit = dit
        self.depth = dit.cfg.depth
        # Every block's adaLN weights in one tensor [depth, 6D, D], the blocks' own weights
        # becoming views of it (saved once): a cached step then reads all gate rows through
        # one strided view, one batched matrix product instead of a full modulation per block.
        ada = [b.adaLN_modulation[1] for b in dit.blocks]
        self.ada_weight = nn.Parameter(torch.stack([a.weight.detach() for a in ada]), requires_grad=False)
        self.ada_bias = nn.Parameter(torch.stack([a.bias.detach() for a in ada]), requires_grad=False)
        for i, a in enumerate(ada):
            a.weight = nn.Parameter(self.ada_weight[i], requires_grad=False)
            a.bias = nn.Parameter(self.ada_bias[i], requires_grad=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.dit(x, t, y)

    @torch.jit.export
    def embed(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x [N,C,H,W] float, t [N] float (original timesteps), y [N] long -> tokens [N,T,D], c [N,D]."""
        return self.dit.embed(x, t, y)

    @torch.jit.export
    def modulation(self, c: torch.Tensor) -> torch.Tensor:
        """All blocks' adaLN outputs in one call: [depth, 6, N, D] (shift1, scale1, gate1, shift2, scale2, gate2)."""
        outs: List[torch.Tensor] = []
        for block in self.dit.blocks:
            outs.append(block.modulation(c).transpose(0, 1))
        return torch.stack(outs)

    @torch.jit.export
    def attention(self, block: int, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The attention branch of one block, before its gate: attn(modulate(LN(x), shift, scale))."""
        for i, b in enumerate(self.dit.blocks):
            if i == block:
                return b.attention_branch(x, shift, scale)
        raise IndexError("block index out of range")

    @torch.jit.export
    def mlp(self, block: int, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The MLP branch of one block, before its gate: mlp(modulate(LN(x), shift, scale))."""
        for i, b in enumerate(self.dit.blocks):
            if i == block:
                return b.mlp_branch(x, shift, scale)
        raise IndexError("block index out of range")

    @torch.jit.export
    def final_layer(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Final adaLN + linear + unpatchify: tokens [N,T,D] -> [N, out_channels, H, W]."""
        return self.dit.final(x, c)

    @torch.jit.export
    def forward_features(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """A full step in one call: the output, and every branch output before its gate stacked
        [2 * depth, N, T, D] in forward order (attention of block 0, MLP of block 0, ...)."""
        h, c = self.embed(x, t, y)
        features = self.new_stack(h)
        return self.final_layer(self.full_blocks(h, c, features), c), features

    @torch.jit.export
    def forward_features_into(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                              features: torch.Tensor) -> torch.Tensor:
        """forward_features writing the branch outputs into a stack the caller gives (one it no
        longer reads), returning the output. A new stack is new pages: glibc maps any block over
        64 MiB afresh on each call from a thread other than the process's first, and touching
        each new page costs ~10 us on a VM (~0.4 s for DiT-XL/2's 132 MB at batch 2)."""
        h, c = self.embed(x, t, y)
        want = [2 * self.depth, h.shape[0], h.shape[1], h.shape[2]]
        if features.shape != want or features.dtype != h.dtype or not features.is_contiguous():
            raise ValueError("forward_features_into: the stack must be a contiguous tensor of the tokens' type and shape "
                             + str(want))
        return self.final_layer(self.full_blocks(h, c, features), c)

    def new_stack(self, h: torch.Tensor) -> torch.Tensor:
        return torch.empty([2 * self.depth, h.shape[0], h.shape[1], h.shape[2]], dtype=h.dtype, device=h.device)

    def full_blocks(self, h: torch.Tensor, c: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Every block computed: the tokens after the last block; the branch outputs go into features."""
        # Each branch output is copied into the stack as it is made, then freed: the allocator
        # reuses its memory as in forward, instead of holding 2 * depth outputs for a final stack.
        i = 0
        for block in self.dit.blocks:
            m = block.modulation(c)
            a = block.attention_branch(h, m[:, 0], m[:, 1])
            features[i].copy_(a)
            h = h + m[:, 2].unsqueeze(1) * a
            f = block.mlp_branch(h, m[:, 3], m[:, 4])
            features[i + 1].copy_(f)
            h = h + m[:, 5].unsqueeze(1) * f
            i += 2
        return h

    def gates(self, c: torch.Tensor, d: int) -> torch.Tensor:
        """Every block's gate1 and gate2, [2 * depth, N, D] in forward order."""
        k = 2 * self.depth
        # gate1 and gate2 are rows 2 and 5 of each block's six: a stride-3 view over all blocks
        w = self.ada_weight.view(self.depth, 6, d, d)[:, 2::3].reshape(k, d, d)
        b = self.ada_bias.view(self.depth, 6, d)[:, 2::3].reshape(k, 1, d)
        s = torch.nn.functional.silu(c)
        return torch.baddbmm(b, s.unsqueeze(0).expand(k, s.shape[0], d), w.transpose(1, 2))

    @torch.jit.export
    def forward_cached(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, features: List[torch.Tensor],
                       coefficients: List[float]) -> torch.Tensor:
        """A cached step in one call. Every branch output is sum_j coefficients[j] * features[j]
        (each [2 * depth, N, T, D]: one cached slot, coefficient 1, reuses it; several make a
        forecast), added through this step's gates. The gates are computed alone (a third of
        the modulation). Equals the full step's arithmetic up to rounding (order of the sums)."""
        h, c = self.embed(x, t, y)
        return self.final_layer(self.cached_blocks(h, c, features, coefficients), c)

    @torch.jit.export
    def forward_split(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, full: int, features: List[torch.Tensor],
                      coefficients: List[float]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Rows [0, full) take a full step and rows [full, N) a cached step, in one call: the output of
        every row, and the full rows' branch outputs [2 * depth, full, T, D]. The features hold the
        cached rows only. Each row's arithmetic is that of forward_features or forward_cached; the
        embedding and the final layer run once over all rows, which is what a small model saves."""
        if full < 0 or full > x.shape[0]:
            raise ValueError("forward_split: full rows outside 0..N")
        h, c = self.embed(x, t, y)
        stacked = self.new_stack(h[:full])
        hf = self.full_blocks(h[:full], c[:full], stacked)
        hc = self.cached_blocks(h[full:], c[full:], features, coefficients)
        return self.final_layer(torch.cat([hf, hc]), c), stacked

    @torch.jit.export
    def forward_masked(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, terms: List[int],
                       values: List[torch.Tensor], coefficients: List[float]) -> Tuple[torch.Tensor, torch.Tensor]:
        """A step where some branches compute and the others take cached values, every row alike, in
        one call: a per-block schedule's mixed step, which the stages run as a call per computed
        branch. terms[f] (2 * depth, forward order) is 0 for a branch that computes, else how many
        cached values [N, T, D] its output combines: the next terms[f] of values, as
        sum_j coefficients[j] * values[j] (one value with coefficient 1 is reused as is). Returns
        the output and the computed branches' outputs stacked [computed, N, T, D] in forward order.
        Only the modulation rows a branch reads are computed: the gates of all blocks in one
        product, shift and scale for computed branches alone (on the shipped model the whole
        modulation costs over half as much as the rest of a step that computes nothing)."""
        k = 2 * self.depth
        if len(terms) != k or len(values) != len(coefficients) or sum(terms) != len(values):
            raise ValueError("forward_masked: one term count per branch (2 * depth), one coefficient per value")
        h, c = self.embed(x, t, y)
        d = h.shape[2]
        computed = 0
        for n in terms:
            if n < 0:
                raise ValueError("forward_masked: a negative term count")
            if n == 0:
                computed += 1
        features = torch.empty([computed, h.shape[0], h.shape[1], d], dtype=h.dtype, device=h.device)
        gates = self.gates(c, d).unsqueeze(2)
        s = torch.nn.functional.silu(c)
        w = self.ada_weight.view(self.depth, 6, d, d)
        b = self.ada_bias.view(self.depth, 6, d)
        at = 0
        out = 0
        f = 0
        for i, block in enumerate(self.dit.blocks):
            for branch in range(2):
                n = terms[f]
                if n == 0:
                    row = 3 * branch
                    shift = torch.nn.functional.linear(s, w[i, row], b[i, row])
                    scale = torch.nn.functional.linear(s, w[i, row + 1], b[i, row + 1])
                    if branch == 0:
                        v = block.attention_branch(h, shift, scale)
                    else:
                        v = block.mlp_branch(h, shift, scale)
                    features[out].copy_(v)
                    out += 1
                elif n == 1 and coefficients[at] == 1.0:
                    v = values[at]
                else:
                    v = values[at] * coefficients[at]
                    for j in range(at + 1, at + n):
                        v.add_(values[j], alpha=coefficients[j])
                at += n
                h = torch.addcmul(h, gates[f], v)
                f += 1
        return self.final_layer(h, c), features

    @torch.jit.export
    def forward_head(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                     blocks: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The embedding and blocks [0, blocks) in one call: the tokens leaving them, what the blocks
        added to the embedded tokens, and c [N, D]. A policy that decides a step from its first block
        (First-Block-Cache) then runs the rest of each image with forward_tail: two calls, where the
        stages take one per branch."""
        if blocks < 0 or blocks > self.depth:
            raise ValueError("forward_head: blocks outside 0..depth")
        h, c = self.embed(x, t, y)
        start = h
        for i, block in enumerate(self.dit.blocks):
            if i < blocks:
                h = block(h, c)
        return h, h - start, c

    @torch.jit.export
    def forward_tail(self, h: torch.Tensor, c: torch.Tensor, start: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Blocks [start, depth) over tokens h that left block start - 1, then the final layer (c as
        forward_head gives it): the output and the tokens entering the final layer."""
        if start < 0 or start > self.depth:
            raise ValueError("forward_tail: start outside 0..depth")
        for i, block in enumerate(self.dit.blocks):
            if i >= start:
                h = block(h, c)
        return self.final_layer(h, c), h

    @torch.jit.export
    def forward_split_tails(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, full: int,
                            features: List[torch.Tensor], coefficients: List[float], tail_h: torch.Tensor,
                            tail_c: torch.Tensor, tail_full: int
                            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """forward_split with other images' tails riding along: the first tail_full rows of tail_h
        (tokens leaving block 0, with forward_head's c) run blocks 1.. in the full rows' products,
        and the rest (tokens past every block) only the final layer, which every row shares. The rows
        cost their arithmetic in either call, so this saves a First-Block-Cache pass the fixed cost of
        a tail call of its own (on the shipped model about 1.3 ms of its operations). Returns forward_split's
        two results, the tail rows' output and the tokens the first tail_full of them enter the final
        layer with (forward_tail's)."""
        n = x.shape[0]
        if full < 0 or full > n or tail_full < 0 or tail_full > tail_h.shape[0] or tail_c.shape[0] != tail_h.shape[0]:
            raise ValueError("forward_split_tails: full rows outside 0..N, or tail rows outside 0..M")
        h, c = self.embed(x, t, y)
        hf = h[:full]
        cf = c[:full]
        stacked = self.new_stack(hf)
        both = torch.cat([cf, tail_c[:tail_full]])
        ht = tail_h[:tail_full]
        i = 0
        for b, block in enumerate(self.dit.blocks):
            if b == 1:
                hf = torch.cat([hf, ht])
            rows = hf.shape[0]
            if rows > 0:
                m = block.modulation(cf if b == 0 else both)
                a = block.attention_branch(hf, m[:, 0], m[:, 1])
                stacked[i].copy_(a[:full])
                hf = hf + m[:, 2].unsqueeze(1) * a
                f = block.mlp_branch(hf, m[:, 3], m[:, 4])
                stacked[i + 1].copy_(f[:full])
                hf = hf + m[:, 5].unsqueeze(1) * f
            i += 2
        if self.depth == 1:
            hf = torch.cat([hf, ht])
        parts = [hf[:full]]
        if full < n:
            parts.append(self.cached_blocks(h[full:], c[full:], features, coefficients))
        ended = hf[full:]
        parts.append(ended)
        parts.append(tail_h[tail_full:])
        out = self.final_layer(torch.cat(parts), torch.cat([c, tail_c]))
        return out[:n], stacked, out[n:], ended

    def cached_blocks(self, h: torch.Tensor, c: torch.Tensor, features: List[torch.Tensor],
                      coefficients: List[float]) -> torch.Tensor:
        """The tokens after every block, each branch output taken from the cached features. Small
        stacks (256 KB or less: one or two images of a small model) take one product and one sum
        per slot: few calls, which is what such a step pays for. Larger ones accumulate feature by
        feature in place, reading each cached value once, with no temporary the size of the stack:
        on a VM, a new temporary of a few MB can cost a page fault per 4 KB (~10 us each) when the
        allocator hands back fresh memory, as glibc does in a thread's own arena."""
        if len(features) == 0 or len(features) != len(coefficients):
            raise ValueError("forward_cached needs one coefficient per feature stack, and at least one")
        d = h.shape[2]
        k = 2 * self.depth
        gates = self.gates(c, d).unsqueeze(2)
        small = features[0].numel() <= 65536
        for j in range(len(features)):
            g = gates if coefficients[j] == 1.0 else gates * coefficients[j]
            f = features[j]
            if small:
                h = h + (g * f).sum(0)
            else:
                for i in range(k):
                    h.addcmul_(g[i], f[i])
        return h


class ExportableDiTBf16(ExportableDiT):
    """The same face with bfloat16 weights and arithmetic: the stages take and return bfloat16
    tokens, modulation and features, while latents, timesteps and the model output stay float32
    (the sampler's arithmetic). The timestep frequencies are computed in float32, as 999 is not
    exact in bfloat16. The fused steps are the base class's: they go through embed and final_layer."""

    def __init__(self, dit: DiT):
        super().__init__(dit.to(torch.bfloat16))

    @torch.jit.export
    def embed(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        tokens = self.dit.x_embedder(x.to(torch.bfloat16)) + self.dit.pos_embed
        freqs = timestep_embedding(t, self.dit.t_embedder.freq_dim).to(torch.bfloat16)
        return tokens, self.dit.t_embedder.mlp(freqs) + self.dit.y_embedder(y)

    @torch.jit.export
    def final_layer(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.dit.final(x, c).float()

    def gates(self, c: torch.Tensor, d: int) -> torch.Tensor:
        """One product per gate over its own [D, D] rows: libtorch's bfloat16 batched product
        copies the strided weight view first (148 MB on DiT-XL/2), ~50x the products' cost."""
        w = self.ada_weight.view(self.depth, 6, d, d)
        b = self.ada_bias.view(self.depth, 6, d)
        s = torch.nn.functional.silu(c)
        out: List[torch.Tensor] = []
        for i in range(self.depth):
            out.append(torch.nn.functional.linear(s, w[i, 2], b[i, 2]))
            out.append(torch.nn.functional.linear(s, w[i, 5], b[i, 5]))
        return torch.stack(out)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, c = self.embed(x, t, y)
        for block in self.dit.blocks:
            h = block(h, c)
        return self.final_layer(h, c)


def quantize_int8(dit: DiT) -> DiT:
    """The DiT, changed in place: its blocks' attention and MLP linear layers get int8 weights (per
    tensor) and quantize their inputs per call (libtorch's dynamic quantization; fbgemm on x86).
    They hold 2/3 of the blocks' weights and nearly all the arithmetic. The adaLN and embedding
    layers run on one row per image and stay float32, so a cached step's gates are the full step's."""
    names = {name for name, m in dit.named_modules()
             if isinstance(m, nn.Linear) and name.startswith("blocks.") and (".attn." in name or ".mlp." in name)}
    qconfig = torch.ao.quantization.default_dynamic_qconfig
    return torch.ao.quantization.quantize_dynamic(dit.eval(), {name: qconfig for name in names}, dtype=torch.qint8,
                                                   inplace=True)
