"""The model families' tooling: PixArt-alpha's official layout, its export, the latent decoder's
layout and state-dict spellings, the decoder add-on, text-embedding files and the reference
sampler. Run with `/usr/bin/python3 -m pytest tests` from fora-djl/python."""
import json
import os

import numpy as np
import pytest
import torch

from fora_tools import add_decoder, export, export_pixart, text_embeddings
from fora_tools.diffusion import Schedule
from fora_tools.dit import DiT, DiTConfig
from fora_tools.pixart import (ExportablePixArt, PixArt, PixArtConfig, load_official, perturb_zero_layers,
                               pos_embed_table, preset)
from fora_tools.reference import StagedForward, sample
from fora_tools.vae import (SD_VAE, DecoderConfig, ExportableDecoder, LatentDecoder, convert_state_dict, load_decoder,
                            randomise, to_ldm)

SMALL = PixArtConfig(input_size=8, hidden_size=64, depth=2, num_heads=4, caption_channels=32, model_max_length=6)
TINY_VAE = DecoderConfig(block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8)

# PixArt.py / PixArt_blocks.py of PixArt-alpha/PixArt-alpha (shared/notes/dit-and-fora.md).
PIXART_TOP = {"pos_embed", "x_embedder.proj.weight", "x_embedder.proj.bias", "t_embedder.mlp.0.weight",
              "t_embedder.mlp.0.bias", "t_embedder.mlp.2.weight", "t_embedder.mlp.2.bias", "t_block.1.weight",
              "t_block.1.bias", "y_embedder.y_embedding", "y_embedder.y_proj.fc1.weight", "y_embedder.y_proj.fc1.bias",
              "y_embedder.y_proj.fc2.weight", "y_embedder.y_proj.fc2.bias", "final_layer.scale_shift_table",
              "final_layer.linear.weight", "final_layer.linear.bias"}
PIXART_BLOCK = {"scale_shift_table"} | {f"{m}.{p}" for m in ("attn.qkv", "attn.proj", "cross_attn.q_linear",
                                                              "cross_attn.kv_linear", "cross_attn.proj", "mlp.fc1",
                                                              "mlp.fc2") for p in ("weight", "bias")}


def small(seed=0) -> PixArt:
    torch.manual_seed(seed)
    return perturb_zero_layers(PixArt(SMALL), std=0.05).eval()


def inputs(cfg=SMALL, n=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g)
    y = torch.randn(n, cfg.model_max_length, cfg.caption_channels, generator=g)
    mask = torch.ones(n, cfg.model_max_length)
    mask[0, 2:] = 0
    return x, torch.tensor([999.0, 31.5][:n]), y, mask


def test_pixart_state_dict_has_the_official_keys_and_shapes():
    sd = PixArt(SMALL).state_dict()
    assert set(sd) == PIXART_TOP | {f"blocks.{i}.{k}" for i in range(2) for k in PIXART_BLOCK}
    d = 64
    assert sd["t_block.1.weight"].shape == (6 * d, d)
    assert sd["y_embedder.y_embedding"].shape == (6, 32)  # the null caption: model_max_length x caption_channels
    assert sd["y_embedder.y_proj.fc1.weight"].shape == (d, 32)
    assert sd["blocks.0.scale_shift_table"].shape == (6, d)
    assert sd["blocks.0.cross_attn.kv_linear.weight"].shape == (2 * d, d)
    assert sd["final_layer.scale_shift_table"].shape == (2, d)
    assert sd["final_layer.linear.weight"].shape == (2 * 2 * 8, d)


def test_pixart_xl2_256_has_the_published_sizes():
    sd = PixArt(preset("PixArt-XL/2-256")).state_dict()
    assert sd["pos_embed"].shape == (1, 256, 1152)
    assert sd["y_embedder.y_embedding"].shape == (120, 4096)
    # 611 M parameters in the transformer (plus the buffers pos_embed and y_embedding)
    params = sum(v.numel() for k, v in sd.items() if k not in ("pos_embed", "y_embedder.y_embedding"))
    assert 600e6 < params < 620e6


def test_fresh_pixart_ignores_captions_and_outputs_zero():
    x, t, y, mask = inputs()
    with torch.no_grad():
        assert PixArt(SMALL)(x, t, y, mask).abs().max().item() == 0.0


