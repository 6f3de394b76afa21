"""The quality judge: a small CNN trained on the procedural patterns.

Its accuracy on generated images says whether the DiT draws the right class; the Frechet
distance between its penultimate features of generated and real images is our FID analogue.

    python3 -m fora_tools.classifier --steps 1500 --out ../../fora-examples/model/checkpoints/classifier.pt
"""
import argparse
import os
import time

import torch
from torch import nn
from torch.nn import functional as F

from .patterns import CLASSES, make_batch

FEATURES = 64


class PatternClassifier(nn.Module):
    def __init__(self, num_classes: int = len(CLASSES)):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(128, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images [N,3,H,W] in [-1,1] -> logits [N, classes]."""
        return self.head(self.body(x))

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features [N, FEATURES], for the Frechet distance."""
        return self.body(x)


def held_out(n: int, size: int, seed: int = 10_000):
    """A test set from a seed the training never uses."""
    return make_batch(n, size, torch.Generator().manual_seed(seed))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    model = PatternClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps)
    tx, ty = held_out(2000, args.size)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        x, y = make_batch(args.batch, args.size, g)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0:
            model.eval()
            print(f"step {step} loss {loss.item():.4f} held-out acc {accuracy(model, tx, ty):.4f} "
                  f"{time.time() - t0:.0f}s", flush=True)
            model.train()
    model.eval()
    acc = accuracy(model, tx, ty)
    print(f"final held-out accuracy {acc:.4f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
