"""Our latent decoder against the official Stable Diffusion decoder class (CompVis/stable-diffusion,
`ldm/modules/diffusionmodules/model.py`), when a checkout is given:

    OFFICIAL_SD=/path/to/stable-diffusion /usr/bin/python3 -m pytest -q tests/test_official_vae.py

Nothing of it is committed here. That file imports einops and two names of its own repository
(`instantiate_from_config`, `LinearAttention`) that the decoder does not use; `_stubs` supplies
placeholders. AutoencoderKL's `post_quant_conv` is a 1x1 convolution added next to the official
`Decoder` (as `ldm.models.autoencoder.AutoencoderKL` does), so the state dicts are the decoding
half of the official VAE, in CompVis' spelling; `convert_state_dict` maps them to diffusers'.
"""
import importlib.util
import os
import sys
import types

import pytest
import torch
from torch import nn

from fora_tools.vae import DecoderConfig, LatentDecoder, SD_VAE, convert_state_dict, load_decoder, randomise, to_ldm

OFFICIAL = os.environ.get("OFFICIAL_SD")
pytestmark = pytest.mark.skipif(not OFFICIAL, reason="set OFFICIAL_SD to a CompVis/stable-diffusion checkout")

SMALL = DecoderConfig(block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=32)


@pytest.fixture(scope="module")
def official():
    stubs = {"einops": types.ModuleType("einops"), "ldm": types.ModuleType("ldm"), "ldm.util": types.ModuleType("ldm.util"),
             "ldm.modules": types.ModuleType("ldm.modules"), "ldm.modules.attention": types.ModuleType("ldm.modules.attention")}
    stubs["einops"].rearrange = None
    stubs["ldm.util"].instantiate_from_config = None
    stubs["ldm.modules.attention"].LinearAttention = nn.Module
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        path = os.path.join(OFFICIAL, "ldm", "modules", "diffusionmodules", "model.py")
        spec = importlib.util.spec_from_file_location("official_sd_model", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        for k, m in saved.items():
            if m is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = m


class OfficialHalf(nn.Module):
    """AutoencoderKL's decoding half with the official Decoder."""

    def __init__(self, module, cfg: DecoderConfig):
        super().__init__()
        ch = cfg.block_out_channels[0]
        mult = tuple(c // ch for c in cfg.block_out_channels)
        self.post_quant_conv = nn.Conv2d(cfg.latent_channels, cfg.latent_channels, 1)
        self.decoder = module.Decoder(ch=ch, out_ch=cfg.out_channels, ch_mult=mult, num_res_blocks=cfg.layers_per_block,
                                      attn_resolutions=[], dropout=0.0, in_channels=3, resolution=256,
                                      z_channels=cfg.latent_channels)

    def forward(self, z):
        return self.decoder(self.post_quant_conv(z))


def _latent(cfg: DecoderConfig, side: int = 8):
    return torch.randn(2, cfg.latent_channels, side, side, generator=torch.Generator().manual_seed(4))


def test_official_weights_load_into_ours_and_decode_the_same(official):
    theirs = OfficialHalf(official, SMALL).eval()
    randomise(theirs, seed=1)
    ours = load_decoder(SMALL, theirs.state_dict())
    z = _latent(SMALL)
    with torch.no_grad():
        assert torch.allclose(ours(z), theirs(z), atol=1e-5)


def test_our_weights_load_into_the_official_class_and_decode_the_same(official):
    ours = randomise(LatentDecoder(SMALL), seed=2).eval()
    theirs = OfficialHalf(official, SMALL).eval()
    theirs.load_state_dict(to_ldm(ours.state_dict(), SMALL), strict=True)
    z = _latent(SMALL)
    with torch.no_grad():
        assert torch.allclose(ours(z), theirs(z), atol=1e-5)


def test_sd_vae_decoder_key_and_shape_sets_are_the_official_ones(official):
    """Stable Diffusion's AutoencoderKL (ch 128, ch_mult 1,2,4,4, 2 res blocks, 4 latent channels)."""
    theirs = OfficialHalf(official, SD_VAE).state_dict()
    ours = LatentDecoder(SD_VAE).state_dict()
    mapped = convert_state_dict(theirs, SD_VAE)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert sum(v.numel() for v in ours.values()) == 49_490_199
