"""A T5 v1.1 encoder with the Hugging Face `T5EncoderModel` state-dict layout, so the official
checkpoints (`google/t5-v1_1-xxl`, `DeepFloyd/t5-v1_1-xxl`, `PixArt-alpha/PixArt-alpha`'s
`t5-v1_1-xxl`) load into it with `strict=True`:

    shared.weight                                                  [vocab, d_model]
    encoder.embed_tokens.weight                                    (the same tensor as shared)
    encoder.block.{i}.layer.0.SelfAttention.{q,k,v}.weight         [heads*d_kv, d_model]
    encoder.block.{i}.layer.0.SelfAttention.o.weight               [d_model, heads*d_kv]
    encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight  [buckets, heads]
    encoder.block.{i}.layer.0.layer_norm.weight                    [d_model]
    encoder.block.{i}.layer.1.DenseReluDense.{wi_0,wi_1}.weight    [d_ff, d_model]
    encoder.block.{i}.layer.1.DenseReluDense.wo.weight             [d_model, d_ff]
    encoder.block.{i}.layer.1.layer_norm.weight                    [d_model]
    encoder.final_layer_norm.weight                                [d_model]

What v1.1 is: pre-norm blocks with RMSNorm (no mean, no bias, eps 1e-6, computed in float32);
attention without the 1/sqrt(d) scale (T5 folds it into the initialisation) and with a
bucketed relative position bias that only the first layer owns and every layer adds; a gated
feed-forward `wo(gelu_tanh(wi_0 x) * wi_1 x)`; no bias anywhere; no dropout at inference.
Padding is masked out of the keys only; padded positions still get outputs (PixArt masks them
in its cross-attention).
"""
import math
from dataclasses import asdict, dataclass
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn


FLOAT32_MIN = -3.4028234663852886e38


@dataclass
class T5Config:
    vocab_size: int = 32128
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> "T5Config":
        return T5Config(**{k: d[k] for k in T5Config.__dataclass_fields__ if k in d})


# google/t5-v1_1-* config.json values (the XXL one is PixArt-α's text encoder).
PRESETS = {
    "t5-v1_1-xxl": T5Config(),
    "t5-v1_1-xl": T5Config(d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_heads=32),
    "t5-v1_1-base": T5Config(d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_heads=12),
    "t5-v1_1-small": T5Config(d_model=512, d_kv=64, d_ff=1024, num_layers=8, num_heads=6),
}


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        return self.weight * x.to(self.weight.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: T5Config, has_bias: bool):
        super().__init__()
        inner = cfg.num_heads * cfg.d_kv
        self.heads = cfg.num_heads
        self.d_kv = cfg.d_kv
        self.q = nn.Linear(cfg.d_model, inner, bias=False)
        self.k = nn.Linear(cfg.d_model, inner, bias=False)
        self.v = nn.Linear(cfg.d_model, inner, bias=False)
        self.o = nn.Linear(inner, cfg.d_model, bias=False)
        if has_bias:
            self.relative_attention_bias = nn.Embedding(cfg.relative_attention_num_buckets, cfg.num_heads)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, l, _ = x.shape
        q = self.q(x).view(n, l, self.heads, self.d_kv).transpose(1, 2)
        k = self.k(x).view(n, l, self.heads, self.d_kv).transpose(1, 2)
        v = self.v(x).view(n, l, self.heads, self.d_kv).transpose(1, 2)
        # float32 scores and bias whatever the weights' dtype (a bfloat16 export keeps the mask exact)
        scores = torch.matmul(q, k.transpose(2, 3)).float() + bias
        w = F.softmax(scores, dim=-1).to(v.dtype)
        return self.o(torch.matmul(w, v).transpose(1, 2).reshape(n, l, self.heads * self.d_kv))


class SelfAttentionLayer(nn.Module):
    def __init__(self, cfg: T5Config, has_bias: bool):
        super().__init__()
        self.SelfAttention = Attention(cfg, has_bias)
        self.layer_norm = RMSNorm(cfg.d_model, cfg.layer_norm_epsilon)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return x + self.SelfAttention(self.layer_norm(x), bias)


class GatedGelu(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.wi_0 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.wi_1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.wo = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x))


