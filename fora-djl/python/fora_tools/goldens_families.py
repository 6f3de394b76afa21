"""Golden references of the model families for the Java parity tests: a PixArt-alpha model
directory (text conditioning, three branches per block) or a latent DiT, each with a latent
decoder, from their exported TorchScript files.

Writes `index.json` and raw float32 little-endian arrays (as fora_tools.goldens): one guided
step's inputs and every stage's output, the decoder on one latent, and whole trajectories
(uncached and FORA, guided on the manifest's channels, x0 not clipped) with their decoded
images.

    python3 -m fora_tools.goldens_families --model ../src/test/resources/families/pixart-small \\
        --out ../src/test/resources/families/golden-pixart
"""
import argparse
import json
import os

import torch

from .diffusion import Schedule
from .goldens import Writer
from .reference import StagedForward, sample

KEEP = {7: (6, 3, 0), 20: (19, 10, 5, 0), 50: (49, 25, 10, 0)}
DIT_LABELS = [0, 3, 5, 8]
PIXART_LENGTHS = (None, 3, 1)  # tokens per prompt: all of them, three, one


def guided_channels(manifest: dict, sampler: str) -> int:
    g = manifest.get("guidance", {})
    return g.get("guided_channels_by_sampler", {}).get(sampler, g.get("guided_channels", manifest["architecture"]["in_channels"]))


class Family:
    """Conditioning of one family: what a batch's rows are, their unconditional rows, and how to join them."""

    def __init__(self, manifest: dict, model):
        self.arch = manifest["architecture"]
        self.pixart = self.arch.get("family") == "pixart-alpha"
        self.model = model
        if self.pixart:
            self.null = model.null_caption()

    def prompts(self, n: int, seed: int):
        if not self.pixart:
            return torch.tensor(DIT_LABELS[:n])
        g = torch.Generator().manual_seed(seed)
        length, width = self.arch["model_max_length"], self.arch["caption_channels"]
        y = torch.randn(n, length, width, generator=g)
        mask = torch.zeros(n, length)
        for i in range(n):
            real = PIXART_LENGTHS[i % len(PIXART_LENGTHS)] or length
            mask[i, :real] = 1
        return y, mask

    def unconditional(self, cond):
        """The null class, or the null caption under each prompt's mask (as PixArt's samplers do)."""
        if not self.pixart:
            return torch.full_like(cond, self.arch["num_classes"])
        y, mask = cond
        return self.null[None].expand(y.shape[0], -1, -1).contiguous(), mask.clone()

    def concat(self, a, b):
        if not self.pixart:
            return torch.cat([a, b])
        return torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]])

    def put(self, w: Writer, prefix: str, cond) -> dict:
        if not self.pixart:
            return {"labels": cond.tolist()}
        return {"embeddings": w.put(prefix + "_y", cond[0]), "mask": w.put(prefix + "_mask", cond[1])}


def components(fam: Family, w: Writer, seed: int) -> dict:
    """One guided step at timestep 999: inputs ([cond; uncond] of 2 images) and every stage's output."""
    m, arch = fam.model, fam.arch
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, arch["in_channels"], arch["input_size"], arch["input_size"], generator=g)
    x = torch.cat([x, x])
    cond = fam.prompts(2, seed + 100)
    both = fam.concat(cond, fam.unconditional(cond))
    t = torch.full((4,), 999.0)
    outs = {k: {} for k in ("attention_input", "attention", "cross_input", "cross", "mlp_input", "mlp")}
    with torch.no_grad():
        if fam.pixart:
            h, c, context = m.embed(x, t, both[0])
            outs["context"] = w.put("c_context", context)
        else:
            h, c = m.embed(x, t, both)
        mods = m.modulation(c)
        outs["tokens"], outs["c"], outs["modulation"] = w.put("c_tokens", h), w.put("c_c", c), w.put("c_modulation", mods)
        depth = mods.shape[0]
        for b in range(depth):
            shift1, scale1, gate1, shift2, scale2, gate2 = mods[b].unbind(0)
            keep = b in (0, depth - 1)
            a = m.attention(b, h, shift1, scale1)
            if keep:
                outs["attention_input"][str(b)], outs["attention"][str(b)] = w.put(f"c_attention_input_{b}", h), w.put(f"c_attention_{b}", a)
            h = h + gate1.unsqueeze(1) * a
            if fam.pixart:
                cr = m.cross_attention(b, h, context, both[1])
                if keep:
                    outs["cross_input"][str(b)], outs["cross"][str(b)] = w.put(f"c_cross_input_{b}", h), w.put(f"c_cross_{b}", cr)
                h = h + cr
            f = m.mlp(b, h, shift2, scale2)
            if keep:
                outs["mlp_input"][str(b)], outs["mlp"][str(b)] = w.put(f"c_mlp_input_{b}", h), w.put(f"c_mlp_{b}", f)
            h = h + gate2.unsqueeze(1) * f
        outs["final_input"] = w.put("c_final_input", h)
        final = m.final_layer(h, c)
        whole = m(x, t, *both) if fam.pixart else m(x, t, both)
        outs["final"], outs["forward"] = w.put("c_final", final), w.put("c_forward", whole)
        drift = (final - whole).abs().max().item()
    inputs = {"x": w.put("c_x", x), "t": w.put("c_t", t)}
    inputs.update(fam.put(w, "c", both))
    if fam.pixart:
        outs["null_caption"] = w.put("c_null_caption", fam.null)
    return {"inputs": inputs, "outputs": outs, "component_vs_forward_max_abs": drift}


