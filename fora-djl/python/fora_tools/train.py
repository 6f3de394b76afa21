"""Train the small shipped DiT on the procedural patterns with DiT's own objective.

Resumable: the run directory holds `last.pt` (model, EMA, optimizer, RNG, step); running the
same command again continues from it. The EMA weights, in the official state-dict layout,
are what ships (`--out`). The shipped model's schedule (make-shipped-model.sh):

    python3 -m fora_tools.train --run /tmp/dit-run --steps 3000 --lr 2e-3 --warmup 300
    python3 -m fora_tools.train --run /tmp/dit-run --steps 12000 --batch 64 --workers 2 \
        --lr 2e-3 --decay-from 3000 --out ../../fora-examples/model/checkpoints/dit-patterns.pt

`--workers 2` trains data-parallel, one process per core (gloo all-reduce of the gradients),
and follows the one-process run on the same batch.
"""
import argparse
import copy
import json
import math
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .dit import DiT, DiTConfig
from .diffusion import Schedule, training_loss
from .patterns import make_batch

CLASS_DROPOUT = 0.1


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def average_gradients(model: torch.nn.Module, workers: int) -> None:
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    flat = torch.cat([grad.reshape(-1) for grad in grads])
    dist.all_reduce(flat)
    flat /= workers
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def learning_rate(args, step: int) -> float:
    lr = args.lr * min(1.0, (step + 1) / args.warmup) if args.warmup else args.lr
    if args.decay_from is not None and step >= args.decay_from:
        lr *= 0.5 * (1 + math.cos(math.pi * (step - args.decay_from) / (args.steps - args.decay_from)))
    return lr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="directory for resumable checkpoints")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=0, help="linear learning-rate warm-up steps")
    ap.add_argument("--decay-from", type=int,
                    help="cosine decay of the learning rate from this step to 0 at --steps")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="one thread is faster for this small model")
    ap.add_argument("--config", default="{}", help="JSON overrides of DiTConfig fields")
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--workers", type=int, default=1,
                    help="data-parallel processes (one per core); each takes batch/workers samples")
    ap.add_argument("--out", help="write the EMA state_dict here when done")
    args = ap.parse_args()
    if args.decay_from is not None and not 0 <= args.decay_from < args.steps:
        ap.error(f"--decay-from {args.decay_from} must be in [0, --steps {args.steps})")
    if args.workers < 1:
        ap.error(f"--workers {args.workers} must be at least 1")
    if args.batch % args.workers:
        ap.error(f"--batch {args.batch} is not divisible by --workers {args.workers}")
    if args.workers == 1:
        train(0, args, None)
        return
    with socket.socket() as probe:  # a free port for the process group's rendezvous
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    mp.spawn(train, args=(args, address), nprocs=args.workers)


def train(rank: int, args, address) -> None:
    """One worker. Every worker draws the whole batch from the same generator and trains on its
    slice, so the random stream, and the resumable state, is that of a single process."""
    workers = args.workers
    if workers > 1:
        dist.init_process_group("gloo", init_method=address, rank=rank, world_size=workers)
    lead = rank == 0
    torch.set_num_threads(args.threads)
    os.makedirs(args.run, exist_ok=True)
    last = os.path.join(args.run, "last.pt")
    cfg = DiTConfig(**json.loads(args.config))
    torch.manual_seed(args.seed)  # the initial weights
    model = DiT(cfg)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed)
    step = 0
    if os.path.exists(last):
        ck = torch.load(last)
        cfg = DiTConfig(**ck["config"])
        model = DiT(cfg)
        model.load_state_dict(ck["model"])
        ema = copy.deepcopy(model).requires_grad_(False)
        ema.load_state_dict(ck["ema"])
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
        opt.load_state_dict(ck["opt"])
        g.set_state(ck["rng"])
        step = ck["step"]
        if lead:
            print(f"resumed at step {step}", flush=True)
    sched = Schedule.full()
    model.train()
    t0, window = time.time(), []

    def save() -> None:
        tmp = last + ".tmp"
        torch.save({"config": cfg.__dict__, "model": model.state_dict(), "ema": ema.state_dict(),
                    "opt": opt.state_dict(), "rng": g.get_state(), "step": step}, tmp)
        os.replace(tmp, last)

    while step < args.steps:
        x0, y = make_batch(args.batch, cfg.input_size, g)
        drop = torch.rand(args.batch, generator=g) < CLASS_DROPOUT
        y = torch.where(drop, torch.full_like(y, cfg.num_classes), y)
        t = torch.randint(0, sched.num, (args.batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        part = slice(rank * args.batch // workers, (rank + 1) * args.batch // workers)
        loss, mse, vb = training_loss(model, sched, x0[part], y[part], t[part], noise[part])
        for group in opt.param_groups:
            group["lr"] = learning_rate(args, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if workers > 1:
            average_gradients(model, workers)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        # Short runs cannot wait for a 0.999 average to forget the random start.
        ema_update(ema, model, min(args.ema, (1 + step) / (10 + step)))
        window.append(torch.stack([loss, mse, vb]).detach())
        if step % 50 == 0:
            mean = torch.stack(window).mean(dim=0)
            if workers > 1:
                dist.all_reduce(mean)
                mean /= workers
            if lead:
                l, m, v = mean.tolist()
                print(f"step {step} loss {l:.4f} mse {m:.4f} vb {v:.4f} "
                      f"{(time.time() - t0) / len(window):.2f}s/step", flush=True)
            t0, window = time.time(), []
        if step % args.save_every == 0 and lead:
            save()
    if not lead:
        return
    save()
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        torch.save(ema.state_dict(), args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
