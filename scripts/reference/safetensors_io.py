"""Minimal, dependency-free reader/writer for the safetensors file format.

Format (as documented by the safetensors project):
  * 8 bytes: little-endian unsigned 64-bit length N of the JSON header;
  * N bytes: UTF-8 JSON object.  Each tensor entry maps its name to
    {"dtype": "F32" | "BF16" | ..., "shape": [...], "data_offsets": [begin, end]}
    with offsets relative to the start of the data section.  An optional
    "__metadata__" entry holds a str -> str map.  The header is padded with
    ASCII spaces so that the data section starts on an 8-byte boundary;
  * the data section: raw little-endian, row-major tensor bytes.

Sharded checkpoints add `<name>.safetensors.index.json`:
    {"metadata": {"total_size": <bytes of tensor data>},
     "weight_map": {tensor name: shard file name}}

Only torch and numpy are used; BF16 is handled through torch.bfloat16.
"""

import json
import os
import struct

import numpy as np
import torch

_DTYPE_CODES = {
    torch.float32: ("F32", 4),
    torch.bfloat16: ("BF16", 2),
    torch.float16: ("F16", 2),
    torch.float64: ("F64", 8),
}
_CODE_TO_TORCH = {code: dt for dt, (code, _) in _DTYPE_CODES.items()}


def _tensor_bytes(t):
    """Raw little-endian bytes of a tensor in row-major order."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        # Reinterpret the 16-bit payload; numpy has no bfloat16.
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    np_dtype = {torch.float32: "<f4", torch.float16: "<f2", torch.float64: "<f8"}[t.dtype]
    return t.numpy().astype(np_dtype).tobytes()


def encode(tensors, metadata=None):
    """Serialise an ordered {name: tensor} mapping into safetensors bytes.

    Tensors are laid out in the order of `sorted(names)` so that the output is a
    pure function of the inputs (running twice gives identical bytes)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        code, _ = _DTYPE_CODES[t.dtype]
        data = _tensor_bytes(t)
        header[name] = {
            "dtype": code,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (8 - len(text) % 8) % 8
    text += b" " * pad
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write_file(path, tensors, metadata=None):
    with open(path, "wb") as f:
        f.write(encode(tensors, metadata))


def decode(blob):
    """Parse safetensors bytes into {name: torch tensor} (original dtype)."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        shape = info["shape"]
        code = info["dtype"]
        if code == "BF16":
            arr = np.frombuffer(raw, dtype="<i2").copy()
            t = torch.from_numpy(arr).view(torch.bfloat16)
        else:
            np_dtype = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}[code]
            t = torch.from_numpy(np.frombuffer(raw, dtype=np_dtype).copy())
        out[name] = t.reshape(shape)
    return out


def read_file(path):
    with open(path, "rb") as f:
        return decode(f.read())


def read_checkpoint(model_dir):
    """Read every tensor of an HF checkpoint folder (single file or sharded)."""
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_file(single)
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        part = read_file(os.path.join(model_dir, shard))
        for name, t in part.items():
            if weight_map.get(name) != shard:
                raise ValueError(f"{name} found in {shard} but index says {weight_map.get(name)}")
            out[name] = t
    missing = set(weight_map) - set(out)
    if missing:
        raise ValueError(f"tensors listed in the index but absent: {sorted(missing)}")
    return out
