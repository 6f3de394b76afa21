"""Adds a T5 v1.1 text encoder and its tokenizer to a FORA4J model directory (PixArt-α), so Java
turns prompts into the caption embeddings itself:

- `text_encoder.pt`: TorchScript `forward(ids[N,L] int64, mask[N,L] int64, 1 = real) -> [N,L,W] f32`,
  T5EncoderModel's `last_hidden_state` (`--bf16`: bfloat16 weights and arithmetic, float32 out);
- `tokenizer.json` (Hugging Face tokenizers; `fora_tools.tokenizer_json` makes it from
  `spiece.model`, which is copied beside it when given);
- manifest: files `text_encoder`, `tokenizer` and a `text_encoder` section with the role, token
  count (the DiT's `model_max_length`), width (its `caption_channels`) and vocabulary sizes.

Examples:
    # the official encoder (.safetensors shards, .bin shards, or a directory holding either)
    python3 -m fora_tools.export_t5 --model /data/pixart-256 --t5 /data/t5-v1_1-xxl --spm /data/t5-v1_1-xxl/spiece.model --bf16
    # random weights of the XXL shape, for timing
    python3 -m fora_tools.export_t5 --model /data/pixart-256 --random t5-v1_1-xxl --spm spiece.model --bf16
"""
import argparse
import json
import os
import shutil

import torch
from torch import nn

from . import safetensors, t5, tokenizer_json
from .export import sha256

FILE = "text_encoder.pt"
TOKENIZER = "tokenizer.json"
SPM = "spiece.model"
AGREEMENT_BOUND = 1e-5
PAD_ID = 0  # T5's <pad>


def eos_id(tok: dict) -> int:
    """The id the tokenizer's post-processor appends (T5: `</s>`, 1)."""
    (special,) = tok["post_processor"]["special_tokens"].values()
    return special["ids"][0]


def tokenize(spm_processor, texts, tokens: int, eos: int = 1):
    """Reference ids and mask as the Java tokenizer makes them: SentencePiece ids + eos, cut to
    `tokens` keeping eos last (as transformers truncates), padded with PAD_ID."""
    ids, mask = [], []
    for text in texts:
        row = spm_processor.encode(text) + [eos]
        if len(row) > tokens:
            row = row[:tokens - 1] + [eos]
        mask.append([1] * len(row) + [0] * (tokens - len(row)))
        ids.append(row + [PAD_ID] * (tokens - len(row)))
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(mask, dtype=torch.int64)


class ExportableT5(nn.Module):
    """The TorchScript face: integer ids and mask in, float32 embeddings out, in any weight dtype."""

    def __init__(self, encoder: t5.T5Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(ids, mask).float()


def _register(manifest: dict, model_dir: str, role: str, name: str) -> None:
    path = os.path.join(model_dir, name)
    manifest["files"][role] = {"path": name, "sha256": sha256(path), "bytes": os.path.getsize(path)}


def add(model_dir: str, encoder: t5.T5Encoder, tokenizer: str, spm: str = None, bf16: bool = False,
        source: str = "random") -> dict:
    """Exports `encoder` and the tokenizer into `model_dir` and updates its manifest.

    `tokenizer` is a tokenizer.json, or None to convert `spm`."""
    path = os.path.join(model_dir, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    arch = manifest["architecture"]
    cfg = encoder.cfg
    tokens, width = arch.get("model_max_length"), arch.get("caption_channels")
    if tokens is None or width is None:
        raise ValueError(f"{model_dir} is not a text-conditioned model (no caption_channels / model_max_length)")
    if cfg.d_model != width:
        raise ValueError(f"the encoder is {cfg.d_model} wide but the model's captions are {width} wide")
    if spm is not None:
        shutil.copyfile(spm, os.path.join(model_dir, SPM))
    tok_path = os.path.join(model_dir, TOKENIZER)
    if tokenizer is None:
        tok = tokenizer_json.write(spm, tok_path)
    else:
        shutil.copyfile(tokenizer, tok_path)
        with open(tok_path, encoding="utf-8") as f:
            tok = json.load(f)
    tok_vocab = len(tok["model"]["vocab"]) + len(tok.get("added_tokens") or [])
    if tok_vocab > cfg.vocab_size:
        raise ValueError(f"the tokenizer has {tok_vocab} ids but the encoder embeds only {cfg.vocab_size}")
    encoder = encoder.eval()
    exportable = ExportableT5(encoder.to(torch.bfloat16) if bf16 else encoder)
    scripted = torch.jit.script(exportable)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, tok_vocab, (2, tokens), generator=g)
    mask = torch.ones(2, tokens, dtype=torch.int64)
    mask[1, tokens // 2:] = 0
    with torch.no_grad():
        diff = (scripted(ids, mask) - exportable(ids, mask)).abs().max().item()
    if diff > AGREEMENT_BOUND:
        raise RuntimeError(f"scripted and eager encoder differ by {diff:.3g}")
    scripted.save(os.path.join(model_dir, FILE))
    _register(manifest, model_dir, "text_encoder", FILE)
    _register(manifest, model_dir, "tokenizer", TOKENIZER)
    if spm is not None:
        _register(manifest, model_dir, "spiece", SPM)
    manifest["text_encoder"] = {
        "role": "caption embeddings for the DiT's y input: T5EncoderModel last_hidden_state",
        "type": "t5-v1.1-encoder",
        "tokens": tokens,
        "width": width,
        "vocab_size": cfg.vocab_size,
        "tokenizer_vocab_size": tok_vocab,
        "pad_id": PAD_ID,
        "eos_id": eos_id(tok),
        "dtype": "bfloat16" if bf16 else "float32",
        "config": cfg.to_json(),
        "source": source,
        "interface": "forward(ids[N,L] i64, mask[N,L] i64 1 = real token) -> [N,L,width] f32",
    }
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"added a {cfg.num_layers}-layer T5 encoder ({source}, {manifest['text_encoder']['dtype']}) and a "
          f"{tok_vocab}-id tokenizer to {model_dir}: {tokens} tokens x {width}")
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an exported PixArt-α model directory")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--t5", help="T5 v1.1 weights: a .safetensors or .bin file, a *.index.json, or a directory")
    src.add_argument("--random", choices=sorted(t5.PRESETS), help="random weights of a preset shape")
    tok = ap.add_mutually_exclusive_group(required=True)
    tok.add_argument("--spm", help="the encoder's spiece.model (converted to tokenizer.json, and kept)")
    tok.add_argument("--tokenizer", help="a ready tokenizer.json")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 weights and arithmetic (XXL: 9.5 GB instead of 19)")
    ap.add_argument("--layers", type=int, help="with --random: only this many layers (per-layer timing where the "
                                                "whole model does not fit in memory)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.t5:
        encoder = t5.load(safetensors.load_state_dict(args.t5))
        source = os.path.basename(os.path.normpath(args.t5))
    else:
        torch.manual_seed(args.seed)
        # Built in bfloat16 directly when asked: XXL in float32 would need 19 GB first.
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16 if args.bf16 else torch.float32)
        try:
            cfg = t5.PRESETS[args.random]
            if args.layers:
                cfg = t5.T5Config(**{**cfg.to_json(), "num_layers": args.layers})
            encoder = t5.randomise(t5.T5Encoder(cfg), args.seed)
        finally:
            torch.set_default_dtype(default)
        source = "random " + args.random + (f", first {args.layers} layers" if args.layers else "")
    add(args.model, encoder, args.tokenizer, args.spm, args.bf16, source)


if __name__ == "__main__":
    main()
