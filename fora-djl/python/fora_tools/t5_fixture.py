"""The tiny T5 text encoder and tokenizer of the `pixart-small` test model, and the references
the Java tests compare with. One command, deterministic:

    cd fora-djl/python && PYTHONHASHSEED=0 /usr/bin/python3 -m fora_tools.t5_fixture

(PYTHONHASHSEED fixes the order TorchScript writes a module's constants in; the weights and every
reference do not depend on it.)

Writes, under fora-djl/src/test/resources/families/:
- `pixart-small/spiece.model`: a SentencePiece Unigram model with T5's settings (nmt_nfkc,
  pad 0, eos 1, unk 2, no bos), trained here on generated prompts (vocabulary 500);
- `pixart-small/tokenizer.json`: converted from it by `fora_tools.tokenizer_json`;
- `pixart-small/text_encoder.pt` + manifest entries: a random 2-layer T5 v1.1 encoder
  (d_model 32 = the model's caption width, 512 embedding rows as T5 pads 32,100 to 32,128);
- `pixart-small-tokenizer-ids.json`: SentencePiece's ids (+ eos) for a corpus of varied prompts;
- `pixart-small-text-reference.npz` (+ `.json`): 10 prompts' ids, mask and embeddings.
"""
import io
import json
import os
import random
import tempfile

import numpy as np
import sentencepiece as spm
import torch

from . import export_t5, t5, text_embeddings

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = os.path.join(HERE, "..", "..", "src", "test", "resources", "families")
VOCAB = 500
CONFIG = t5.T5Config(vocab_size=512, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                     relative_attention_num_buckets=32, relative_attention_max_distance=128)

COLOURS = "red green blue yellow purple orange black white golden silver pink teal".split()
THINGS = ("square circle cat cats dog house tree mountain river city robot flower car bird castle ship lake "
          "forest dragon portrait apple cup chair window street garden moon star cloud").split()
STYLES = ("oil painting|watercolor|photograph|pixel art|3d render|sketch|digital art|anime style|"
          "studio lighting|at sunset|in the rain|high detail|minimalist").split("|")
WORDS = ("a an the two three of in on with and at under over near beside many small large old new "
         "bright dark soft shiny wooden glass stone tall tiny huge happy sleeping running").split()
UNICODE = ["café", "naïve", "Ångström", "façade", "jalapeño", "東京の夜", "猫", "😀", "🐱🐶", "Ελληνικά",
           "русский лес", "ＡＢＣ１２３", "ﬁne", "①②", "e\u0301", "Straße", "½ cup", "™", "→", "مرحبا",
           "한국어", "\u00a0space", "ideo\u3000graphic", "zero\u200bwidth", "tab\there"]
SPECIAL = ["</s>", "<pad>", "<unk>", "\u2581", "\u2581\u2581x", "a</s>b", "<s>", "< / s >"]


def _prompt(r: random.Random) -> str:
    n = r.randint(2, 8)
    words = [r.choice(WORDS + COLOURS + THINGS) for _ in range(n)]
    if r.random() < 0.5:
        words.insert(r.randint(0, len(words)), r.choice(COLOURS) + " " + r.choice(THINGS))
    if r.random() < 0.4:
        words.append(", " + r.choice(STYLES))
    return " ".join(words)


def training_corpus(n: int = 4000, seed: int = 1) -> list:
    r = random.Random(seed)
    out = [_prompt(r) for _ in range(n)]
    out += [f"{r.randint(0, 99999)} {r.choice(THINGS)}s, {r.randint(1, 9)}.{r.randint(0, 99)} m" for _ in range(300)]
    out += [r.choice(UNICODE[:14]) + " " + _prompt(r) for _ in range(200)]
    return out


