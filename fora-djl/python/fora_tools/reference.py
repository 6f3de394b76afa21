"""Reference sampling for the model families (DiT with a latent decoder, PixArt-alpha), the
ground truth of the Java parity tests: a staged forward with FORA over any block layout, and
DDIM / DPM-Solver++(2M) with classifier-free guidance on the first `guided_channels` channels.

The samplers follow the Java core exactly (dev.fora.core.sampling): DiT's respaced schedule
(`diffusion.Schedule.respaced`), the model fed the original timestep, x0 optionally clipped, and
for DPM-Solver++(2M) the multistep update on the respaced half-log-SNR with a first-order
last step to abar = 1.
"""
import math
from typing import Callable, Dict, List, Optional

import torch

from .diffusion import Schedule, _gather

DIT_BRANCHES = ("attn", "mlp")
PIXART_BRANCHES = ("attn", "cross", "mlp")


class StagedForward:
    """FORA's cached forward over an exported module's stages (DiT: embed, modulation, attention,
    mlp, final_layer; PixArt adds cross_attention and a caption context). On refresh steps every
    branch computes and stores its output before the gate; on the others it is reused with the
    current step's gates. The cross-attention branch of PixArt is ungated. interval None = no cache."""

    def __init__(self, model, family: str, interval: Optional[int], total_steps: int):
        self.model, self.family, self.interval, self.total = model, family, interval, total_steps
        self.cache: Dict = {}
        self.refreshes = 0

    def is_refresh(self, i: int) -> bool:
        return self.interval is None or i == self.total - 1 or i % self.interval == 0

    def __call__(self, x, t, cond, i: int):
        m = self.model
        refresh = self.is_refresh(i)
        self.refreshes += int(refresh)
        if self.family == "pixart-alpha":
            y, mask = cond
            h, c, context = m.embed(x, t, y)
        else:
            h, c = m.embed(x, t, cond)
            context = mask = None
        mods = m.modulation(c)
        for b in range(mods.shape[0]):
            shift1, scale1, gate1, shift2, scale2, gate2 = mods[b].unbind(0)
            if refresh:
                self.cache[(b, "attn")] = m.attention(b, h, shift1, scale1)
            h = h + gate1.unsqueeze(1) * self.cache[(b, "attn")]
            if context is not None:
                if refresh:
                    self.cache[(b, "cross")] = m.cross_attention(b, h, context, mask)
                h = h + self.cache[(b, "cross")]
            if refresh:
                self.cache[(b, "mlp")] = m.mlp(b, h, shift2, scale2)
            h = h + gate2.unsqueeze(1) * self.cache[(b, "mlp")]
        return m.final_layer(h, c)


def guide(out: torch.Tensor, n: int, channels: int, cfg_scale: float, guided_channels: int) -> torch.Tensor:
    """[cond; uncond] output -> guided eps on the first `guided_channels` channels; every other
    channel (unguided eps, learned variance) from the cond half. As dev.fora.core ClassifierFreeGuidance."""
    if cfg_scale == 1.0:
        return out
    cond, uncond = out[:n], out[n:]
    g = guided_channels
    mixed = uncond[:, :g] + cfg_scale * (cond[:, :g] - uncond[:, :g])
    return torch.cat([mixed, cond[:, g:]], dim=1)


def sample(forward: Callable, s: Schedule, noise: torch.Tensor, cond, uncond, cfg_scale: float, sampler: str,
           guided_channels: int, clip: bool, concat: Callable,
           keep: Callable[[int, torch.Tensor], None] = lambda i, x: None) -> torch.Tensor:
    """DDIM (eta 0) or DPM-Solver++(2M) from `noise`, loop index i = K-1 .. 0.

    `cond` is the batch's conditioning, `uncond` the unconditional rows for it, `concat(a, b)`
    joins two conditionings along the batch."""
    n, ch = noise.shape[0], noise.shape[1]
    x = noise
    both = cond if cfg_scale == 1.0 else concat(cond, uncond)
    prev_x0, prev_h = None, None
    for i in reversed(range(s.num)):
        x_in = x if cfg_scale == 1.0 else torch.cat([x, x])
        t_in = torch.full((x_in.shape[0],), float(s.timesteps[i]))
        with torch.no_grad():
            out = guide(forward(x_in, t_in, both, i), n, ch, cfg_scale, guided_channels)
        eps = out[:, :ch]
        idx = torch.full((n,), i, dtype=torch.long)
        a, b = _gather(s.sqrt_recip_abar, idx, x), _gather(s.sqrt_recipm1_abar, idx, x)
        x0 = a * x - b * eps
        if clip:
            x0 = x0.clamp(-1, 1)
        if sampler == "ddim":
            eps_x0 = (a * x - x0) / b
            x = x0 * _gather(torch.sqrt(s.abar_prev), idx, x) + _gather(torch.sqrt(1 - s.abar_prev), idx, x) * eps_x0
        elif sampler == "dpm-solver++":
            if i == 0:
                x = x0
            else:
                abar_s, abar_t = s.abar[i].item(), s.abar_prev[i].item()
                lam = lambda ab: 0.5 * math.log(ab / (1.0 - ab))
                h = lam(abar_t) - lam(abar_s)
                sigma_s, sigma_t, alpha_t = math.sqrt(1 - abar_s), math.sqrt(1 - abar_t), math.sqrt(abar_t)
                phi = -alpha_t * math.expm1(-h)
                if prev_x0 is None:
                    d = x0
                else:
                    c = 1.0 / (2.0 * (prev_h / h))
                    d = (1.0 + c) * x0 - c * prev_x0
                x = (sigma_t / sigma_s) * x + phi * d
                prev_x0, prev_h = x0, h
        else:
            raise ValueError(f"unknown sampler {sampler}")
        keep(i, x)
    return x
