"""The small models of each family that the Java tests load (committed, ~1-2 MB each), with their
goldens and a text-embeddings file for the CLI tests.

Random weights alone make a poor test: a random model does not predict the noise, so unclipped
latents grow to hundreds and neither guidance nor caching changes them much. So each small
model is first fitted for a few hundred steps (~20 s) to a synthetic latent task with DiT's eps
objective and 10 % condition dropout: x0 is a smooth 4-channel template chosen by the class (DiT)
or projected from the mean of the real caption tokens (PixArt), plus smooth noise. Then samples
stay of order one and guidance and caching visibly change them. The decoders keep random weights.

    families/pixart-small      PixArt-alpha layout: 8x8x4 latent, patch 2 (16 tokens), D 64, depth 3,
                               4 heads, 8 caption tokens of width 32, official guidance
                               (3 channels, all 4 under DPM-Solver), a 2x latent decoder
    families/dit-latent-small  DiT layout: 8x8x4 latent, D 64, depth 2, 10 classes, guided on 3 of
                               4 channels (as DiT's sample.py), the same kind of decoder
    families/golden-*          fora_tools.goldens_families of each
    families/pixart-small-prompts.npz  3 prompts' embeddings [3, 8, 32] and masks

    python3 -m fora_tools.small_families --out ../src/test/resources/families
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

from . import add_decoder, export, export_pixart
from .dit import DiT, DiTConfig
from .pixart import PixArt, PixArtConfig, perturb_zero_layers
from .vae import DecoderConfig

PIXART = PixArtConfig(input_size=8, in_channels=4, patch_size=2, hidden_size=64, depth=3, num_heads=4,
                      caption_channels=32, model_max_length=8)
DIT = DiTConfig(input_size=8, in_channels=4, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10)
DECODER = DecoderConfig(latent_channels=4, block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8)


def _smooth(g: torch.Generator, n: int, side: int) -> torch.Tensor:
    """Smooth 4-channel fields: 2x2-upsampled Gaussian noise, [n, 4, side, side]."""
    return torch.randn(n, 4, side // 2, side // 2, generator=g).repeat_interleave(2, 2).repeat_interleave(2, 3)


def fit(model, cond_of, steps: int = 600, batch: int = 32, seed: int = 0) -> None:
    """A few hundred Adam steps of the eps MSE on synthetic latents; `cond_of(g, n)` gives
    (model conditioning for the noisy batch, x0 templates)."""
    from .diffusion import Schedule
    g = torch.Generator().manual_seed(seed)
    abar = Schedule.full().abar.float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        cond, template = cond_of(g, batch)
        x0 = template + 0.5 * _smooth(g, batch, template.shape[-1])
        t = torch.randint(0, 1000, (batch,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        out = model(xt, t.float(), *cond)
        loss = ((out[:, :4] - eps) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    print(f"fitted {type(model).__name__}: last eps MSE {loss.item():.3f}")


def make(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    px = os.path.join(out, "pixart-small")
    shutil.rmtree(px, ignore_errors=True)
    torch.manual_seed(11)
    pixart = perturb_zero_layers(PixArt(PIXART))
    proj = torch.randn(PIXART.caption_channels, 4 * 4 * 4, generator=torch.Generator().manual_seed(21))
    length = PIXART.model_max_length

    def caption_task(g, n):
        y = torch.randn(n, length, PIXART.caption_channels, generator=g)
        real = torch.randint(1, length + 1, (n,), generator=g)
        mask = (torch.arange(length)[None] < real[:, None]).float()
        mean = (y * mask[..., None]).sum(1) / real[:, None]
        template = (mean @ proj).reshape(n, 4, 4, 4).repeat_interleave(2, 2).repeat_interleave(2, 3)
        drop = torch.rand(n, generator=g) < 0.1
        y = torch.where(drop[:, None, None], pixart.y_embedder.y_embedding.detach()[None], y)
        return (y, mask), template

    fit(pixart, caption_task, seed=31)
    export_pixart.export(PIXART, pixart.state_dict(), px, "pixart-small", export_pixart.official_guidance(PIXART))
    add_decoder.add(px, DECODER, seed=12)

    dt = os.path.join(out, "dit-latent-small")
    shutil.rmtree(dt, ignore_errors=True)
    torch.manual_seed(13)
    dit = DiT(DIT)
    with torch.no_grad():  # adaLN-Zero makes a fresh DiT the identity
        for name, p in dit.named_parameters():
            if "adaLN_modulation" in name or "final_layer.linear" in name:
                p.normal_(0.0, 0.02)
    templates = _smooth(torch.Generator().manual_seed(22), DIT.num_classes, DIT.input_size)

    def class_task(g, n):
        y = torch.randint(0, DIT.num_classes, (n,), generator=g)
        template = templates[y]
        y = torch.where(torch.rand(n, generator=g) < 0.1, torch.full_like(y, DIT.num_classes), y)
        return (y,), template

    fit(dit, class_task, seed=32)
    export.export(DIT, dit.state_dict(), dt, name="dit-latent-small", guided_channels=3, clip_denoised=False)
    add_decoder.add(dt, DECODER, seed=14)

    g = torch.Generator().manual_seed(15)
    emb = torch.randn(3, PIXART.model_max_length, PIXART.caption_channels, generator=g).numpy().astype("<f4")
    mask = np.zeros((3, PIXART.model_max_length), dtype=bool)
    for i, real in enumerate((8, 5, 2)):
        mask[i, :real] = True
    np.savez(os.path.join(out, "pixart-small-prompts.npz"), embeddings=emb, mask=mask)

    for model, golden in (("pixart-small", "golden-pixart"), ("dit-latent-small", "golden-dit-latent")):
        subprocess.run([sys.executable, "-m", "fora_tools.goldens_families", "--model", os.path.join(out, model),
                        "--out", os.path.join(out, golden)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    make(ap.parse_args().out)


if __name__ == "__main__":
    main()
