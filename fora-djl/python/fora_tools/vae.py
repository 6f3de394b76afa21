"""The decoder half of Stable Diffusion's AutoencoderKL (the sd-vae-ft-ema / sd-vae-ft-mse weights
that DiT and PixArt-alpha sample with), in diffusers' state-dict layout, and its TorchScript face.

Written from the public layout (huggingface/diffusers `models/autoencoders/vae.py` Decoder,
`UNetMidBlock2D`, `UpDecoderBlock2D`, `ResnetBlock2D`, `Attention`; CompVis/stable-diffusion
`ldm/modules/diffusionmodules/model.py` Decoder); no code of either is copied.

    decode(z) = decoder(post_quant_conv(z / scale_factor))          # pixels in about [-1, 1]

    post_quant_conv   Conv2d(latent, latent, 1)
    decoder.conv_in   Conv2d(latent, ch[-1], 3)
    decoder.mid_block resnets.0, attentions.0 (one head over all H*W positions), resnets.1
    decoder.up_blocks.i, i = 0..len(ch)-1, channels reversed(ch): layers_per_block + 1 resnets
                      (resnets.0 maps the previous block's channels, with a 1x1 conv_shortcut when
                      they differ), then, except in the last block, upsamplers.0.conv after a 2x
                      nearest-neighbour upsampling
    decoder.conv_norm_out GroupNorm(groups, ch[0], eps 1e-6), SiLU, decoder.conv_out Conv2d(ch[0], 3, 3)
    resnet            norm1 (GroupNorm eps 1e-6), SiLU, conv1 3x3, norm2, SiLU, conv2 3x3, + shortcut

`convert_state_dict` accepts the three spellings these weights circulate in: diffusers' current
(`to_q`, `to_k`, `to_v`, `to_out.0`), diffusers' older (`query`, `key`, `value`, `proj_attn`,
which the sd-vae-ft-* `diffusion_pytorch_model.bin` files use) and CompVis' (`decoder.up.3.block.0`,
`mid.attn_1.q` as 1x1 convolutions, `nin_shortcut`, optionally under `first_stage_model.`). Only
`post_quant_conv.*` and `decoder.*` are kept; the encoder is not needed.
"""
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

# Stable Diffusion's latent scale: latents are divided by it before decoding (DiT's sample.py and
# PixArt's inference script both call vae.decode(samples / 0.18215)).
SD_SCALE_FACTOR = 0.18215


@dataclass
class DecoderConfig:
    latent_channels: int = 4
    out_channels: int = 3
    block_out_channels: Tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    norm_num_groups: int = 32
    scale_factor: float = SD_SCALE_FACTOR

    @property
    def upsampling(self) -> int:
        """Output side / latent side: 2 per up block but the last (8 for SD's VAE)."""
        return 2 ** (len(self.block_out_channels) - 1)

    def to_json(self) -> dict:
        d = asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        d["type"] = "autoencoder-kl"
        d["upsampling"] = self.upsampling
        return d

    @staticmethod
    def from_json(d: dict) -> "DecoderConfig":
        keys = DecoderConfig.__dataclass_fields__.keys()
        kw = {k: v for k, v in d.items() if k in keys}
        if "block_out_channels" in kw:
            kw["block_out_channels"] = tuple(kw["block_out_channels"])
        return DecoderConfig(**kw)


# Stable Diffusion's AutoencoderKL (stabilityai/sd-vae-ft-ema and sd-vae-ft-mse have this config).
SD_VAE = DecoderConfig()


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.conv_shortcut(x) + h


class SpatialAttention(nn.Module):
    """One-head self-attention over the H*W positions, with a GroupNorm in front and a residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        q, k, v = self.to_q(t), self.to_k(t), self.to_v(t)
        a = ((q @ k.transpose(1, 2)) * (c ** -0.5)).softmax(dim=-1)
        out = self.to_out[0](a @ v)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class MidBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, groups), ResnetBlock(channels, channels, groups)])
        self.attentions = nn.ModuleList([SpatialAttention(channels, groups)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        x = self.attentions[0](x)
        return self.resnets[1](x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, layers: int, groups: int, upsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(cin if i == 0 else cout, cout, groups) for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample(cout)] if upsample else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.resnets:
            x = r(x)
        for u in self.upsamplers:
            x = u(x)
        return x


class Decoder(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        ch = list(cfg.block_out_channels)
        g = cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[-1], 3, padding=1)
        self.mid_block = MidBlock(ch[-1], g)
        rev = list(reversed(ch))
        blocks = []
        prev = rev[0]
        for i, cout in enumerate(rev):
            blocks.append(UpBlock(prev, cout, cfg.layers_per_block + 1, g, upsample=i < len(ch) - 1))
            prev = cout
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = nn.GroupNorm(g, ch[0], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[0], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class LatentDecoder(nn.Module):
    """`post_quant_conv` + `decoder`: the keys of AutoencoderKL's decoding half."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.post_quant_conv = nn.Conv2d(cfg.latent_channels, cfg.latent_channels, 1)
        self.decoder = Decoder(cfg)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: latents already divided by the scale factor."""
        return self.decoder(self.post_quant_conv(z))


class ExportableDecoder(nn.Module):
    """The TorchScript face: `forward(z)` decodes UNSCALED latents [N, C, h, w] (divided by the
    scale factor inside, which the manifest also records) to pixels [N, 3, 8h, 8w] in about [-1, 1]."""

    def __init__(self, dec: LatentDecoder):
        super().__init__()
        self.dec = dec
        self.scale_factor = float(dec.cfg.scale_factor)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z / self.scale_factor)


def randomise(dec: LatentDecoder, seed: int = 0) -> LatentDecoder:
    """PyTorch's default initialisation decodes to a near-constant image; give every layer some
    spread (for random-weight exports and goldens), keeping activations of order one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in dec.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return dec


