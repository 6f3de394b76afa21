"""DiT's Gaussian diffusion: linear schedule, respacing, the hybrid training loss (epsilon MSE +
variational bound for the learned variance), and reference samplers (DDPM, DDIM) with FORA.

Written from the DiT / improved-DDPM papers and shared/notes/dit-and-fora.md. Everything is
float64 on the schedule side, as the originals keep their tables in numpy float64.
"""
import math
from typing import Callable, List, Optional

import torch

TRAIN_STEPS = 1000


def linear_betas(steps: int = TRAIN_STEPS) -> torch.Tensor:
    scale = 1000.0 / steps
    return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)


def space_timesteps(num_steps: int, k: int) -> List[int]:
    """DiT's one-section respacing: indices round(i * stride), accumulated in floating point."""
    if k == 1:
        return [0]
    stride = (num_steps - 1) / (k - 1)
    cur, taken = 0.0, []
    for _ in range(k):
        taken.append(round(cur))  # Python round: half to even, as in the original
        cur += stride
    return sorted(set(taken))


class Schedule:
    """Tables of a (possibly respaced) process; `timesteps[i]` is the original step fed to the model."""

    def __init__(self, betas: torch.Tensor, timesteps: List[int]):
        self.betas = betas
        self.timesteps = timesteps
        self.num = len(betas)
        alphas = 1.0 - betas
        self.abar = torch.cumprod(alphas, 0)
        self.abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.abar[:-1]])
        self.sqrt_recip_abar = torch.sqrt(1.0 / self.abar)
        self.sqrt_recipm1_abar = torch.sqrt(1.0 / self.abar - 1)
        self.post_var = betas * (1.0 - self.abar_prev) / (1.0 - self.abar)
        # The posterior variance is 0 at index 0: its log uses index 1's value instead.
        self.post_log_var = torch.log(torch.cat([self.post_var[1:2], self.post_var[1:]]))
        self.post_c1 = betas * torch.sqrt(self.abar_prev) / (1.0 - self.abar)
        self.post_c2 = (1.0 - self.abar_prev) * torch.sqrt(alphas) / (1.0 - self.abar)

    @staticmethod
    def full() -> "Schedule":
        return Schedule(linear_betas(), list(range(TRAIN_STEPS)))

    @staticmethod
    def respaced(k: int) -> "Schedule":
        base = linear_betas()
        abar = torch.cumprod(1.0 - base, 0)
        use = space_timesteps(TRAIN_STEPS, k)
        last, betas = 1.0, []
        for i in use:
            betas.append(1.0 - abar[i].item() / last)
            last = abar[i].item()
        return Schedule(torch.tensor(betas, dtype=torch.float64), use)


