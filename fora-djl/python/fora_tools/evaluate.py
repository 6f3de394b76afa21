"""Judge a DiT checkpoint with the shipped classifier: class accuracy of generated samples and
the Frechet distance of classifier features (generated vs real), with the real-vs-real floor.

    python3 -m fora_tools.evaluate --checkpoint ../../fora-examples/model/checkpoints/dit-patterns.pt \\
        --classifier ../../fora-examples/model/checkpoints/classifier.pt --samples 500 --grid /tmp/grid.png
"""
import argparse
import time

import numpy as np
import torch

from .classifier import PatternClassifier, held_out
from .diffusion import ForaForward, Schedule, sample
from .dit import DiT, ExportableDiT
from .export import config_for, load_checkpoint
from .patterns import CLASSES


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(Ca + Cb - 2 (Ca^1/2 Cb Ca^1/2)^1/2), via symmetric eigendecompositions."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(ca)
    sqrt_ca = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(sqrt_ca @ cb @ sqrt_ca)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def save_grid(images: torch.Tensor, cols: int, path: str, scale: int = 4) -> None:
    from PIL import Image
    n, _, h, w = images.shape
    rows = (n + cols - 1) // cols
    canvas = torch.ones(3, rows * (h + 1) + 1, cols * (w + 1) + 1)
    for k in range(n):
        r, c = divmod(k, cols)
        canvas[:, 1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = (images[k] + 1) / 2
    arr = (canvas.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(arr).resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--sampler", default="ddim", choices=["ddim", "ddpm"])
    ap.add_argument("--cfg", type=float, default=1.5)
    ap.add_argument("--fora", type=int, default=None, help="FORA interval N (default: no cache)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grid", help="write a PNG grid of the first 10 samples of each class")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = config_for("patterns")
    dit = DiT(cfg)
    dit.load_state_dict(load_checkpoint(args.checkpoint), strict=True)
    model = ExportableDiT(dit.eval())
    clf = PatternClassifier()
    clf.load_state_dict(torch.load(args.classifier))
    clf.eval()
    g = torch.Generator().manual_seed(args.seed)
    s = Schedule.respaced(args.steps)
    labels = torch.arange(args.samples) % len(CLASSES)
    t0 = time.time()
    out = []
    for k in range(0, args.samples, args.batch):
        y = labels[k:k + args.batch]
        noise = torch.randn(len(y), cfg.in_channels, cfg.input_size, cfg.input_size, generator=g)
        step_noise = list(torch.randn(args.steps, *noise.shape, generator=g)) if args.sampler == "ddpm" else None
        fwd = ForaForward(model, args.fora, args.steps)
        out.append(sample(fwd, s, noise, y, cfg.num_classes, args.cfg, args.sampler, step_noise=step_noise))
    gen = torch.cat(out)
    with torch.no_grad():
        hit = clf(gen).argmax(1) == labels
        acc = hit.float().mean().item()
        real_a, _ = held_out(args.samples, cfg.input_size, seed=20_000)
        real_b, _ = held_out(args.samples, cfg.input_size, seed=30_000)
        fa, fb, fg = clf.features(real_a).numpy(), clf.features(real_b).numpy(), clf.features(gen).numpy()
    print(f"{args.samples} samples, {args.sampler}-{args.steps}, cfg {args.cfg}, fora {args.fora}: "
          f"class accuracy {acc:.3f}, Frechet gen-vs-real {frechet(fg, fa):.3f}, "
          f"real-vs-real floor {frechet(fb, fa):.3f} ({time.time() - t0:.0f}s)")
    print("per class: " + ", ".join(f"{name} {hit[labels == c].float().mean().item():.2f}"
                                    for c, name in enumerate(CLASSES)))
    if args.grid:
        per_class = [gen[labels == c][:10] for c in range(len(CLASSES))]
        save_grid(torch.cat(per_class), 10, args.grid)


if __name__ == "__main__":
    main()