# ---- state-dict spellings ----------------------------------------------------------------------

_OLD_ATTN = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_LDM_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def _from_ldm(key: str, levels: int) -> str:
    """A CompVis (ldm) decoder key in diffusers' spelling."""
    m = re.match(r"decoder\.up\.(\d+)\.(block|upsample)\.(.*)$", key)
    if m:
        i = levels - 1 - int(m.group(1))  # ldm counts up-levels from the full-resolution end
        if m.group(2) == "block":
            j, rest = m.group(3).split(".", 1)
            return f"decoder.up_blocks.{i}.resnets.{j}.{rest.replace('nin_shortcut', 'conv_shortcut')}"
        return f"decoder.up_blocks.{i}.upsamplers.0.{m.group(3)}"
    m = re.match(r"decoder\.mid\.block_(\d)\.(.*)$", key)
    if m:
        return f"decoder.mid_block.resnets.{int(m.group(1)) - 1}.{m.group(2).replace('nin_shortcut', 'conv_shortcut')}"
    m = re.match(r"decoder\.mid\.attn_1\.(\w+)\.(weight|bias)$", key)
    if m:
        return f"decoder.mid_block.attentions.0.{_LDM_ATTN[m.group(1)]}.{m.group(2)}"
    if key.startswith("decoder.norm_out."):
        return "decoder.conv_norm_out." + key[len("decoder.norm_out."):]
    return key


def convert_state_dict(sd: Dict[str, torch.Tensor], cfg: DecoderConfig) -> Dict[str, torch.Tensor]:
    """The `post_quant_conv.*` and `decoder.*` entries of an AutoencoderKL state dict in any of
    the three spellings, renamed to ours (1x1-conv attention weights become linear weights)."""
    sd = {k[len("first_stage_model."):] if k.startswith("first_stage_model.") else k: v for k, v in sd.items()}
    ldm = any(k.startswith("decoder.up.") or k.startswith("decoder.mid.") for k in sd)
    out = {}
    for k, v in sd.items():
        if not (k.startswith("decoder.") or k.startswith("post_quant_conv.")):
            continue
        if ldm:
            k = _from_ldm(k, len(cfg.block_out_channels))
        m = re.match(r"(decoder\.mid_block\.attentions\.0)\.(\w+)\.(weight|bias)$", k)
        if m and m.group(2) in _OLD_ATTN:
            k = f"{m.group(1)}.{_OLD_ATTN[m.group(2)]}.{m.group(3)}"
        if ".attentions." in k and k.endswith("weight") and v.dim() == 4:
            v = v[:, :, 0, 0]  # a 1x1 convolution is a linear map over channels
        out[k] = v
    return out


def load_decoder_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """A diffusers `diffusion_pytorch_model.bin` or `.safetensors`, a CompVis `.ckpt`
    (`{'state_dict': ...}`) or a plain state dict saved with torch.save."""
    from .safetensors import load_state_dict
    return load_state_dict(path)


def load_decoder(cfg: DecoderConfig, state_dict: Dict[str, torch.Tensor]) -> LatentDecoder:
    """Strict: every decoder weight must be present and no other decoder key may be left over."""
    dec = LatentDecoder(cfg)
    dec.load_state_dict(convert_state_dict(state_dict, cfg), strict=True)
    return dec.eval()


def to_ldm(sd: Dict[str, torch.Tensor], cfg: DecoderConfig) -> Dict[str, torch.Tensor]:
    """Our (diffusers) decoder keys in CompVis' spelling, for tests of the converter."""
    inv_attn = {v: k for k, v in _LDM_ATTN.items()}
    levels = len(cfg.block_out_channels)
    out = {}
    for k, v in sd.items():
        m = re.match(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(\d+)\.(.*)$", k)
        if m:
            i = levels - 1 - int(m.group(1))
            rest = m.group(4).replace("conv_shortcut", "nin_shortcut")
            k = f"decoder.up.{i}.block.{m.group(3)}.{rest}" if m.group(2) == "resnets" else f"decoder.up.{i}.upsample.{rest}"
        elif k.startswith("decoder.mid_block.resnets."):
            j, rest = k[len("decoder.mid_block.resnets."):].split(".", 1)
            k = f"decoder.mid.block_{int(j) + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
        elif k.startswith("decoder.mid_block.attentions.0."):
            name, p = k[len("decoder.mid_block.attentions.0."):].rsplit(".", 1)
            k = f"decoder.mid.attn_1.{inv_attn[name]}.{p}"
            if p == "weight" and v.dim() == 2:
                v = v[:, :, None, None]
        elif k.startswith("decoder.conv_norm_out."):
            k = "decoder.norm_out." + k[len("decoder.conv_norm_out."):]
        out[k] = v
    return out
