"""Reads `.safetensors` weight files without the `safetensors` package (Debian does not ship it).

The format: an 8-byte little-endian header length `n`, `n` bytes of JSON mapping each tensor's
name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into the bytes after the
header; an optional `__metadata__` entry holds strings), then the raw little-endian tensors.

`load_state_dict` also reads the sharded form Hugging Face writes for large models: a
`*.index.json` whose `weight_map` names the shard of each tensor (`.safetensors` or `.bin`).
"""
import json
import os
import struct
from typing import Dict

import torch

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
# Headers of real checkpoints are a few hundred KB; anything far larger is not this format.
MAX_HEADER = 100 << 20


def read_header(path: str) -> Dict:
    """The JSON header of a `.safetensors` file (tensor name -> dtype, shape, data_offsets)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a .safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER:
            raise ValueError(f"{path}: header length {n} is not plausible; not a .safetensors file")
        try:
            return json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: the header is not JSON ({e}); not a .safetensors file") from e


def load(path: str) -> Dict[str, torch.Tensor]:
    """Every tensor of one `.safetensors` file, on the CPU, in its stored dtype."""
    header = read_header(path)
    size = os.path.getsize(path)
    (n,) = struct.unpack("<Q", open(path, "rb").read(8))
    base = 8 + n
    out = {}
    with open(path, "rb") as f:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = _DTYPES.get(info.get("dtype"))
            if dtype is None:
                raise ValueError(f"{path}: tensor {name} has unsupported dtype {info.get('dtype')}")
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
            count = 1
            for s in shape:
                count *= s
            elem = torch.tensor([], dtype=dtype).element_size()
            if end - begin != count * elem or base + end > size:
                raise ValueError(f"{path}: tensor {name} {info['dtype']}{shape} does not fit its bytes "
                                 f"[{begin}, {end}) of a {size - base}-byte body")
            f.seek(base + begin)
            data = bytearray(f.read(end - begin))
            # frombuffer reads the machine's byte order; the format is little-endian, as x86 and ARM are.
            t = torch.frombuffer(data, dtype=dtype) if count else torch.empty(0, dtype=dtype)
            out[name] = t.reshape(shape)
    return out


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """A state dict from a `.safetensors` file, a sharded `*.index.json` (or a directory holding
    one), or anything `torch.load` reads (`{'state_dict': ...}` is unwrapped)."""
    if os.path.isdir(path):
        for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json", "model.safetensors",
                     "pytorch_model.bin"):
            if os.path.exists(os.path.join(path, name)):
                return load_state_dict(os.path.join(path, name))
        raise FileNotFoundError(f"{path}: no model.safetensors(.index.json) or pytorch_model.bin(.index.json) in it")
    if path.endswith(".index.json"):
        with open(path) as f:
            weight_map = json.load(f)["weight_map"]
        out = {}
        for shard in sorted(set(weight_map.values())):
            out.update(load_state_dict(os.path.join(os.path.dirname(path), shard)))
        missing = set(weight_map) - set(out)
        if missing:
            raise ValueError(f"{path}: the shards lack {len(missing)} tensors of the index, e.g. {sorted(missing)[:3]}")
        return out
    if path.endswith(".safetensors"):
        return load(path)
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def save(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    """Writes tensors in the format (for tests and fixtures; contiguous CPU copies)."""
    names = {v: k for k, v in _DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        b = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