def trajectory(fam: Family, decoder, manifest: dict, w: Writer, sampler: str, steps: int, interval, cfg_scale: float,
               n: int, seed: int) -> dict:
    name = f"{'dpm' if sampler == 'dpm-solver++' else sampler}{steps}_{'none' if interval is None else f'fora{interval}'}"
    arch = fam.arch
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, arch["in_channels"], arch["input_size"], arch["input_size"], generator=g)
    cond = fam.prompts(n, seed + 100)
    gc = guided_channels(manifest, sampler)
    fwd = StagedForward(fam.model, "pixart-alpha" if fam.pixart else "dit", interval, steps)
    kept = {}
    with torch.no_grad():
        x = sample(fwd, Schedule.respaced(steps), noise, cond, fam.unconditional(cond), cfg_scale, sampler, gc, False,
                   fam.concat, keep=lambda i, v: kept.__setitem__(i, v) if i in KEEP[steps] else None)
        image = decoder(x) if decoder is not None else None
    out = {"name": name, "sampler": sampler, "steps": steps, "policy": "none" if interval is None else f"fora:{interval}",
           "cfg_scale": cfg_scale, "guided_channels": gc, "clip": False, "noise": w.put(f"{name}_noise", noise),
           "intermediates": {str(i): w.put(f"{name}_x{i}", kept[i]) for i in sorted(kept, reverse=True)},
           "final": w.put(f"{name}_final", x), "refresh_steps": fwd.refreshes,
           "decoded": w.put(f"{name}_decoded", image) if image is not None else None}
    out.update(fam.put(w, name, cond))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="exported model directory (pixart-alpha or DiT, with a decoder)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(args.model, "manifest.json")) as f:
        manifest = json.load(f)
    m = torch.jit.load(os.path.join(args.model, manifest["files"]["dit"]["path"]))
    decoder = None
    if "decoder" in manifest["files"]:
        decoder = torch.jit.load(os.path.join(args.model, manifest["files"]["decoder"]["path"]))
    fam = Family(manifest, m)
    w = Writer(args.out)
    index = {"family": manifest["architecture"].get("family", "dit"), "model_sha256": manifest["files"]["dit"]["sha256"],
             "torch": torch.__version__, "components": components(fam, w, args.seed)}
    if decoder is not None:
        index["decoder_sha256"] = manifest["files"]["decoder"]["sha256"]
        z = torch.randn(2, manifest["decoder"]["latent_channels"], manifest["architecture"]["input_size"],
                        manifest["architecture"]["input_size"], generator=torch.Generator().manual_seed(args.seed + 7))
        with torch.no_grad():
            index["decoder"] = {"latent": w.put("decoder_latent", z), "image": w.put("decoder_image", decoder(z))}
    if fam.pixart:
        runs = [("dpm-solver++", 20, None), ("dpm-solver++", 20, 2), ("dpm-solver++", 20, 3), ("ddim", 20, 2),
                ("dpms", 20, None), ("dpms", 20, 2), ("dpms", 7, None)]
        cfg_scale, n = 4.5, 3
    else:
        runs = [("ddim", 50, None), ("ddim", 50, 3), ("dpm-solver++", 20, 2)]
        cfg_scale, n = 1.5, 4
    index["trajectories"] = [trajectory(fam, decoder, manifest, w, s, k, iv, cfg_scale, n, args.seed + 1)
                             for s, k, iv in runs]
    w.finish(index)


if __name__ == "__main__":
    main()
