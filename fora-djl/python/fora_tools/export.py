"""Export an official-layout DiT checkpoint to a FORA4J model directory.

The directory holds `manifest.json` and TorchScript files:
  dit.pt         `forward(x, t, y)` is the whole model (the uncached baseline); the methods
                 `embed`, `modulation`, `attention`, `mlp`, `final_layer` are its stages.
  dit-bf16.pt    (--bf16) the same calls in bfloat16; dit-int8.pt (--int8) with int8 linear layers.
  classifier.pt  (optional) the quality judge: `forward(images)` logits, `features(images)`.

Examples:
    # the shipped model
    python3 -m fora_tools.export --checkpoint ../../fora-examples/model/checkpoints/dit-patterns.pt \\
        --config patterns --classifier ../../fora-examples/model/checkpoints/classifier.pt \\
        --out ../../fora-model/dit-patterns
    # your own DiT-XL/2-256 checkpoint (official facebookresearch/DiT file)
    python3 -m fora_tools.export --checkpoint DiT-XL-2-256x256.pt --config DiT-XL/2 --out /data/dit-xl2
    # randomly initialised benchmark shapes (never commit these; XL is ~2.7 GB)
    python3 -m fora_tools.export --random --config DiT-XL/2 --out /tmp/dit-xl2-random
"""
import argparse
import hashlib
import json
import os

import torch

from .classifier import PatternClassifier
import copy

from .dit import PRESETS, DiT, DiTConfig, ExportableDiT, ExportableDiTBf16, quantize_int8
from .diffusion import TRAIN_STEPS, ForaForward
from .patterns import CLASSES

FORMAT = "fora4j-dit"
# 3: forward_cached takes feature stacks and coefficients (forecasts in the call); 2: it took one
# stack; 1: stages only. Versions 1 and 2 still load and run the stages. forward_split (full and
# cached rows in one call), forward_features_into, forward_masked (some branches computed, the
# others cached), forward_head, forward_tail (the first blocks, then the rest) and forward_split_tails
# (tails riding along a split step) are optional within version 3: the Java side uses them when they
# are there.
FORMAT_VERSION = 3
EXPORTER_VERSION = "0.1.0"
AGREEMENT_BOUND = 1e-5


def config_for(name: str) -> DiTConfig:
    """'patterns' is the shipped model; the presets are DiT's ImageNet-256 shapes (32x32x4 latent)."""
    if name == "patterns":
        return DiTConfig()
    if name in PRESETS:
        return DiTConfig(input_size=32, in_channels=4, num_classes=1000, **PRESETS[name])
    with open(name) as f:  # a JSON file of DiTConfig fields
        return DiTConfig.from_json(json.load(f))


