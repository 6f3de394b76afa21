"""Converts a SentencePiece `spiece.model` (T5's tokenizer) into a Hugging Face `tokenizer.json`
that the Rust `tokenizers` library, and so DJL's `HuggingFaceTokenizer` in Java, loads.

    python3 -m fora_tools.tokenizer_json --spm t5-v1_1-xxl/spiece.model --out MODEL_DIR/tokenizer.json

The result encodes a text to the same ids as `SentencePieceProcessor.encode(text) + [eos]`
(T5 appends `</s>`), which the tests check on a corpus of varied prompts:
- model: `Unigram` with every piece and its score, in id order, and the unknown piece's id;
- normalizer: the model's own `precompiled_charsmap` (T5: `nmt_nfkc`), then, as SentencePiece's
  `remove_extra_whitespaces` does, runs of spaces collapsed to one and leading and trailing spaces
  dropped;
- pre-tokenizer: `Metaspace` (spaces become `▁`, a `▁` is prepended, words split before each
  `▁`), as SentencePiece's `add_dummy_prefix` and `escape_whitespaces` do;
- post-processor: `</s>` appended by id.

SentencePiece never matches control and unknown pieces (`<pad>`, `</s>`, `<unk>`) from the text:
a prompt containing the characters `</s>` is encoded as those characters. The Unigram model would
match them, so here their vocabulary strings end in `▁`, which no pre-tokenized word can contain
after its first character; their ids are unchanged.

No `sentencepiece` or protobuf package is needed: the model file is read as protobuf wire format.
"""
import argparse
import base64
import json
import struct
from typing import List, Tuple

# sentencepiece_model.proto field numbers and piece types
_PIECES, _NORMALIZER_SPEC, _TRAINER_SPEC = 1, 3, 2
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNMATCHABLE_SUFFIX = "\u2581"


def _varint(b: bytes, i: int) -> Tuple[int, int]:
    out = shift = 0
    while True:
        c = b[i]
        i += 1
        out |= (c & 0x7F) << shift
        if c < 0x80:
            return out, i
        shift += 7


def _fields(b: bytes):
    """(field number, wire type, value) of one protobuf message; length-delimited values as bytes."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, v


class SpmModel:
    """The parts of a SentencePiece ModelProto the conversion needs."""

    def __init__(self, data: bytes):
        self.pieces: List[Tuple[str, float, int]] = []
        self.charsmap = b""
        self.normalizer = ""
        self.add_dummy_prefix = True
        self.remove_extra_whitespaces = True
        self.escape_whitespaces = True
        self.model_type = 1  # UNIGRAM
        self.byte_fallback = False
        self.eos_id = 2
        for field, _, v in _fields(data):
            if field == _PIECES:
                piece, score, kind = "", 0.0, NORMAL
                for f, _, x in _fields(v):
                    if f == 1:
                        piece = x.decode("utf-8")
                    elif f == 2:
                        score = struct.unpack("<f", x)[0]
                    elif f == 3:
                        kind = x
                self.pieces.append((piece, score, kind))
            elif field == _NORMALIZER_SPEC:
                for f, _, x in _fields(v):
                    if f == 1:
                        self.normalizer = x.decode("utf-8")
                    elif f == 2:
                        self.charsmap = x
                    elif f == 3:
                        self.add_dummy_prefix = bool(x)
                    elif f == 4:
                        self.remove_extra_whitespaces = bool(x)
                    elif f == 5:
                        self.escape_whitespaces = bool(x)
            elif field == _TRAINER_SPEC:
                for f, _, x in _fields(v):
                    if f == 3:
                        self.model_type = x
                    elif f == 35:
                        self.byte_fallback = bool(x)
                    elif f == 42:
                        self.eos_id = x - (1 << 64) if x >= 1 << 63 else x  # int32 -1 is a 10-byte varint

    @staticmethod
    def read(path: str) -> "SpmModel":
        with open(path, "rb") as f:
            return SpmModel(f.read())


def convert(spm: SpmModel) -> dict:
    """The tokenizer.json content for a T5-style SentencePiece Unigram model."""
    if spm.model_type != 1:
        raise ValueError(f"only Unigram SentencePiece models are supported (model_type {spm.model_type})")
    if spm.byte_fallback or any(k in (USER_DEFINED, BYTE) for _, _, k in spm.pieces):
        raise ValueError("byte-fallback and user-defined pieces are not supported (T5's model has neither)")
    if not (spm.add_dummy_prefix and spm.remove_extra_whitespaces and spm.escape_whitespaces):
        raise ValueError("only T5's normalizer settings are supported: add_dummy_prefix, remove_extra_whitespaces "
                         "and escape_whitespaces all true")
    unk = [i for i, (_, _, k) in enumerate(spm.pieces) if k == UNKNOWN]
    if len(unk) != 1:
        raise ValueError(f"expected one unknown piece, found {len(unk)}")
    if not 0 <= spm.eos_id < len(spm.pieces) or spm.pieces[spm.eos_id][2] != CONTROL:
        raise ValueError(f"eos id {spm.eos_id} is not a control piece")
    eos = spm.pieces[spm.eos_id][0]
    vocab = [[p if k == NORMAL else p + UNMATCHABLE_SUFFIX, s] for p, s, k in spm.pieces]
    normalizers = [{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
                   {"type": "Replace", "pattern": {"Regex": "^ | $"}, "content": ""}]
    if spm.charsmap:
        normalizers.insert(0, {"type": "Precompiled",
                               "precompiled_charsmap": base64.b64encode(spm.charsmap).decode("ascii")})
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": eos, "type_id": 0}}],
            "special_tokens": {eos: {"id": eos, "ids": [spm.eos_id], "tokens": [eos]}},
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": unk[0], "vocab": vocab, "byte_fallback": False},
    }


def write(spm_path: str, out: str) -> dict:
    tok = convert(SpmModel.read(spm_path))
    with open(out, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    return tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spm", required=True, help="a SentencePiece model, e.g. t5-v1_1-xxl's spiece.model")
    ap.add_argument("--out", required=True, help="the tokenizer.json to write")
    args = ap.parse_args()
    tok = write(args.spm, args.out)
    print(f"wrote {args.out}: {len(tok['model']['vocab'])} pieces")


if __name__ == "__main__":
    main()
