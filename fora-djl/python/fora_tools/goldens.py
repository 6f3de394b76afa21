"""Golden references for the Java parity tests, from an exported model directory.

Writes `index.json` and raw float32 little-endian arrays: one step's inputs and the output of
every component, whole trajectories (DDIM-50 uncached, DDIM-50 FORA N=3, DDPM-50 FORA N=3
with its per-step noise recorded for replay), and the classifier's outputs on one of them.

    python3 -m fora_tools.goldens --model ../../fora-model/dit-patterns \\
        --out ../src/test/resources/golden
"""
import argparse
import json
import os

import torch

from .diffusion import ForaForward, Schedule, sample

CFG_SCALE = 1.5
LABELS = [0, 3, 5, 8]
COMPONENT_LABELS = [2, 7]
KEEP_STEPS = (49, 40, 25, 10)


class Writer:
    def __init__(self, out: str):
        self.out = out
        self.arrays = {}
        os.makedirs(out, exist_ok=True)
        for f in os.listdir(out):  # stale arrays of an earlier run must not linger
            if f.endswith(".f32"):
                os.remove(os.path.join(out, f))

    def put(self, name: str, t: torch.Tensor) -> str:
        t = t.detach().to(torch.float32).contiguous()
        with open(os.path.join(self.out, name + ".f32"), "wb") as f:
            f.write(t.numpy().astype("<f4").tobytes())
        self.arrays[name] = {"file": name + ".f32", "shape": list(t.shape)}
        return name

    def finish(self, index: dict) -> None:
        """Writes index.json: `index` with the table of every array put."""
        index["arrays"] = self.arrays
        with open(os.path.join(self.out, "index.json"), "w") as f:
            json.dump(index, f, indent=1)
            f.write("\n")
        total = sum(os.path.getsize(os.path.join(self.out, a["file"])) for a in self.arrays.values())
        print(f"wrote {len(self.arrays)} arrays ({total / 1e6:.2f} MB) to {self.out}")


def components(m, w: Writer, in_channels: int, size: int, null_class: int, seed: int) -> dict:
    """One CFG step at loop index 49 of 50 (timestep 999): inputs and each stage's output."""
    g = torch.Generator().manual_seed(seed)
    n = len(COMPONENT_LABELS)
    x = torch.randn(n, in_channels, size, size, generator=g)
    x = torch.cat([x, x])
    labels = COMPONENT_LABELS + [null_class] * n
    t = torch.full((2 * n,), 999.0)
    y = torch.tensor(labels)
    outs = {"attention_input": {}, "attention": {}, "mlp_input": {}, "mlp": {}}
    with torch.no_grad():
        h, c = m.embed(x, t, y)
        mods = m.modulation(c)
        outs["tokens"], outs["c"], outs["modulation"] = w.put("c_tokens", h), w.put("c_c", c), w.put("c_modulation", mods)
        depth = mods.shape[0]
        for b in range(depth):
            shift1, scale1, gate1, shift2, scale2, gate2 = mods[b].unbind(0)
            a = m.attention(b, h, shift1, scale1)
            if b in (0, depth - 1):
                outs["attention_input"][str(b)] = w.put(f"c_attention_input_{b}", h)
                outs["attention"][str(b)] = w.put(f"c_attention_{b}", a)
            h = h + gate1.unsqueeze(1) * a
            f = m.mlp(b, h, shift2, scale2)
            if b in (0, depth - 1):
                outs["mlp_input"][str(b)] = w.put(f"c_mlp_input_{b}", h)
                outs["mlp"][str(b)] = w.put(f"c_mlp_{b}", f)
            h = h + gate2.unsqueeze(1) * f
        outs["final_input"] = w.put("c_final_input", h)
        final, whole = m.final_layer(h, c), m(x, t, y)
        outs["final"], outs["forward"] = w.put("c_final", final), w.put("c_forward", whole)
        drift = (final - whole).abs().max().item()
    return {"labels_in": labels, "inputs": {"x": w.put("c_x", x), "t": w.put("c_t", t)}, "outputs": outs,
            "component_vs_forward_max_abs": drift}


def trajectory(m, w: Writer, name: str, sampler: str, interval, steps: int, arch: dict, null_class: int,
               seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    n, ch, size = len(LABELS), arch["in_channels"], arch["input_size"]
    noise = torch.randn(n, ch, size, size, generator=g)
    step_noise = torch.randn(steps, n, ch, size, size, generator=g) if sampler == "ddpm" else None
    kept = {}
    fwd = ForaForward(m, interval, steps)
    x = sample(fwd, Schedule.respaced(steps), noise, torch.tensor(LABELS), null_class, CFG_SCALE, sampler,
               step_noise=list(step_noise) if step_noise is not None else None,
               keep=lambda i, x: kept.__setitem__(i, x) if i in KEEP_STEPS else None)
    return {
        "name": name, "sampler": sampler, "steps": steps,
        "policy": "none" if interval is None else f"fora:{interval}",
        "cfg_scale": CFG_SCALE, "labels": LABELS, "clip": True,
        "noise": w.put(f"{name}_noise", noise),
        "step_noise": w.put(f"{name}_step_noise", step_noise) if step_noise is not None else None,
        "intermediates": {str(i): w.put(f"{name}_x{i}", kept[i]) for i in sorted(kept, reverse=True)},
        "final": w.put(f"{name}_final", x),
        "refresh_steps": fwd.refreshes,
    }


def classifier_outputs(model_dir: str, manifest: dict, w: Writer, images: str) -> dict:
    """The judge's logits and features on one trajectory's final samples."""
    clf = torch.jit.load(os.path.join(model_dir, manifest["files"]["classifier"]["path"]))
    shape = w.arrays[images]["shape"]
    with open(os.path.join(w.out, w.arrays[images]["file"]), "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)
    with torch.no_grad():
        return {"input": images, "logits": w.put("classifier_logits", clf(x)),
                "features": w.put("classifier_features", clf.features(x))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="exported model directory")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    torch.set_num_threads(2)
    with open(os.path.join(args.model, "manifest.json")) as f:
        manifest = json.load(f)
    arch, null_class = manifest["architecture"], manifest["diffusion"]["null_class"]
    m = torch.jit.load(os.path.join(args.model, manifest["files"]["dit"]["path"]))
    w = Writer(args.out)
    index = {
        "model_sha256": manifest["files"]["dit"]["sha256"],
        "torch": torch.__version__,
        "components": components(m, w, arch["in_channels"], arch["input_size"], null_class, args.seed),
        "trajectories": [
            trajectory(m, w, "ddim50_none", "ddim", None, 50, arch, null_class, args.seed + 1),
            trajectory(m, w, "ddim50_fora3", "ddim", 3, 50, arch, null_class, args.seed + 1),
            trajectory(m, w, "ddpm50_fora3", "ddpm", 3, 50, arch, null_class, args.seed + 2),
        ],
    }
    if "classifier" in manifest["files"]:
        index["classifier"] = classifier_outputs(args.model, manifest, w, index["trajectories"][0]["final"])
    w.finish(index)


if __name__ == "__main__":
    main()