def load_checkpoint(path: str) -> dict:
    sd = torch.load(path, map_location="cpu")
    # Training checkpoints of the official repo wrap the weights; an EMA state dict is plain.
    for key in ("ema", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            return sd[key]
    return sd


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_agreement(scripted, cfg: DiTConfig, batch: int = 2, seed: int = 0, rows_as_alone: bool = True) -> float:
    """Max abs difference to the whole-model forward of the component path and of the fused steps.
    rows_as_alone=False skips comparing a split call's full rows with the same rows alone: int8
    rounding turns the last-bit difference of a batch's patch embedding into ~0.05 on DiT-XL/2."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g)
    t = torch.tensor([999.0, 500.0][:batch] + [0.0] * max(0, batch - 2))
    y = torch.tensor([0, cfg.num_classes][:batch] + [1] * max(0, batch - 2))
    with torch.no_grad():
        whole = scripted(x, t, y)
        stages = ForaForward(scripted, None, 1)(x, t, y, 0)  # the Java data flow, nothing cached
        fused, features = scripted.forward_features(x, t, y)
        into = torch.full_like(features, float("nan"))
        fused_into = scripted.forward_features_into(x, t, y, into)
        if not torch.equal(fused_into, fused) or not torch.equal(into, features):
            raise RuntimeError("forward_features_into differs from forward_features")
        # a cached step fed this step's own features is the full step, reused or as a forecast
        cached = scripted.forward_cached(x, t, y, [features], [1.0])
        forecast = scripted.forward_cached(x, t, y, [features, features * 0.5], [3.0, -4.0])
        diff = max((a - whole).abs().max().item() for a in (stages, fused, cached, forecast))
        # the first row a full step, the others a forecast, against the same calls on those rows alone
        # (an int8 layer's scale depends on the rows it is given)
        first, first_features = scripted.forward_features(x[:1], t[:1], y[:1])
        rest = scripted.forward_cached(x[1:], t[1:], y[1:], [features[:, 1:], features[:, 1:] * 0.5], [3.0, -4.0])
        split, split_features = scripted.forward_split(x, t, y, 1, [features[:, 1:], features[:, 1:] * 0.5], [3.0, -4.0])
        diff = max(diff, (split[1:] - rest).abs().max().item())
        # branches alternately computed and reused, forecast from two values, or from three
        terms = [[0, 1, 2, 3][f % 4] for f in range(2 * cfg.depth)]
        values, coefficients = [], []
        for f, n in enumerate(terms):
            values += [features[f] * (j + 1) for j in range(n)]
            coefficients += [[1.0], [3.0, -1.0], [2.0, 0.5, -2.0 / 3]][n - 1] if n else []
        masked, masked_features = scripted.forward_masked(x, t, y, terms, values, coefficients)
        computed = [f for f, n in enumerate(terms) if n == 0]
        diff = max(diff, (masked - whole).abs().max().item(), (masked_features - features[computed]).abs().max().item())
        # the first block in one call, the rest in another; or every block in the first
        head, added, c = scripted.forward_head(x, t, y, 1)
        tail, last = scripted.forward_tail(head, c, 1)
        whole_head, _, c_all = scripted.forward_head(x, t, y, cfg.depth)
        final, _ = scripted.forward_tail(whole_head, c_all, cfg.depth)
        tokens, _ = scripted.embed(x, t, y)
        diff = max(diff, (tail - whole).abs().max().item(), (final - whole).abs().max().item(),
                   (head - added - tokens).abs().max().item())
        # tails riding along a split step: row 0's tail computes blocks 1.., row 1's is past every block
        slots, weights = [features[:, 1:], features[:, 1:] * 0.5], [3.0, -4.0]
        riding = torch.cat([head[:1], whole_head[1:]])
        rode, rode_features, tail_out, ended = scripted.forward_split_tails(x, t, y, 1, slots, weights, riding, c, 1)
        rides = [(rode - split).abs().max().item(), (rode_features - split_features).abs().max().item(),
                 (tail_out - whole).abs().max().item(), (ended - last[:1]).abs().max().item()]
        for full, tail_full in ((0, 0), (batch, batch)):  # no full rows and tails that only end; every row full
            out, _, tail_out, _ = scripted.forward_split_tails(
                x, t, y, full, [features[:, full:]], [1.0], whole_head if tail_full == 0 else head, c, tail_full)
            rides += [(out - whole).abs().max().item(), (tail_out - whole).abs().max().item()]
        if rows_as_alone:
            diff = max([diff] + rides)
        if rows_as_alone:
            diff = max(diff, (split[:1] - first).abs().max().item(), (split_features - first_features).abs().max().item())
    if diff > AGREEMENT_BOUND:
        raise RuntimeError(f"component path, fused steps and whole model differ by {diff:.3g} > {AGREEMENT_BOUND}")
    return diff


def export(cfg: DiTConfig, state_dict, out: str, classifier_sd=None, name: str = "dit", bf16: bool = False,
           int8: bool = False, guided_channels: int = None, clip_denoised: bool = True) -> dict:
    os.makedirs(out, exist_ok=True)
    dit = DiT(cfg)
    if state_dict is not None:
        dit.load_state_dict(state_dict, strict=True)
    dit.eval()
    # Checked as saved: the cached step reads the blocks' weights through their shared storage.
    torch.jit.script(ExportableDiT(dit)).save(os.path.join(out, "dit.pt"))
    scripted = torch.jit.load(os.path.join(out, "dit.pt"))
    diff = check_agreement(scripted, cfg)
    files = {"dit": "dit.pt"}
    bf16_diff = None
    if bf16:
        torch.jit.script(ExportableDiTBf16(copy.deepcopy(dit))).save(os.path.join(out, "dit-bf16.pt"))
        bf16_diff = bf16_deviation(torch.jit.load(os.path.join(out, "dit-bf16.pt")), scripted, cfg)
        files["dit_bf16"] = "dit-bf16.pt"
    int8_diff = None
    if int8:
        torch.jit.script(ExportableDiT(quantize_int8(copy.deepcopy(dit)))).save(os.path.join(out, "dit-int8.pt"))
        int8_diff = int8_deviation(torch.jit.load(os.path.join(out, "dit-int8.pt")), scripted, cfg)
        files["dit_int8"] = "dit-int8.pt"
    if classifier_sd is not None:
        clf = PatternClassifier()
        clf.load_state_dict(classifier_sd, strict=True)
        torch.jit.script(clf.eval()).save(os.path.join(out, "classifier.pt"))
        files["classifier"] = "classifier.pt"
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": cfg.to_json(),
        "diffusion": {"train_steps": TRAIN_STEPS, "beta_schedule": "linear", "beta_start": 1e-4,
                      "beta_end": 0.02, "learn_sigma": cfg.learn_sigma, "null_class": cfg.num_classes,
                      "value_range": [-1.0, 1.0], "clip_denoised": clip_denoised},
        # Channels classifier-free guidance mixes (DiT's forward_with_cfg: the first 3 of 4).
        "guidance": {"guided_channels": guided_channels or cfg.in_channels},
        "files": {role: {"path": p, "sha256": sha256(os.path.join(out, p)),
                         "bytes": os.path.getsize(os.path.join(out, p))} for role, p in files.items()},
        "interface": {
            "forward": "(x[N,C,H,W] f32, t[N] f32 original timesteps, y[N] i64) -> [N,out_channels,H,W]",
            "embed": "(x, t, y) -> (tokens[N,T,D], c[N,D])",
            "modulation": "(c[N,D]) -> [depth,6,N,D] shift1,scale1,gate1,shift2,scale2,gate2",
            "attention": "(block i64, x[N,T,D], shift[N,D], scale[N,D]) -> [N,T,D] before gate",
            "mlp": "(block i64, x[N,T,D], shift[N,D], scale[N,D]) -> [N,T,D] before gate",
            "final_layer": "(x[N,T,D], c[N,D]) -> [N,out_channels,H,W]",
            "forward_features": "(x, t, y) -> (out[N,out_channels,H,W], features[2*depth,N,T,D] before gates)",
            "forward_features_into": "(x, t, y, features[2*depth,N,T,D]) -> out[N,out_channels,H,W]: forward_features "
                                     "writing into a given stack",
            "forward_cached": "(x, t, y, features List[[2*depth,N,T,D]], coefficients List[float]) -> "
                              "out[N,out_channels,H,W], branch outputs sum_j coefficients[j] * features[j]",
            "forward_split": "(x, t, y, full i64, features List[[2*depth,N-full,T,D]], coefficients List[float]) -> "
                             "(out[N,...], features[2*depth,full,T,D]): rows [0, full) full, the rest cached",
            "forward_masked": "(x, t, y, terms List[int] per branch, values List[[N,T,D]], coefficients List[float]) -> "
                              "(out[N,...], features[computed,N,T,D]): terms 0 computes a branch, n > 0 combines the "
                              "next n values",
            "forward_head": "(x, t, y, blocks i64) -> (tokens[N,T,D] leaving block blocks-1, their change over "
                            "blocks [0, blocks), c[N,D])",
            "forward_tail": "(tokens[N,T,D] leaving block start-1, c[N,D], start i64) -> (out[N,out_channels,H,W], "
                            "tokens[N,T,D] entering the final layer)",
            "forward_split_tails": "(x, t, y, full i64, features, coefficients, tail_h[M,T,D], tail_c[M,D], tail_full i64) "
                                   "-> (out[N,...], features[2*depth,full,T,D], tail_out[M,...], "
                                   "tail_tokens[tail_full,T,D]): forward_split, and forward_tail from block 1 for the "
                                   "first tail_full tail rows, from the depth for the rest",
        },
        "component_max_abs_diff": diff,
        **({"bf16_max_abs_diff": bf16_diff} if bf16_diff is not None else {}),
        **({"int8_max_abs_diff": int8_diff} if int8_diff is not None else {}),
        "exporter": {"name": "fora_tools.export", "version": EXPORTER_VERSION, "torch": torch.__version__},
    }
    if classifier_sd is not None:
        manifest["classes"] = CLASSES
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def bf16_deviation(bf16, fp32, cfg: DiTConfig, seed: int = 0) -> float:
    """How far the bfloat16 variant's output is from float32 (rounding, not an error: reported in the manifest)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g)
    t, y = torch.tensor([999.0, 500.0]), torch.tensor([0, cfg.num_classes])
    with torch.no_grad():
        out, features = bf16.forward_features(x, t, y)
        if out.dtype != torch.float32 or features.dtype != torch.bfloat16:
            raise RuntimeError(f"bf16 export returns {out.dtype} output and {features.dtype} features")
        whole = fp32(x, t, y)
        return max((a - whole).abs().max().item() for a in (out, bf16.forward_cached(x, t, y, [features], [1.0])))


def int8_deviation(int8, fp32, cfg: DiTConfig, seed: int = 0) -> float:
    """How far the int8 variant's output is from float32 (quantization, reported in the manifest). Its
    stages, fused steps and forward must agree with each other as float32's do (fails otherwise)."""
    check_agreement(int8, cfg, seed=seed, rows_as_alone=False)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g)
    t, y = torch.tensor([999.0, 500.0]), torch.tensor([0, cfg.num_classes])
    with torch.no_grad():
        return (int8(x, t, y) - fp32(x, t, y)).abs().max().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="official-layout state_dict (.pt)")
    src.add_argument("--random", action="store_true", help="random weights, for benchmarks")
    ap.add_argument("--config", required=True, help="'patterns', a preset (DiT-S/2, DiT-B/2, DiT-L/2, DiT-XL/2) "
                                                    "or a JSON file of DiTConfig fields")
    ap.add_argument("--classifier", help="classifier state_dict to export beside the model")
    ap.add_argument("--name", help="model name in the manifest")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0, help="with --random")
    ap.add_argument("--bf16", action="store_true", help="also write a bfloat16 variant, dit-bf16.pt (opt-in at load time)")
    ap.add_argument("--int8", action="store_true", help="also write an int8 variant, dit-int8.pt: the blocks' linear "
                                                        "layers dynamically quantized (opt-in at load time)")
    ap.add_argument("--guided-channels", type=int, help="latent channels CFG mixes (default: 3 for an official "
                                                        "checkpoint with a DiT preset, as DiT's sample.py; all otherwise)")
    args = ap.parse_args()
    cfg = config_for(args.config)
    if args.random:
        torch.manual_seed(args.seed)
        dit = DiT(cfg)
        # adaLN-Zero makes a fresh DiT the identity; perturb the zero layers so blocks do work.
        with torch.no_grad():
            for name, p in dit.named_parameters():
                if "adaLN_modulation" in name or "final_layer.linear" in name:
                    p.normal_(0.0, 0.02)
        sd = dit.state_dict()
    else:
        sd = load_checkpoint(args.checkpoint)
    clf = torch.load(args.classifier, map_location="cpu") if args.classifier else None
    name = args.name or (args.config if not os.path.exists(args.config) else os.path.basename(args.out))
    official = args.checkpoint is not None and args.config in PRESETS
    guided = args.guided_channels or (min(3, cfg.in_channels) if official else cfg.in_channels)
    if not 1 <= guided <= cfg.in_channels:
        ap.error(f"--guided-channels must be 1..{cfg.in_channels}")
    # The presets are latent models: DiT's sample.py does not clip their x0 to [-1, 1].
    m = export(cfg, sd, args.out, clf, name=name.replace("/", "-"), bf16=args.bf16, int8=args.int8, guided_channels=guided,
               clip_denoised=args.config not in PRESETS)
    print(f"exported {m['name']} to {args.out}: component vs whole max abs diff {m['component_max_abs_diff']:.3g}")


if __name__ == "__main__":
    main()