def test_corpus(seed: int = 7) -> list:
    """At least 1,000 prompts: plain, digits, unicode, whitespace runs, special-token text, long, empty."""
    r = random.Random(seed)
    out = ["", " ", "   ", "\t", "\n", "a", "a red square", "two cats", " a  red   square ", "A RED SQUARE"]
    out += SPECIAL + UNICODE
    for i in range(1100):
        kind = i % 11
        p = _prompt(r)
        if kind == 1:
            p = f"{r.randint(0, 10 ** r.randint(1, 9))} {p} {r.random() * 1000:.3f} {r.randint(1900, 2100)}-0{r.randint(1, 9)}"
        elif kind == 2:
            p = " ".join(w if r.random() < 0.7 else r.choice(UNICODE) for w in p.split())
        elif kind == 3:
            p = "".join(c if c != " " else r.choice([" ", "  ", "   ", "\t", " \n ", "\u3000", "\u00a0"]) for c in p)
            p = r.choice(["", " ", "  ", "\t"]) + p + r.choice(["", " ", "   ", "\n"])
        elif kind == 4:
            words = p.split()
            words.insert(r.randint(0, len(words)), r.choice(SPECIAL))
            p = " ".join(words)
        elif kind == 5:
            p = " ".join(_prompt(r) for _ in range(r.randint(10, 40)))
        elif kind == 6:
            p = p.upper() if r.random() < 0.5 else p.title()
        elif kind == 7:
            p = p.replace(" ", r.choice([",", ".", "-", "!", "?", "'", '"', "(", ")", ":", ";", "/"]))
        elif kind == 8:
            p = "".join(chr(r.randint(0x20, 0x2FFF)) for _ in range(r.randint(1, 30)))
        elif kind == 9:
            p = "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(r.randint(1, 60)))
        out.append(p)
    return out


REFERENCE_PROMPTS = ["a red square", "two cats", "", "a blue circle on a white background, oil painting",
                     "café ＡＢＣ１２３ 東京の夜", "   spaces   everywhere   ", "</s> is text here",
                     "1024 cats and 3.14159 dogs", "a very long prompt that goes on and on past the token limit "
                     "of this tiny model", "tab\tand\nnewline"]


def write_cases(sp, path: str) -> list:
    """SentencePiece's ids (+ eos) of the test corpus, one case per line."""
    cases = [{"text": t, "ids": sp.encode(t) + [1]} for t in test_corpus()]
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"source": "sentencepiece ' + spm.__version__ + ' encode + eos, fora_tools.t5_fixture",\n"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")
    return cases


def make(out: str = FAMILIES) -> None:
    model_dir = os.path.join(out, "pixart-small")
    with tempfile.TemporaryDirectory() as tmp:
        # From an iterator into memory: a file input would record its (temporary) path in the model.
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(training_corpus()), model_writer=model, vocab_size=VOCAB,
                                       model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                       normalization_rule_name="nmt_nfkc", num_threads=1, minloglevel=2)
        spm_path = os.path.join(tmp, "spiece.model")
        with open(spm_path, "wb") as f:
            f.write(model.getvalue())
        torch.manual_seed(0)
        encoder = t5.randomise(t5.T5Encoder(CONFIG), seed=5).eval()
        manifest = export_t5.add(model_dir, encoder, None, spm_path, source="random (fora_tools.t5_fixture)")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, export_t5.SPM))
    cases = write_cases(sp, os.path.join(out, "pixart-small-tokenizer-ids.json"))
    tokens = manifest["text_encoder"]["tokens"]
    ids, mask = export_t5.tokenize(sp, REFERENCE_PROMPTS, tokens)
    with torch.no_grad():
        emb = encoder(ids, mask).numpy().astype(np.float32)
    text_embeddings.save(os.path.join(out, "pixart-small-text-reference.npz"), emb, mask.numpy().astype(bool))
    with open(os.path.join(out, "pixart-small-text-reference.json"), "w", encoding="utf-8") as f:
        json.dump({"prompts": REFERENCE_PROMPTS, "ids": ids.tolist(), "mask": mask.tolist()}, f, ensure_ascii=False,
                  indent=1)
    print(f"wrote {len(cases)} tokenizer cases and {len(REFERENCE_PROMPTS)} reference embeddings")


if __name__ == "__main__":
    make()
