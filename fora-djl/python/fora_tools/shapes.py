"""A procedural, class-conditional image dataset: 10 kinds of coloured shapes and textures.

Every image is drawn from a seeded generator (no downloads): random position, size,
foreground and background colour, stripe period and phase, so samples are diverse.
Images are RGB in [-1, 1], shape [N, 3, S, S].
"""
import torch

CLASSES = ["disc", "square", "triangle", "ring", "frame",
           "h-stripes", "v-stripes", "checker", "plus", "diagonal"]


def _colours(n: int, g: torch.Generator):
    bg = torch.rand(n, 3, generator=g)
    fg = torch.rand(n, 3, generator=g)
    # Keep the shape visible: a foreground too close to the background is replaced by
    # the background's complement pushed to full contrast on its brightest channel.
    close = (fg - bg).abs().max(dim=1).values < 0.45
    fg[close] = (1.0 - bg[close]).round().clamp(0, 1) * 0.9 + 0.05
    return fg, bg


def make_batch(n: int, size: int, g: torch.Generator, labels: torch.Tensor = None):
    """Returns (images [n,3,size,size] in [-1,1], labels [n] long)."""
    if labels is None:
        labels = torch.randint(0, len(CLASSES), (n,), generator=g)
    coord = torch.arange(size, dtype=torch.float32) + 0.5
    yy = coord.view(1, size, 1).expand(n, size, size)
    xx = coord.view(1, 1, size).expand(n, size, size)

    def per(low: float, high: float):
        return (low + (high - low) * torch.rand(n, generator=g)).view(n, 1, 1)

    s = size / 16.0
    cx, cy = per(5.5 * s, 10.5 * s), per(5.5 * s, 10.5 * s)
    r = per(3.2 * s, 5.5 * s)
    period = torch.randint(2, 5, (n,), generator=g).float().view(n, 1, 1) * s
    phase = per(0.0, 8.0 * s)
    dx, dy = xx - cx, yy - cy
    dist = (dx * dx + dy * dy).sqrt()
    cheb = torch.maximum(dx.abs(), dy.abs())

    def stripes(coord_sum: torch.Tensor) -> torch.Tensor:
        return (torch.floor((coord_sum + phase) / period) % 2) == 0

    masks = torch.stack([
        dist <= r,                                                       # disc
        cheb <= 0.85 * r,                                                # square
        (dy.abs() <= 0.9 * r) & (dx.abs() <= 0.55 * (dy + 0.9 * r)),     # triangle (apex up)
        (dist <= r) & (dist >= 0.55 * r),                                # ring
        (cheb <= 0.9 * r) & (cheb >= 0.9 * r - 1.6 * s),                 # frame
        stripes(yy),                                                     # h-stripes
        stripes(xx),                                                     # v-stripes
        ((torch.floor((xx + phase) / period) + torch.floor((yy + phase) / period)) % 2) == 0,  # checker
        (cheb <= r) & ((dx.abs() <= 0.3 * r) | (dy.abs() <= 0.3 * r)),   # plus
        stripes(xx + yy),                                                # diagonal
    ], dim=1)
    m = masks[torch.arange(n), labels].float().unsqueeze(1)
    fg, bg = _colours(n, g)
    img = bg.view(n, 3, 1, 1) * (1 - m) + fg.view(n, 3, 1, 1) * m
    return img * 2 - 1, labels