class FeedForwardLayer(nn.Module):
    def __init__(self, cfg: T5Config):
        super().__init__()
        self.DenseReluDense = GatedGelu(cfg)
        self.layer_norm = RMSNorm(cfg.d_model, cfg.layer_norm_epsilon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.DenseReluDense(self.layer_norm(x))


class Block(nn.Module):
    def __init__(self, cfg: T5Config, has_bias: bool):
        super().__init__()
        self.layer = nn.ModuleList([SelfAttentionLayer(cfg, has_bias), FeedForwardLayer(cfg)])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.layer[1](self.layer[0](x, bias))


def relative_buckets(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """[length, length] bucket of key j seen from query i (bidirectional): half the buckets per
    direction, exact for the nearest distances, then logarithmic up to max_distance."""
    pos = torch.arange(length)
    rel = pos[None, :] - pos[:, None]
    half = num_buckets // 2
    out = (rel > 0).long() * half
    rel = rel.abs()
    exact = half // 2
    # log(0) for the small distances is discarded by the where below; clamp keeps it finite.
    large = exact + (torch.log(rel.float().clamp(min=1) / exact) / math.log(max_distance / exact)
                     * (half - exact)).long()
    large = torch.minimum(large, torch.full_like(large, half - 1))
    return out + torch.where(rel < exact, rel, large)


class Stack(nn.Module):
    def __init__(self, cfg: T5Config, shared: nn.Embedding):
        super().__init__()
        self.embed_tokens = shared
        self.block = nn.ModuleList([Block(cfg, i == 0) for i in range(cfg.num_layers)])
        self.final_layer_norm = RMSNorm(cfg.d_model, cfg.layer_norm_epsilon)
        self.num_buckets = cfg.relative_attention_num_buckets
        self.max_distance = cfg.relative_attention_max_distance
        self.mask_value = FLOAT32_MIN

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(ids)
        l = ids.shape[1]
        buckets = relative_buckets(l, self.num_buckets, self.max_distance).to(ids.device)
        bias = self.block[0].layer[0].SelfAttention.relative_attention_bias(buckets).permute(2, 0, 1)[None]
        # Padded keys get float32's most negative value, as in transformers (not -inf: a row of
        # all padding stays finite).
        bias = bias.float() + (1.0 - mask[:, None, None, :].float()) * self.mask_value
        for blk in self.block:
            x = blk(x, bias)
        return self.final_layer_norm(x)


class T5Encoder(nn.Module):
    """`forward(ids[N,L] int64, mask[N,L] (1 = real)) -> [N,L,d_model]`: T5EncoderModel's
    `last_hidden_state`."""

    def __init__(self, cfg: T5Config):
        super().__init__()
        self.cfg = cfg
        self.shared = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = Stack(cfg, self.shared)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(ids, mask)


def expected_layout(cfg: T5Config) -> Dict[str, List[int]]:
    """The key -> shape map of Hugging Face's T5EncoderModel for a v1.1 config, written from its
    documented layout (independent of the module tree above, which the tests check against it)."""
    inner = cfg.num_heads * cfg.d_kv
    out = {"shared.weight": [cfg.vocab_size, cfg.d_model], "encoder.embed_tokens.weight": [cfg.vocab_size, cfg.d_model],
           "encoder.final_layer_norm.weight": [cfg.d_model],
           "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight":
               [cfg.relative_attention_num_buckets, cfg.num_heads]}
    for i in range(cfg.num_layers):
        p = f"encoder.block.{i}.layer."
        for n in "qkv":
            out[f"{p}0.SelfAttention.{n}.weight"] = [inner, cfg.d_model]
        out[f"{p}0.SelfAttention.o.weight"] = [cfg.d_model, inner]
        out[f"{p}0.layer_norm.weight"] = [cfg.d_model]
        out[f"{p}1.DenseReluDense.wi_0.weight"] = [cfg.d_ff, cfg.d_model]
        out[f"{p}1.DenseReluDense.wi_1.weight"] = [cfg.d_ff, cfg.d_model]
        out[f"{p}1.DenseReluDense.wo.weight"] = [cfg.d_model, cfg.d_ff]
        out[f"{p}1.layer_norm.weight"] = [cfg.d_model]
    return out


def config_from_state_dict(sd: Dict[str, torch.Tensor]) -> T5Config:
    """The config a v1.1 encoder state dict implies (head count from the position-bias table)."""
    vocab, d_model = sd["shared.weight"].shape
    heads = sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape[1]
    buckets = sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape[0]
    inner = sd["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
    d_ff = sd["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0]
    layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.block."))
    return T5Config(vocab_size=vocab, d_model=d_model, d_kv=inner // heads, d_ff=d_ff, num_layers=layers,
                    num_heads=heads, relative_attention_num_buckets=buckets)


def encoder_state_dict(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The encoder's keys of a T5EncoderModel or a whole T5ForConditionalGeneration checkpoint
    (the decoder and `lm_head` are dropped; a missing tied `encoder.embed_tokens` is filled)."""
    out = {k: v for k, v in sd.items() if k == "shared.weight" or k.startswith("encoder.")}
    if "encoder.embed_tokens.weight" not in out and "shared.weight" in out:
        out["encoder.embed_tokens.weight"] = out["shared.weight"]
    if "shared.weight" not in out and "encoder.embed_tokens.weight" in out:
        out["shared.weight"] = out["encoder.embed_tokens.weight"]
    return out


def load(sd: Dict[str, torch.Tensor]) -> T5Encoder:
    """A strict load of an encoder state dict (see `encoder_state_dict`)."""
    sd = encoder_state_dict(sd)
    model = T5Encoder(config_from_state_dict(sd))
    model.load_state_dict(sd, strict=True)
    return model.eval()


def randomise(model: T5Encoder, seed: int) -> T5Encoder:
    """Random weights at T5's initialisation scales (so activations stay O(1) through the layers)."""
    g = torch.Generator().manual_seed(seed)
    c = model.cfg
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name == "shared.weight":
                p.copy_(torch.randn(p.shape, generator=g))
            elif ".q." in name:
                p.copy_(torch.randn(p.shape, generator=g) * (c.d_model * c.d_kv) ** -0.5)
            elif name.endswith("relative_attention_bias.weight"):
                p.copy_(torch.randn(p.shape, generator=g))
            elif ".wo." in name:
                p.copy_(torch.randn(p.shape, generator=g) * c.d_ff ** -0.5)
            elif ".o." in name:
                p.copy_(torch.randn(p.shape, generator=g) * (c.num_heads * c.d_kv) ** -0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * c.d_model ** -0.5)
    return model
