"""The T5 v1.1 encoder, the .safetensors reader, the tokenizer converter and the text-encoder export."""
import json
import os

import pytest
import torch

from fora_tools import export_t5, safetensors, t5, tokenizer_json

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "src", "test", "resources", "families", "pixart-small")
SMALL = t5.T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=24, num_layers=3, num_heads=2)


def _small(seed=0):
    torch.manual_seed(seed)
    return t5.randomise(t5.T5Encoder(SMALL), seed).eval()


def test_state_dict_is_the_hf_layout():
    sd = _small().state_dict()
    assert {k: list(v.shape) for k, v in sd.items()} == t5.expected_layout(SMALL)
    # position bias only in the first layer, no biases anywhere
    assert not any(k.endswith(".bias") for k in sd)
    assert sum("relative_attention_bias" in k for k in sd) == 1


def test_strict_load_from_the_layout():
    g = torch.Generator().manual_seed(3)
    layout = {k: torch.randn(s, generator=g) for k, s in t5.expected_layout(SMALL).items()}
    layout["encoder.embed_tokens.weight"] = layout["shared.weight"]
    model = t5.load(layout)
    for k, v in model.state_dict().items():
        assert torch.equal(v, layout[k]), k
    assert model.cfg == SMALL


def test_whole_t5_checkpoint_keeps_the_encoder_only():
    sd = dict(_small().state_dict())
    sd["decoder.block.0.layer.0.SelfAttention.q.weight"] = torch.zeros(8, 16)
    sd["lm_head.weight"] = torch.zeros(64, 16)
    del sd["encoder.embed_tokens.weight"]  # tied: some checkpoints store only `shared`
    t5.load(sd)
    with pytest.raises(RuntimeError):
        bad = dict(sd)
        bad["encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"] = torch.zeros(32, 2)
        t5.load(bad)


def test_xxl_preset_layout_counts():
    layout = t5.expected_layout(t5.PRESETS["t5-v1_1-xxl"])
    assert len(layout) == 4 + 24 * 9 - 0
    n = sum(torch.Size(s).numel() for k, s in layout.items() if k != "encoder.embed_tokens.weight")
    assert 4.7e9 < n < 4.8e9  # T5 v1.1 XXL's encoder: 4.76 B parameters (19 GB in float32)


def test_relative_buckets():
    b = t5.relative_buckets(200, 32, 128)
    assert b[0, 0] == 0 and b[0, 1] == 17 and b[1, 0] == 1      # keys after the query use the upper half
    assert b[0, 7] == 16 + 7 and b[0, 8] == 16 + 8                # exact up to 8, then logarithmic
    assert b[0, 199] == 31 and b[199, 0] == 15                    # saturates at max_distance
    assert (b.diagonal() == 0).all()


def test_padding_does_not_reach_real_tokens():
    m = _small()
    ids = torch.randint(3, 64, (1, 10))
    mask = torch.tensor([[1] * 6 + [0] * 4])
    other = ids.clone()
    other[0, 6:] = torch.randint(3, 64, (4,))
    with torch.no_grad():
        a, b = m(ids, mask), m(other, mask)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6)
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_safetensors_round_trip_and_shards(tmp_path):
    sd = _small().state_dict()
    keys = sorted(sd)
    half = len(keys) // 2
    safetensors.save(str(tmp_path / "a.safetensors"), {k: sd[k] for k in keys[:half]})
    safetensors.save(str(tmp_path / "b.safetensors"), {k: sd[k].bfloat16() for k in keys[half:]})
    index = {"weight_map": {**{k: "a.safetensors" for k in keys[:half]}, **{k: "b.safetensors" for k in keys[half:]}}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    back = safetensors.load_state_dict(str(tmp_path))
    for k in keys[:half]:
        assert torch.equal(back[k], sd[k])
    for k in keys[half:]:
        assert back[k].dtype == torch.bfloat16 and torch.equal(back[k], sd[k].bfloat16())
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(ValueError, match="not"):
        safetensors.load(str(tmp_path / "bad.safetensors"))


def test_converter_reads_the_fixture_model_as_sentencepiece_does():
    spm = pytest.importorskip("sentencepiece")
    path = os.path.join(FIXTURE, "spiece.model")
    sp = spm.SentencePieceProcessor(model_file=path)
    model = tokenizer_json.SpmModel.read(path)
    assert len(model.pieces) == sp.get_piece_size()
    for i, (piece, score, kind) in enumerate(model.pieces):
        assert piece == sp.id_to_piece(i)
        assert score == pytest.approx(sp.get_score(i))
        assert (kind == tokenizer_json.CONTROL) == sp.is_control(i)
        assert (kind == tokenizer_json.UNKNOWN) == sp.is_unknown(i)
    assert model.eos_id == sp.eos_id() == 1
    tok = tokenizer_json.convert(model)
    assert [v[0] for v in tok["model"]["vocab"]][3:] == [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]
    assert tok["model"]["unk_id"] == sp.unk_id()


def test_export_agrees_and_checks_the_width(tmp_path):
    import shutil
    d = tmp_path / "m"
    d.mkdir()
    manifest = {"architecture": {"caption_channels": 16, "model_max_length": 6}, "files": {}}
    (d / "manifest.json").write_text(json.dumps(manifest))
    tok = os.path.join(FIXTURE, "tokenizer.json")
    with pytest.raises(ValueError, match="embeds only"):
        export_t5.add(str(d), _small(), tok)  # 500 tokenizer ids, 64 embedding rows
    big = t5.randomise(t5.T5Encoder(t5.T5Config(**{**SMALL.to_json(), "vocab_size": 512})), 1).eval()
    m = export_t5.add(str(d), big, tok)
    assert m["text_encoder"]["tokens"] == 6 and m["text_encoder"]["width"] == 16
    scripted = torch.jit.load(str(d / export_t5.FILE))
    ids = torch.randint(0, 500, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.int64)
    with torch.no_grad():
        assert torch.allclose(scripted(ids, mask), big(ids, mask), atol=1e-6)
    narrow = {"architecture": {"caption_channels": 32, "model_max_length": 6}, "files": {}}
    (d / "manifest.json").write_text(json.dumps(narrow))
    with pytest.raises(ValueError, match="wide"):
        export_t5.add(str(d), big, tok)
    shutil.rmtree(d)


def test_bf16_export_is_close(tmp_path):
    m = _small()
    ids = torch.randint(0, 64, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.int64)
    with torch.no_grad():
        ref = m(ids, mask)
        bf = export_t5.ExportableT5(_small().to(torch.bfloat16))(ids, mask)
    assert bf.dtype == torch.float32
    assert (bf - ref).abs().max() < 0.1 * ref.abs().max()
