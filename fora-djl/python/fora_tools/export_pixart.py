"""Export an official-layout PixArt-alpha checkpoint to a FORA4J model directory.

The directory holds `manifest.json` (architecture family `pixart-alpha`) and `pixart.pt`, one
TorchScript module: `forward(x, t, y, mask)` is the whole model (the uncached baseline); the
methods `embed`, `modulation`, `attention`, `cross_attention`, `mlp`, `final_layer` are its
stages and `null_caption` returns the null caption embedding. `--vae` adds the latent decoder
(see fora_tools.add_decoder).

Examples:
    # the official PixArt-XL-2-256x256.pth and the sd-vae-ft-ema decoder it samples with
    python3 -m fora_tools.export_pixart --checkpoint PixArt-XL-2-256x256.pth --config PixArt-XL/2-256 \\
        --vae sd-vae-ft-ema/diffusion_pytorch_model.bin --out /data/pixart-256
    # random weights at the full size, for benchmarks (~2.5 GB with the decoder; never commit)
    python3 -m fora_tools.export_pixart --random --config PixArt-XL/2-256 --random-vae --out /work/bench/pixart-256-random
"""
import argparse
import json
import os

import torch

from . import add_decoder
from .diffusion import TRAIN_STEPS
from .export import EXPORTER_VERSION, FORMAT, sha256
from .pixart import (FAMILY, PRESETS, ExportablePixArt, PixArt, PixArtConfig, load_checkpoint, load_official,
                     perturb_zero_layers, preset)
from .reference import StagedForward

AGREEMENT_BOUND = 1e-5
# Version 1: the stages only (version 2 adds the DiT's fused step methods, which PixArt does not export).
FORMAT_VERSION = 1
FILE = "pixart.pt"


def config_for(name: str) -> PixArtConfig:
    if name in PRESETS:
        return preset(name)
    with open(name) as f:  # a JSON file of PixArtConfig fields
        return PixArtConfig.from_json(json.load(f))


def official_guidance(cfg: PixArtConfig) -> dict:
    """How PixArt-alpha's own samplers guide: its `forward_with_cfg` (the IDDPM path of
    scripts/inference.py) mixes only channels [:3]; its DPM-Solver and SA-Solver paths call
    `forward_with_dpmsolver` and mix every eps channel in `model_wrapper`. Both give the
    unconditional half the prompts' token mask (the mask is repeated over the CFG batch)."""
    return {"guided_channels": min(3, cfg.in_channels),
            "guided_channels_by_sampler": {"dpm-solver++": cfg.in_channels, "dpms": cfg.in_channels}}