def test_strict_round_trip_and_pos_embed_recomputed():
    a = small(3)
    b = PixArt(SMALL).eval()
    sd = {k: v for k, v in a.state_dict().items() if k != "pos_embed"}  # as the official inference script drops it
    load_official(b, sd)
    x, t, y, mask = inputs()
    with torch.no_grad():
        assert torch.equal(a(x, t, y, mask), b(x, t, y, mask))
    with pytest.raises(RuntimeError):
        load_official(PixArt(SMALL), {k: v for k, v in sd.items() if "cross_attn" not in k})


def test_padding_tokens_do_not_matter_and_real_ones_do():
    m = small(4)
    x, t, y, mask = inputs()
    y2 = y.clone()
    y2[0, 2:] += 5.0  # padding of row 0
    y3 = y.clone()
    y3[0, 1] += 5.0  # a real token of row 0
    with torch.no_grad():
        base = m(x, t, y, mask)
        assert torch.allclose(m(x, t, y2, mask), base, atol=1e-6)
        assert not torch.allclose(m(x, t, y3, mask)[0], base[0], atol=1e-3)
        assert torch.allclose(m(x, t, y3, mask)[1], base[1], atol=1e-6)  # rows are independent
        # the official [N, 1, L, W] caption shape and [N, 1, 1, L] mask give the same
        assert torch.equal(m(x, t, y[:, None], mask[:, None, None]), base)


def test_pos_embed_scales_positions_with_lewei_scale():
    a = pos_embed_table(32, 4, 4, 1.0)
    b = pos_embed_table(32, 8, 4, 2.0)  # 8 positions squeezed into the range of 4 twice over: every 4th one
    assert torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[4])  # column 1 of a is column 4 of b
    assert a.shape == (16, 32) and b.shape == (64, 32)


def test_exported_stages_equal_the_whole_model_and_the_manifest_describes_them(tmp_path):
    m = export_pixart.export(SMALL, small(5).state_dict(), str(tmp_path), "px", export_pixart.official_guidance(SMALL))
    assert m["architecture"]["family"] == "pixart-alpha"
    assert m["architecture"]["caption_channels"] == 32 and m["architecture"]["model_max_length"] == 6
    assert m["guidance"] == {"guided_channels": 3, "guided_channels_by_sampler": {"dpm-solver++": 4, "dpms": 4}}
    assert m["diffusion"]["clip_denoised"] is False and "null_class" not in m["diffusion"]
    assert m["component_max_abs_diff"] <= 1e-5
    scripted = torch.jit.load(os.path.join(tmp_path, "pixart.pt"))
    assert torch.equal(scripted.null_caption(), small(5).y_embedder.y_embedding)
    x, t, y, mask = inputs()
    with torch.no_grad():
        staged = StagedForward(scripted, "pixart-alpha", None, 1)(x, t, (y, mask), 0)
        assert torch.allclose(staged, small(5)(x, t, y, mask), atol=1e-5)


def test_fora_with_interval_one_is_the_uncached_forward():
    s = torch.jit.script(ExportablePixArt(small(6)))
    x, t, y, mask = inputs()
    with torch.no_grad():
        a = StagedForward(s, "pixart-alpha", None, 5)(x, t, (y, mask), 4)
        b = StagedForward(s, "pixart-alpha", 1, 5)(x, t, (y, mask), 4)
    assert torch.equal(a, b)


def test_reference_sampler_guides_only_the_first_channels():
    s = torch.jit.script(ExportablePixArt(small(7)))
    _, _, y, mask = inputs()
    null = s.null_caption()[None].repeat(2, 1, 1)
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    concat = lambda a, b: (torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]))
    runs = {}
    for gc in (3, 4):
        runs[gc] = sample(StagedForward(s, "pixart-alpha", None, 10), Schedule.respaced(10), noise, (y, mask),
                          (null, mask), 4.5, "dpm-solver++", gc, False, concat)
    assert not torch.allclose(runs[3], runs[4])
    # with scale 1 guidance does nothing, whatever the count
    one = [sample(StagedForward(s, "pixart-alpha", None, 10), Schedule.respaced(10), noise, (y, mask), (null, mask), 1.0,
                  "ddim", gc, False, concat) for gc in (3, 4)]
    assert torch.equal(one[0], one[1])


