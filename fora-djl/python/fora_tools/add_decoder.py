"""Add a latent decoder (the decoding half of Stable Diffusion's AutoencoderKL) to a FORA4J model
directory: writes `decoder.pt` and records it in `manifest.json` (role `decoder`, section
`decoder` with the layout and the latent scale factor). The pipeline and `fora generate` then
decode the sampled latents to pixels; a directory without a decoder produces pixels directly.

`decoder.pt`: `forward(z[N,C,h,w] f32)` = decoder(post_quant_conv(z / scale_factor)) ->
[N,3,h*8,w*8] in about [-1, 1]. Its latent channels must equal the model's `in_channels`.

Examples:
    # DiT-XL/2 and the sd-vae-ft-ema weights DiT's sample.py uses (diffusers or CompVis layout)
    python3 -m fora_tools.add_decoder --model /data/dit-xl2 --vae sd-vae-ft-ema/diffusion_pytorch_model.bin
    # random weights of the same layout, for benchmarks
    python3 -m fora_tools.add_decoder --model /work/bench/dit-xl2-random --random
"""
import argparse
import json
import os

import torch

from .export import sha256
from .vae import (SD_VAE, DecoderConfig, ExportableDecoder, LatentDecoder, load_decoder, load_decoder_checkpoint,
                  randomise)

FILE = "decoder.pt"
AGREEMENT_BOUND = 1e-5


def config_for(name: str) -> DecoderConfig:
    if name == "sd":
        return SD_VAE
    with open(name) as f:
        return DecoderConfig.from_json(json.load(f))


def add(model_dir: str, cfg: DecoderConfig, vae_path=None, seed: int = 0, state_dict=None) -> dict:
    """Exports the decoder into `model_dir` and updates its manifest; returns the manifest."""
    path = os.path.join(model_dir, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    arch = manifest["architecture"]
    if cfg.latent_channels != arch["in_channels"]:
        raise ValueError(f"the decoder takes {cfg.latent_channels}-channel latents but the model makes "
                         f"{arch['in_channels']} channels")
    if state_dict is None and vae_path is not None:
        state_dict = load_decoder_checkpoint(vae_path)
    if state_dict is not None:
        dec = load_decoder(cfg, state_dict)
    else:
        torch.manual_seed(seed)
        dec = randomise(LatentDecoder(cfg), seed).eval()
    scripted = torch.jit.script(ExportableDecoder(dec))
    z = torch.randn(1, cfg.latent_channels, min(arch["input_size"], 8), min(arch["input_size"], 8),
                    generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        diff = (scripted(z) - dec(z / cfg.scale_factor)).abs().max().item()
    if diff > AGREEMENT_BOUND:
        raise RuntimeError(f"scripted and eager decoder differ by {diff:.3g}")
    scripted.save(os.path.join(model_dir, FILE))
    side = arch["input_size"] * cfg.upsampling
    manifest["files"]["decoder"] = {"path": FILE, "sha256": sha256(os.path.join(model_dir, FILE)),
                                    "bytes": os.path.getsize(os.path.join(model_dir, FILE))}
    manifest["decoder"] = dict(cfg.to_json(), image_size=side, value_range=[-1.0, 1.0],
                               source="random" if state_dict is None else os.path.basename(vae_path or "state_dict"),
                               interface="forward(z[N,C,h,w] f32, unscaled) -> [N,out_channels,h*upsampling,w*upsampling]: "
                                         "decoder(post_quant_conv(z / scale_factor))")
    # Latents are not bounded to [-1, 1]: DiT's and PixArt's samplers do not clip them.
    manifest["diffusion"]["clip_denoised"] = False
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"added a {cfg.upsampling}x decoder ({manifest['decoder']['source']}) to {model_dir}: "
          f"{side}x{side} images")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an exported model directory")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--vae", help="AutoencoderKL weights: diffusers diffusion_pytorch_model.bin or .safetensors, or a CompVis .ckpt")
    src.add_argument("--random", action="store_true", help="random weights of the same layout")
    ap.add_argument("--config", default="sd", help="'sd' (Stable Diffusion's AutoencoderKL) or a JSON file of "
                                                   "DecoderConfig fields")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    add(args.model, config_for(args.config), None if args.random else args.vae, seed=args.seed)


if __name__ == "__main__":
    main()