def sample_inputs(cfg: PixArtConfig, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g)
    y = torch.randn(batch, cfg.model_max_length, cfg.caption_channels, generator=g)
    mask = torch.ones(batch, cfg.model_max_length)
    mask[0, max(1, cfg.model_max_length // 3):] = 0  # a short caption next to a full one
    t = torch.tensor([999.0, 500.0][:batch] + [0.0] * max(0, batch - 2))
    return x, t, y, mask


def check_agreement(scripted, cfg: PixArtConfig) -> float:
    """Max abs difference between the stage path (as Java runs it) and the whole-model forward."""
    x, t, y, mask = sample_inputs(cfg)
    with torch.no_grad():
        stages = StagedForward(scripted, FAMILY, None, 1)(x, t, (y, mask), 0)
        diff = (stages - scripted(x, t, y, mask)).abs().max().item()
    if diff > AGREEMENT_BOUND:
        raise RuntimeError(f"component path and whole model differ by {diff:.3g} > {AGREEMENT_BOUND}")
    return diff


def export(cfg: PixArtConfig, state_dict, out: str, name: str, guidance: dict = None) -> dict:
    os.makedirs(out, exist_ok=True)
    model = PixArt(cfg)
    if state_dict is not None:
        load_official(model, state_dict)
    model.eval()
    scripted = torch.jit.script(ExportablePixArt(model))
    diff = check_agreement(scripted, cfg)
    scripted.save(os.path.join(out, FILE))
    if guidance is None:
        guidance = {"guided_channels": cfg.in_channels}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": cfg.to_json(),
        "diffusion": {"train_steps": TRAIN_STEPS, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02,
                      "learn_sigma": cfg.pred_sigma, "clip_denoised": False},
        "guidance": guidance,
        "files": {"dit": {"path": FILE, "sha256": sha256(os.path.join(out, FILE)),
                          "bytes": os.path.getsize(os.path.join(out, FILE))}},
        "interface": {
            "forward": "(x[N,C,H,W] f32, t[N] f32 original timesteps, y[N,L,W] f32 caption embeddings, "
                       "mask[N,L] f32 1 = real token) -> [N,out_channels,H,W]",
            "embed": "(x, t, y) -> (tokens[N,T,D], t_embedding[N,D], context[N,L,D])",
            "modulation": "(t_embedding[N,D]) -> [depth,6,N,D] adaLN-single: scale_shift_table + t_block(t)",
            "attention": "(block i64, x[N,T,D], shift[N,D], scale[N,D]) -> [N,T,D] before gate",
            "cross_attention": "(block i64, x[N,T,D], context[N,L,D], mask[N,L]) -> [N,T,D] ungated",
            "mlp": "(block i64, x[N,T,D], shift[N,D], scale[N,D]) -> [N,T,D] before gate",
            "final_layer": "(x[N,T,D], t_embedding[N,D]) -> [N,out_channels,H,W]",
            "null_caption": "() -> [L,W] y_embedder.y_embedding",
        },
        "component_max_abs_diff": diff,
        "exporter": {"name": "fora_tools.export_pixart", "version": EXPORTER_VERSION, "torch": torch.__version__},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def random_state_dict(cfg: PixArtConfig, seed: int) -> dict:
    torch.manual_seed(seed)
    return perturb_zero_layers(PixArt(cfg)).state_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="official-layout PixArt checkpoint (.pth, {'state_dict': ...} or plain)")
    src.add_argument("--random", action="store_true", help="random weights, for benchmarks")
    ap.add_argument("--config", required=True, help=f"a preset ({', '.join(PRESETS)}) or a JSON file of PixArtConfig fields")
    ap.add_argument("--guided-channels", type=int,
                    help="latent channels classifier-free guidance mixes (default: PixArt's own samplers' choice "
                         "for an official checkpoint with a preset, see docs/model-families.md; all channels otherwise)")
    vae = ap.add_mutually_exclusive_group()
    vae.add_argument("--vae", help="AutoencoderKL weights (diffusers .bin or CompVis .ckpt) to add as the decoder")
    vae.add_argument("--random-vae", action="store_true", help="a random-weight decoder of the same layout")
    ap.add_argument("--vae-config", default="sd", help="'sd' (Stable Diffusion's AutoencoderKL) or a JSON file")
    ap.add_argument("--name", help="model name in the manifest")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0, help="with --random / --random-vae")
    args = ap.parse_args()
    cfg = config_for(args.config)
    sd = random_state_dict(cfg, args.seed) if args.random else load_checkpoint(args.checkpoint)
    if args.guided_channels is not None:
        if not 1 <= args.guided_channels <= cfg.in_channels:
            ap.error(f"--guided-channels must be 1..{cfg.in_channels}")
        guidance = {"guided_channels": args.guided_channels}
    elif args.checkpoint and args.config in PRESETS:
        guidance = official_guidance(cfg)
    else:
        guidance = {"guided_channels": cfg.in_channels}
    name = args.name or (args.config.replace("/", "-") + ("-random" if args.random else "")
                         if args.config in PRESETS else os.path.basename(os.path.normpath(args.out)))
    m = export(cfg, sd, args.out, name, guidance)
    print(f"exported {m['name']} to {args.out}: component vs whole max abs diff {m['component_max_abs_diff']:.3g}")
    if args.vae or args.random_vae:
        add_decoder.add(args.out, add_decoder.config_for(args.vae_config),
                        None if args.random_vae else args.vae, seed=args.seed)


if __name__ == "__main__":
    main()