# ---- the latent decoder -------------------------------------------------------------------------

def test_sd_vae_decoder_has_the_published_size_and_upsamples_8x():
    assert sum(v.numel() for v in LatentDecoder(SD_VAE).state_dict().values()) == 49_490_199
    assert SD_VAE.upsampling == 8 and SD_VAE.scale_factor == 0.18215


def test_decoder_loads_all_three_spellings_strictly():
    dec = randomise(LatentDecoder(TINY_VAE), seed=1).eval()
    sd = dec.state_dict()
    old = {}  # diffusers before 0.15 (the sd-vae-ft-* .bin files): query, key, value, proj_attn
    for k, v in sd.items():
        for new, name in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")):
            k = k.replace(f"attentions.0.{new}.", f"attentions.0.{name}.")
        old[k] = v
    ldm = {"first_stage_model." + k: v for k, v in to_ldm(sd, TINY_VAE).items()}
    encoder = {"encoder.conv_in.weight": torch.zeros(1), "quant_conv.weight": torch.zeros(1)}  # ignored
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        want = dec(z)
        for spelling in (sd, old, ldm):
            assert torch.equal(load_decoder(TINY_VAE, {**spelling, **encoder})(z), want)
    with pytest.raises(RuntimeError):
        load_decoder(TINY_VAE, {k: v for k, v in sd.items() if "conv_out" not in k})


def test_exported_decoder_divides_by_the_scale_factor():
    dec = randomise(LatentDecoder(TINY_VAE), seed=2).eval()
    s = torch.jit.script(ExportableDecoder(dec))
    z = torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        assert torch.allclose(s(z), dec(z / 0.18215), atol=1e-6)
        assert s(z).shape == (2, 3, 8, 8)


def test_add_decoder_records_it_and_refuses_other_latent_channels(tmp_path):
    cfg = DiTConfig(input_size=8, in_channels=4, patch_size=2, hidden_size=32, depth=1, num_heads=2, num_classes=3)
    export.export(cfg, DiT(cfg).state_dict(), str(tmp_path), name="d", guided_channels=3, clip_denoised=True)
    m = add_decoder.add(str(tmp_path), TINY_VAE, seed=3)
    assert m["files"]["decoder"]["path"] == "decoder.pt"
    assert m["decoder"]["latent_channels"] == 4 and m["decoder"]["upsampling"] == 2
    assert m["decoder"]["scale_factor"] == 0.18215 and m["decoder"]["image_size"] == 16
    assert m["diffusion"]["clip_denoised"] is False and m["guidance"]["guided_channels"] == 3
    with open(os.path.join(tmp_path, "manifest.json")) as f:
        assert json.load(f) == m
    with pytest.raises(ValueError, match="3-channel latents"):
        add_decoder.add(str(tmp_path), DecoderConfig(latent_channels=3, block_out_channels=(16,), norm_num_groups=8))


def test_dit_export_guides_three_channels_for_official_checkpoints(tmp_path):
    cfg = export.config_for("DiT-S/2")
    assert cfg.in_channels == 4
    m = export.export(DiTConfig(input_size=8, in_channels=4, patch_size=2, hidden_size=32, depth=1, num_heads=2,
                                num_classes=3), None, str(tmp_path), name="x")
    assert m["guidance"]["guided_channels"] == 4 and m["diffusion"]["clip_denoised"] is True


# ---- text embeddings files ------------------------------------------------------------------------

def test_text_embeddings_round_trip(tmp_path):
    emb = np.random.default_rng(0).standard_normal((2, 6, 32)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    path = os.path.join(tmp_path, "p.npz")
    text_embeddings.save(path, emb, mask)
    e, m = text_embeddings.load(path)
    assert np.array_equal(e, emb) and np.array_equal(m, mask)
    with pytest.raises(ValueError, match="real token"):
        text_embeddings.save(path, emb, np.zeros((2, 6), dtype=bool))
    with pytest.raises(ValueError, match="tokens, width"):
        text_embeddings.save(path, emb[0])
