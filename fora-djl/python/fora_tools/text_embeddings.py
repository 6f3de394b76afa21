"""Text embeddings for PixArt-alpha models, in the file format `fora generate --text-embeddings`
and `dev.fora.djl.TextEmbeddingFiles` read: a NumPy `.npz` archive (as `numpy.savez` or
`numpy.savez_compressed` write it) with

    embeddings  float32 (float16 and float64 are accepted), [N, tokens, width]: one row per prompt,
                e.g. [N, 120, 4096] of T5-XXL for PixArt-alpha
    mask        optional, bool or integer, [N, tokens]: 1 (true) for a real token, 0 for padding;
                without it every token counts; every row needs one real token

FORA4J does not run T5. PixArt-alpha's captions are the last hidden state of T5 v1.1 XXL's
encoder (`DeepFloyd/t5-v1_1-xxl`), tokenized to exactly 120 tokens (padding to max_length,
truncation), with the tokenizer's attention mask as the mask; `t5_embeddings` below does this
with Hugging Face `transformers` (not a dependency of this project: it needs the ~19 GB model and
`pip install transformers sentencepiece`):

    from fora_tools.text_embeddings import t5_embeddings, save
    emb, mask = t5_embeddings(["a small cactus with a happy face in the Sahara desert"], "DeepFloyd/t5-v1_1-xxl")
    save("prompts.npz", emb, mask)

Any other source works if it gives the embeddings the model was trained with.
"""
from typing import List, Tuple

import numpy as np


def save(path: str, embeddings, mask=None) -> None:
    """Writes [N, tokens, width] embeddings (and a [N, tokens] mask) as an uncompressed .npz."""
    emb = np.ascontiguousarray(np.asarray(embeddings, dtype="<f4"))
    if emb.ndim != 3:
        raise ValueError(f"embeddings must be [N, tokens, width], got shape {emb.shape}")
    arrays = {"embeddings": emb}
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        if m.shape != emb.shape[:2]:
            raise ValueError(f"mask must be [N, tokens] = {emb.shape[:2]}, got {m.shape}")
        if not m.any(axis=1).all():
            raise ValueError("every row of the mask needs at least one real token")
        arrays["mask"] = m
    np.savez(path, **arrays)


def load(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """The embeddings and mask of a file written by `save` (all-true mask if it has none)."""
    with np.load(path) as z:
        emb = z["embeddings"].astype(np.float32)
        mask = z["mask"].astype(bool) if "mask" in z.files else np.ones(emb.shape[:2], dtype=bool)
    return emb, mask


def t5_embeddings(prompts: List[str], model: str = "DeepFloyd/t5-v1_1-xxl", max_length: int = 120):
    """PixArt-alpha's caption embeddings of `prompts` with Hugging Face transformers (not installed
    here): T5 encoder last hidden state [N, 120, 4096] and the attention mask [N, 120]."""
    import torch
    from transformers import T5EncoderModel, T5Tokenizer  # noqa: F401 (optional dependency)

    tok = T5Tokenizer.from_pretrained(model)
    enc = T5EncoderModel.from_pretrained(model, torch_dtype=torch.float32).eval()
    batch = tok(prompts, max_length=max_length, padding="max_length", truncation=True, return_attention_mask=True,
                add_special_tokens=True, return_tensors="pt")
    with torch.no_grad():
        out = enc(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
    return out.float().numpy(), batch.attention_mask.numpy().astype(bool)
