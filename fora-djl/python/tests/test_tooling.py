"""Checks of the model tooling: run with `/usr/bin/python3 -m pytest tests` from fora-djl/python."""
import argparse
import json
import os
import subprocess
import sys

import pytest
import torch

from fora_tools.classifier import PatternClassifier
from fora_tools.diffusion import ForaForward, Schedule, linear_betas, sample, space_timesteps
from fora_tools.dit import DiT, DiTConfig, ExportableDiT
from fora_tools.export import check_agreement, config_for, export
from fora_tools.patterns import CLASSES, make_batch
from fora_tools.train import learning_rate

# The official facebookresearch/DiT key layout (shared/notes/dit-and-fora.md).
TOP_LEVEL_KEYS = {
    "pos_embed", "x_embedder.proj.weight", "x_embedder.proj.bias",
    "t_embedder.mlp.0.weight", "t_embedder.mlp.0.bias", "t_embedder.mlp.2.weight", "t_embedder.mlp.2.bias",
    "y_embedder.embedding_table.weight",
    "final_layer.linear.weight", "final_layer.linear.bias",
    "final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias",
}
BLOCK_KEYS = {f"{m}.{p}" for m in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "adaLN_modulation.1")
              for p in ("weight", "bias")}


def perturb(model: torch.nn.Module) -> torch.nn.Module:
    """Makes a DiT's adaLN-Zero layers non-zero, so every block changes its input."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "adaLN_modulation" in name or "final_layer.linear" in name:
                p.normal_(0.0, 0.05)
    return model.eval()


def perturbed(cfg: DiTConfig, seed: int = 0) -> DiT:
    torch.manual_seed(seed)
    return perturb(DiT(cfg))


def test_state_dict_has_official_keys_and_shapes():
    cfg = DiTConfig(input_size=32, in_channels=4, num_classes=1000, hidden_size=64, depth=3, num_heads=4,
                    patch_size=2)
    sd = DiT(cfg).state_dict()
    expected = TOP_LEVEL_KEYS | {f"blocks.{i}.{k}" for i in range(3) for k in BLOCK_KEYS}
    assert set(sd) == expected
    d = 64
    assert sd["pos_embed"].shape == (1, 256, d)
    assert sd["x_embedder.proj.weight"].shape == (d, 4, 2, 2)
    assert sd["t_embedder.mlp.0.weight"].shape == (d, 256)
    assert sd["y_embedder.embedding_table.weight"].shape == (1001, d)  # the extra null-class row
    assert sd["blocks.0.attn.qkv.weight"].shape == (3 * d, d)
    assert sd["blocks.0.mlp.fc1.weight"].shape == (4 * d, d)
    assert sd["blocks.0.adaLN_modulation.1.weight"].shape == (6 * d, d)
    assert sd["final_layer.linear.weight"].shape == (2 * 2 * 8, d)  # learn_sigma doubles the channels
    assert sd["final_layer.adaLN_modulation.1.weight"].shape == (2 * d, d)


def test_dit_xl2_has_the_published_parameter_count():
    sd = DiT(config_for("DiT-XL/2")).state_dict()
    assert sum(v.numel() for v in sd.values()) == 675_129_632


def test_state_dict_round_trip_is_strict_and_exact():
    cfg = DiTConfig()
    a = perturbed(cfg, seed=1)
    b = DiT(cfg)
    b.load_state_dict(a.state_dict(), strict=True)
    x, y = torch.randn(2, 3, 16, 16), torch.tensor([1, 10])
    t = torch.tensor([10.0, 900.0])
    assert torch.equal(a(x, t, y), b.eval()(x, t, y))


def test_fresh_dit_is_zero_output_by_adaln_zero():
    out = DiT(DiTConfig())(torch.randn(2, 3, 16, 16), torch.tensor([1.0, 2.0]), torch.tensor([0, 1]))
    assert out.shape == (2, 6, 16, 16)
    assert out.abs().max().item() == 0.0


def test_component_path_agrees_with_whole_model_after_scripting():
    cfg = DiTConfig()
    scripted = torch.jit.script(ExportableDiT(perturbed(cfg)))
    diff = check_agreement(scripted, cfg, batch=4)
    assert diff <= 1e-5
    x = torch.randn(2, 3, 16, 16)
    t, y = torch.tensor([999.0, 3.0]), torch.tensor([4, 10])
    assert ForaForward(scripted, None, 1)(x, t, y, 0).abs().max().item() > 1e-3  # the check compared real work


def test_export_writes_manifest_with_hashes(tmp_path):
    cfg = DiTConfig()
    m = export(cfg, perturbed(cfg).state_dict(), str(tmp_path), PatternClassifier().state_dict(), name="t")
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == m
    assert m["format_version"] == 3 and m["architecture"]["tokens"] == 16
    assert set(m["files"]) == {"dit", "classifier"}
    loaded = torch.jit.load(str(tmp_path / "dit.pt"))
    assert loaded.modulation(torch.randn(3, 128)).shape == (6, 6, 3, 128)
    # the fused steps: a full step returns every feature, and a cached step fed them is the full step
    x, t, y = torch.randn(3, 3, 16, 16), torch.tensor([999.0, 500.0, 3.0]), torch.tensor([1, 4, 10])
    with torch.no_grad():
        out, features = loaded.forward_features(x, t, y)
        assert features.shape == (12, 3, 16, 128)
        assert torch.allclose(out, loaded(x, t, y), atol=1e-6)
        assert torch.allclose(loaded.forward_cached(x, t, y, [features], [1.0]), out, atol=1e-6)
        # features from another step change the result: the cached step really reads them
        _, other = loaded.forward_features(x, torch.tensor([10.0, 10.0, 10.0]), y)
        assert (loaded.forward_cached(x, t, y, [other], [1.0]) - out).abs().max().item() > 1e-3
        # a forecast is the step fed the combined features
        mixed = loaded.forward_cached(x, t, y, [features, other], [1.5, -0.5])
        assert torch.allclose(mixed, loaded.forward_cached(x, t, y, [1.5 * features - 0.5 * other], [1.0]), atol=1e-5)
        with pytest.raises(Exception, match="one coefficient per feature stack"):
            loaded.forward_cached(x, t, y, [features], [1.0, 2.0])
        # a full step into a given stack writes there what a new stack would hold
        into = torch.full_like(other, float("nan"))
        assert torch.equal(loaded.forward_features_into(x, t, y, into), out) and torch.equal(into, features)
        for wrong in (features[:, :2].clone(), features.double(), features.transpose(2, 3).contiguous().transpose(2, 3)):
            with pytest.raises(Exception, match="the stack must be a contiguous tensor"):
                loaded.forward_features_into(x, t, y, wrong)


def test_masked_step_computes_some_branches_and_takes_the_others_from_the_values():
    cfg = DiTConfig()
    scripted = torch.jit.script(ExportableDiT(perturbed(cfg)))
    x, t, y = torch.randn(3, 3, 16, 16), torch.tensor([999.0, 500.0, 3.0]), torch.tensor([1, 4, 10])
    with torch.no_grad():
        out, features = scripted.forward_features(x, t, y)
        _, other = scripted.forward_features(x, torch.tensor([10.0, 10.0, 10.0]), y)
        # every other branch computed, the rest reused from this step's own features: the full step
        terms = [0, 1] * cfg.depth
        masked, computed = scripted.forward_masked(x, t, y, terms, [features[f] for f in range(1, 12, 2)], [1.0] * 6)
        assert torch.allclose(masked, out, atol=1e-5) and torch.allclose(computed, features[0::2], atol=1e-5)
        # a forecast of two values is their combination; values of another step change the result
        two = [v for f in range(1, 12, 2) for v in (features[f], other[f])]
        forecast, _ = scripted.forward_masked(x, t, y, [0, 2] * cfg.depth, two, [1.5, -0.5] * 6)
        fed = [1.5 * features[f] - 0.5 * other[f] for f in range(1, 12, 2)]
        assert torch.allclose(forecast, scripted.forward_masked(x, t, y, terms, fed, [1.0] * 6)[0], atol=1e-5)
        assert (forecast - out).abs().max().item() > 1e-3
        for bad in ([0] * 11, [0, 1] * 5 + [0, -1], [1] * 12):
            with pytest.raises(Exception, match="forward_masked"):
                scripted.forward_masked(x, t, y, bad, [features[1]] * 6, [1.0] * 6)


def test_head_and_tail_are_the_forward_split_at_any_block_and_tails_ride_along_a_split_step():
    cfg = DiTConfig()
    scripted = torch.jit.script(ExportableDiT(perturbed(cfg)))
    x, t, y = torch.randn(3, 3, 16, 16), torch.tensor([999.0, 500.0, 3.0]), torch.tensor([1, 4, 10])
    with torch.no_grad():
        whole, features = scripted.forward_features(x, t, y)
        for blocks in range(cfg.depth + 1):
            tokens, added, c = scripted.forward_head(x, t, y, blocks)
            out, last = scripted.forward_tail(tokens, c, blocks)
            assert torch.allclose(out, whole, atol=1e-5)
            assert torch.allclose(tokens - added, scripted.embed(x, t, y)[0], atol=1e-5)
        # rows 0 and 1 full, row 2 cached; the tails of rows 0 (from block 1) and 2 (past every block) ride along
        head, _, c = scripted.forward_head(x, t, y, 1)
        ended, _, _ = scripted.forward_head(x, t, y, cfg.depth)
        split, split_features = scripted.forward_split(x, t, y, 2, [features[:, 2:]], [1.0])
        out, rode_features, tail_out, tail_tokens = scripted.forward_split_tails(
            x, t, y, 2, [features[:, 2:]], [1.0], torch.cat([head[:1], ended[2:]]), torch.cat([c[:1], c[2:]]), 1)
        assert torch.allclose(out, split, atol=1e-5) and torch.allclose(rode_features, split_features, atol=1e-5)
        assert torch.allclose(tail_out, whole[[0, 2]], atol=1e-5)
        assert torch.allclose(tail_tokens, scripted.forward_tail(head[:1], c[:1], 1)[1], atol=1e-5)
        for bad in (-1, cfg.depth + 1):
            with pytest.raises(Exception, match="forward_head"):
                scripted.forward_head(x, t, y, bad)
            with pytest.raises(Exception, match="forward_tail"):
                scripted.forward_tail(head, c, bad)
        with pytest.raises(Exception, match="forward_split_tails"):
            scripted.forward_split_tails(x, t, y, 2, [features[:, 2:]], [1.0], head, c, 4)


@pytest.mark.parametrize("batch", [1, 2])
def test_cached_step_sums_small_and_large_features_alike(batch):
    # 4 features of 1 row of 256 tokens x 64 channels is the largest stack summed as one; 2 rows
    # accumulate feature by feature: both are the full step when fed its own features.
    cfg = DiTConfig(input_size=32, patch_size=2, hidden_size=64, depth=2, num_heads=4)
    scripted = torch.jit.script(ExportableDiT(perturbed(cfg)))
    g = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 3, 32, 32, generator=g)
    t, y = torch.full((batch,), 400.0), torch.arange(batch) % 10
    with torch.no_grad():
        out, features = scripted.forward_features(x, t, y)
        assert features.numel() == 4 * 256 * 64 * batch
        assert torch.allclose(scripted.forward_cached(x, t, y, [features], [1.0]), out, atol=1e-5)
        forecast = scripted.forward_cached(x, t, y, [features, 0.5 * features], [3.0, -4.0])
        assert torch.allclose(forecast, out, atol=1e-5)


def test_patterns_dataset_is_seeded_and_covers_every_class():
    a, ya = make_batch(200, 16, torch.Generator().manual_seed(5))
    b, yb = make_batch(200, 16, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert a.shape == (200, 3, 16, 16) and a.min() >= -1 and a.max() <= 1
    assert set(ya.tolist()) == set(range(len(CLASSES)))
    # Diverse: no two images of one class are identical.
    for c in range(len(CLASSES)):
        imgs = a[ya == c].flatten(1)
        assert torch.cdist(imgs, imgs).add(torch.eye(len(imgs)) * 1e9).min() > 0
    # Plain is the background colour alone; every other class shows both colours at full
    # contrast (at least 0.45 apart on some channel, 0.9 in [-1, 1]).
    spread = (a.amax((2, 3)) - a.amin((2, 3))).amax(1)
    plain = ya == CLASSES.index("plain")
    assert spread[plain].max() == 0 and spread[~plain].min() >= 0.9 - 1e-6


def test_respacing_matches_dit():
    k50 = space_timesteps(1000, 50)
    assert k50[:6] == [0, 20, 41, 61, 82, 102] and k50[-4:] == [938, 958, 979, 999]
    k250 = space_timesteps(1000, 250)
    assert k250[:4] == [0, 4, 8, 12] and k250[-4:] == [987, 991, 995, 999]
    k20 = space_timesteps(1000, 20)
    assert k20[:4] == [0, 53, 105, 158] and k20[-3:] == [894, 946, 999]
    s = Schedule.respaced(50)
    full = torch.cumprod(1 - linear_betas(), 0)
    assert torch.allclose(s.abar, full[k50], rtol=0, atol=1e-12)


def test_fora_refresh_counts_and_uncached_equivalence():
    cfg = DiTConfig()
    scripted = torch.jit.script(ExportableDiT(perturbed(cfg)))
    s = Schedule.respaced(10)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([1, 2])
    plain = sample(lambda x, t, y, i: scripted(x, t, y), s, noise, labels, 10, 1.5, "ddim")
    none = ForaForward(scripted, None, 10)
    assert torch.allclose(sample(none, s, noise, labels, 10, 1.5, "ddim"), plain, atol=1e-5)
    assert none.refreshes == 10
    fora = ForaForward(scripted, 3, 10)
    cached = sample(fora, s, noise, labels, 10, 1.5, "ddim")
    assert fora.refreshes == 4  # i = 9 (first), 6, 3, 0
    assert (cached - plain).abs().max().item() > 0
    for k, n, full in [(50, 3, 18), (50, 5, 11), (50, 2, 26), (250, 3, 84), (20, 3, 8)]:
        f = ForaForward(None, n, k)
        assert sum(f.is_refresh(i) for i in range(k)) == full


def test_data_parallel_training_follows_the_one_process_run(tmp_path):
    """Two workers on half a batch each take the same steps as one process on the whole batch."""
    def train(workers: int) -> dict:
        run = tmp_path / f"w{workers}"
        subprocess.run([sys.executable, "-m", "fora_tools.train", "--run", str(run), "--steps", "3",
                        "--batch", "8", "--lr", "1e-3", "--workers", str(workers)],
                       check=True, capture_output=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        return torch.load(run / "last.pt")

    one, two = train(1), train(2)
    assert one["step"] == two["step"] == 3
    assert torch.equal(one["rng"], two["rng"])
    torch.manual_seed(0)  # train.py's initial weights
    start = DiT(DiTConfig()).state_dict()
    for k, v in one["model"].items():
        assert torch.allclose(v, two["model"][k], atol=1e-5), k
    assert sum(not torch.equal(v, start[k]) for k, v in one["model"].items()) > 10


def test_learning_rate_warms_up_then_decays_to_zero():
    args = argparse.Namespace(lr=2e-3, warmup=300, decay_from=3000, steps=18500)
    assert learning_rate(args, 0) == pytest.approx(2e-3 / 300)
    assert learning_rate(args, 299) == learning_rate(args, 2999) == 2e-3
    assert learning_rate(args, (3000 + 18500) // 2) == pytest.approx(1e-3, rel=1e-3)
    assert 0 < learning_rate(args, 18499) < 1e-9
    assert learning_rate(argparse.Namespace(lr=1e-3, warmup=0, decay_from=None, steps=10), 9) == 1e-3


def test_export_writes_bf16_and_int8_variants(tmp_path):
    cfg = DiTConfig()
    m = export(cfg, perturbed(cfg).state_dict(), str(tmp_path), name="t", bf16=True, int8=True)
    assert set(m["files"]) == {"dit", "dit_bf16", "dit_int8"}
    assert 0 < m["int8_max_abs_diff"] < 0.1 and 0 < m["bf16_max_abs_diff"] < 0.1
    fp32 = torch.jit.load(str(tmp_path / "dit.pt"))
    bf16 = torch.jit.load(str(tmp_path / "dit-bf16.pt"))
    int8 = torch.jit.load(str(tmp_path / "dit-int8.pt"))
    # int8: the blocks' attention and MLP linear layers quantized; adaLN (the gates) stays float32
    for i in range(cfg.depth):
        block = getattr(int8.dit.blocks, str(i))
        for layer in (block.attn.qkv, block.attn.proj, block.mlp.fc1, block.mlp.fc2):
            assert "quantized.linear_dynamic" in layer.code
        assert "linear_dynamic" not in getattr(block.adaLN_modulation, "1").code
    assert int8.ada_weight.dtype == torch.float32
    x, t, y = torch.randn(2, 3, 16, 16), torch.tensor([999.0, 500.0]), torch.tensor([1, 10])
    with torch.no_grad():
        tokens, c = bf16.embed(x, t, y)
        assert tokens.is_contiguous()  # the cached step adds features into them in place
        # bf16's one product per gate computes the gates float32's batched product computes
        out, features = bf16.forward_features(x, t, y)
        assert (bf16.forward_cached(x, t, y, [features], [1.0]) - out).abs().max().item() < 0.05
        out, features = int8.forward_features(x, t, y)
        assert features.dtype == torch.float32
        assert (int8.forward_cached(x, t, y, [features], [1.0]) - out).abs().max().item() < 1e-5
        assert (out - fp32(x, t, y)).abs().max().item() == pytest.approx(m["int8_max_abs_diff"], rel=0.5)