def _gather(table: torch.Tensor, idx: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return table.to(like.device)[idx].float().view(-1, *([1] * (like.dim() - 1)))


def normal_kl(m1, lv1, m2, lv2):
    return 0.5 * (-1.0 + lv2 - lv1 + torch.exp(lv1 - lv2) + (m1 - m2) ** 2 * torch.exp(-lv2))


def _approx_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """Log-likelihood of 8-bit data in [-1, 1] under a Gaussian discretised to bins of 2/255."""
    centred = x - means
    inv_std = torch.exp(-log_scales)
    cdf_plus = _approx_cdf(inv_std * (centred + 1.0 / 255))
    cdf_min = _approx_cdf(inv_std * (centred - 1.0 / 255))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def learned_log_variance(s: Schedule, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Learned-range variance: interpolate log(beta) and the clipped log posterior variance."""
    frac = (v + 1) / 2
    return frac * _gather(torch.log(s.betas), idx, v) + (1 - frac) * _gather(s.post_log_var, idx, v)


def training_loss(model, s: Schedule, x0, y, t, noise):
    """DiT's hybrid objective at timesteps t with the given noise: eps MSE + the variational
    bound (with the mean frozen) that trains the variance. Returns (loss, mse, vb) batch means."""
    xt = _gather(torch.sqrt(s.abar), t, x0) * x0 + _gather(torch.sqrt(1 - s.abar), t, x0) * noise
    out = model(xt, t.float(), y)
    c = x0.shape[1]
    eps, v = out[:, :c], out[:, c:]
    mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
    # Bound term: the gradient reaches only the variance, as in DiT.
    eps_frozen = eps.detach()
    pred_x0 = _gather(s.sqrt_recip_abar, t, xt) * xt - _gather(s.sqrt_recipm1_abar, t, xt) * eps_frozen
    model_mean = _gather(s.post_c1, t, xt) * pred_x0 + _gather(s.post_c2, t, xt) * xt
    model_lv = learned_log_variance(s, v, t)
    true_mean = _gather(s.post_c1, t, xt) * x0 + _gather(s.post_c2, t, xt) * xt
    true_lv = _gather(s.post_log_var, t, xt)
    kl = normal_kl(true_mean, true_lv, model_mean, model_lv).mean(dim=(1, 2, 3)) / math.log(2.0)
    nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_lv).mean(dim=(1, 2, 3)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    return (mse + vb).mean(), mse.mean(), vb.mean()


# ---------------------------------------------------------------------------------------
# Reference sampling, the ground truth for the Java parity tests.

def guided_output(model_out: torch.Tensor, n: int, channels: int, cfg_scale: float):
    """Split a batched [cond; uncond] output into guided eps and the cond half's variance value.

    With cfg_scale == 1 the batch holds only the cond half."""
    eps, v = model_out[:, :channels], model_out[:, channels:]
    if cfg_scale == 1.0:
        return eps, v
    cond, uncond = eps[:n], eps[n:]
    return uncond + cfg_scale * (cond - uncond), v[:n]


class ForaForward:
    """FORA's cached forward over an ExportableDiT's stages: on refresh steps every block
    computes and stores its attention and MLP outputs (before gating); on the other steps it
    reuses them with the gates of the current conditioning. interval None = no cache."""

    def __init__(self, model, interval: Optional[int], total_steps: int):
        self.model, self.interval, self.total = model, interval, total_steps
        self.cache = {}
        self.refreshes = 0

    def is_refresh(self, i: int) -> bool:
        return self.interval is None or i == self.total - 1 or i % self.interval == 0

    def __call__(self, x, t, y, i: int):
        m = self.model
        refresh = self.is_refresh(i)
        self.refreshes += int(refresh)
        h, c = m.embed(x, t, y)
        mods = m.modulation(c)
        for b in range(mods.shape[0]):
            shift1, scale1, gate1, shift2, scale2, gate2 = mods[b].unbind(0)
            if refresh:
                self.cache[(b, "attn")] = m.attention(b, h, shift1, scale1)
            h = h + gate1.unsqueeze(1) * self.cache[(b, "attn")]
            if refresh:
                self.cache[(b, "mlp")] = m.mlp(b, h, shift2, scale2)
            h = h + gate2.unsqueeze(1) * self.cache[(b, "mlp")]
        return m.final_layer(h, c)


def sample(forward: ForaForward, s: Schedule, noise: torch.Tensor, labels: torch.Tensor, null_class: int,
           cfg_scale: float, sampler: str, step_noise: Optional[List[torch.Tensor]] = None,
           clip: bool = True, keep: Callable[[int, torch.Tensor], None] = lambda i, x: None):
    """DDIM (eta 0) or DDPM (learned-range variance) from `noise`, loop index i = K-1 .. 0.

    DDPM takes step_noise[K-1-i] at loop index i (drawn at every step, unused at i = 0)."""
    n, ch = noise.shape[0], noise.shape[1]
    x = noise
    y_in = labels if cfg_scale == 1.0 else torch.cat([labels, torch.full_like(labels, null_class)])
    for i in reversed(range(s.num)):
        x_in = x if cfg_scale == 1.0 else torch.cat([x, x])
        t_in = torch.full((x_in.shape[0],), float(s.timesteps[i]))
        with torch.no_grad():
            out = forward(x_in, t_in, y_in, i)
        eps, v = guided_output(out, n, ch, cfg_scale)
        idx = torch.full((n,), i, dtype=torch.long)
        x0 = _gather(s.sqrt_recip_abar, idx, x) * x - _gather(s.sqrt_recipm1_abar, idx, x) * eps
        if clip:
            x0 = x0.clamp(-1, 1)
        if sampler == "ddim":
            eps_x0 = (_gather(s.sqrt_recip_abar, idx, x) * x - x0) / _gather(s.sqrt_recipm1_abar, idx, x)
            x = x0 * _gather(torch.sqrt(s.abar_prev), idx, x) + _gather(torch.sqrt(1 - s.abar_prev), idx, x) * eps_x0
        elif sampler == "ddpm":
            mean = _gather(s.post_c1, idx, x) * x0 + _gather(s.post_c2, idx, x) * x
            if i > 0:
                log_var = learned_log_variance(s, v, idx)
                x = mean + torch.exp(0.5 * log_var) * step_noise[s.num - 1 - i]
            else:
                x = mean
        else:
            raise ValueError(f"unknown sampler {sampler}")
        keep(i, x)
    return x
