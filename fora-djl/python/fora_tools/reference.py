"""Reference sampling for the model families (DiT with a latent decoder, PixArt-alpha), the
ground truth of the Java parity tests: a staged forward with FORA over any block layout, and
DDIM / DPM-Solver++(2M) with classifier-free guidance on the first `guided_channels` channels.

The samplers follow the Java core exactly (dev.fora.core.sampling): DiT's respaced schedule
(`diffusion.Schedule.respaced`), the model fed the original timestep, x0 optionally clipped, and
for DPM-Solver++(2M) the multistep update on the respaced half-log-SNR with a first-order
last step to abar = 1. `dpms` is DPM-Solver++(2M) as PixArt-alpha's `DPMS` runs it (the official
DPM-Solver code: `NoiseScheduleVP('discrete')`, `skip_type='time_uniform'`, `method='multistep'`,
order 2): continuous times t_j = 1 - j (1 - 1/N) / K, log alpha interpolated linearly in t
between the discrete steps (t_n = (n + 1) / N), the model fed (t - 1/N) * 1000, a second-order
last step to t = 1/N (first order only when K < 10), no clipping.
"""
import numpy as np
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


class TimeUniformGrid:
    """The time grid and noise levels of the official DPM-Solver with a discrete schedule."""

    def __init__(self, steps: int, betas: torch.Tensor = None):
        from .diffusion import linear_betas
        betas = linear_betas() if betas is None else betas
        n = len(betas)
        log_alpha = (0.5 * torch.log(1 - betas.double()).cumsum(0)).float().double().numpy()
        t_keys = torch.linspace(0.0, 1.0, n + 1)[1:].double().numpy()
        self.n = n
        self.t = torch.linspace(1.0, 1.0 / n, steps + 1).double().numpy()
        self.log_alpha = np.interp(self.t, t_keys, log_alpha)
        self.alpha = np.exp(self.log_alpha)
        self.sigma = np.sqrt(1.0 - np.exp(2.0 * self.log_alpha))
        self.lam = self.log_alpha - np.log(self.sigma)
        self.model_time = (self.t - 1.0 / n) * 1000.0


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
    grid = TimeUniformGrid(s.num) if sampler == "dpms" else None
    for i in reversed(range(s.num)):
        x_in = x if cfg_scale == 1.0 else torch.cat([x, x])
        j = s.num - 1 - i  # the step, 0 = noisiest
        t_in = torch.full((x_in.shape[0],), float(grid.model_time[j] if grid else s.timesteps[i]))
        with torch.no_grad():
            out = guide(forward(x_in, t_in, both, i), n, ch, cfg_scale, guided_channels)
        eps = out[:, :ch]
        if grid is not None:
            # data prediction, then DPM-Solver++ (first order at the first step and, for K < 10, the last)
            x0 = (x - grid.sigma[j] * eps) / grid.alpha[j]
            h = grid.lam[j + 1] - grid.lam[j]
            phi = -grid.alpha[j + 1] * math.expm1(-h)
            if prev_x0 is None or (s.num < 10 and j == s.num - 1):
                d = x0
            else:
                c = 1.0 / (2.0 * (prev_h / h))
                d = (1.0 + c) * x0 - c * prev_x0
            x = (grid.sigma[j + 1] / grid.sigma[j]) * x + phi * d
            prev_x0, prev_h = x0, h
            keep(i, x)
            continue
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
