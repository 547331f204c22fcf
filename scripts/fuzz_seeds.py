#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fixtures/fuzz/<target>/seed-*) from real files in
the checkout (resources/, tests/fixtures/parity/) and ../shared/reference, plus small files in
formats the repository holds no small real example of (GGUF, tokenizer.model), built here from
the real stories260K vocabulary. Standard library only. The database seeds are kept as they are
(this script leaves them): seed-sinks-heads.db was written by `mechscope sinks --text ...` and
`mechscope heads --n 2 --seq-len 4` on the default model, then VACUUMed with 512-byte pages so
that it fits libFuzzer's input size; seed-empty.db is an empty file (a new database)."""
import json, os, shutil, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "fuzz")
REF = os.path.join(ROOT, "..", "shared", "reference")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


def safetensors(tensors, metadata=None):
    header, blobs, off = {}, b"", 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs += data
        off += len(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blobs


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kv, tensors):
    """kv: list of (key, type, value); tensors: list of (name, dims, ggml_type, bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, t, v in kv:
        out += gguf_string(key) + struct.pack("<I", t)
        if t == 8:
            out += gguf_string(v)
        elif t == 4:
            out += struct.pack("<I", v)
        elif t == 6:
            out += struct.pack("<f", v)
        elif t == 7:
            out += struct.pack("<B", v)
        elif t == 9:
            et, items = v
            out += struct.pack("<IQ", et, len(items))
            for it in items:
                out += gguf_string(it) if et == 8 else struct.pack({6: "<f", 5: "<i"}[et], it)
    data, off = b"", 0
    for name, dims, gt, blob in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gt, off)
        pad = (32 - len(blob) % 32) % 32
        data += blob + b"\0" * pad
        off += len(blob) + pad
    out += b"\0" * ((32 - len(out) % 32) % 32)
    return out + data


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def spm_model(pieces):
    """pieces: (text, score, type); a BPE ModelProto with byte fallback."""
    out = b""
    for text, score, t in pieces:
        p = field(1, 2, text.encode()) + field(2, 5, struct.pack("<f", score)) + field(3, 0, varint(t))
        out += field(1, 2, p)
    trainer = field(3, 0, varint(2)) + field(35, 0, varint(1)) + field(40, 0, varint(0)) + \
        field(41, 0, varint(1)) + field(42, 0, varint(2))
    normalizer = field(1, 2, b"identity") + field(3, 0, varint(1)) + field(4, 0, varint(0))
    return out + field(2, 2, trainer) + field(3, 2, normalizer)


def npy_f32(shape, values):
    """A float32 .npy (format 1.0, header padded to 64 bytes as numpy does)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        "%d," % shape[0] if len(shape) == 1 else ", ".join(str(n) for n in shape))
    header += " " * (64 - (10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<%df" % len(values), *values)


def small_npz():
    """A stored .npz of a 2 -> 3 -> 2 JumpReLU SAE, fixed timestamps (byte-identical reruns)."""
    import io
    import zipfile
    buf = io.BytesIO()
    arrays = {"W_enc": ([2, 3], [1.0] * 6), "W_dec": ([3, 2], [1.0] * 6), "b_enc": ([3], [0.0] * 3),
              "b_dec": ([2], [0.0] * 2), "threshold": ([3], [0.0] * 3)}
    with zipfile.ZipFile(buf, "w") as z:
        for name, (shape, values) in arrays.items():
            z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), npy_f32(shape, values))
    return buf.getvalue()


def main():
    if os.path.isdir(OUT):
        for t in os.listdir(OUT):
            if t == "database":
                continue
            for f in os.listdir(os.path.join(OUT, t)):
                if f.startswith("seed-"):
                    os.remove(os.path.join(OUT, t, f))
    parity = os.path.join(ROOT, "tests", "fixtures", "parity")
    default = os.path.join(ROOT, "resources", "models", "default")
    # model_config: every real config in the repository
    put("model_config", "default.json", read(os.path.join(default, "config.json")))
    for d in sorted(os.listdir(parity)):
        if os.path.isfile(os.path.join(parity, d, "config.json")):
            put("model_config", d + ".json", read(os.path.join(parity, d, "config.json")))
    # safetensors: small real-format files of every dtype, and the smallest parity checkpoint
    f32 = struct.pack("<6f", *[0.5 * i for i in range(6)])
    put("safetensors", "dtypes.safetensors", safetensors([
        ("w", "F32", [2, 3], f32), ("h", "F16", [2], struct.pack("<2e", 1.0, -2.0)),
        ("b", "BF16", [2], b"\x80\x3f\x00\x40"), ("i", "I64", [1], struct.pack("<q", 7)),
        ("m", "BOOL", [3], b"\x01\x00\x01"), ("e", "F32", [0, 4], b"")], {"format": "pt"}))
    smallest = min((os.path.join(parity, d, "model.safetensors") for d in os.listdir(parity)
                    if os.path.isfile(os.path.join(parity, d, "model.safetensors"))), key=os.path.getsize)
    put("safetensors", "parity.safetensors", read(smallest))
    # safetensors_index: the weight map the target's two shards (a, b | c) satisfy
    put("safetensors_index", "index.json", json.dumps({"metadata": {"total_size": 28}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
        "c": "model-00002-of-00002.safetensors"}}, indent=2))
    sharded = os.path.join(parity, "llama-sharded", "model.safetensors.index.json")
    if os.path.isfile(sharded):
        put("safetensors_index", "llama-sharded.json", read(sharded))
    # tokenizer_json / vocab_merges / encode: the bundled default model's real tokenizer
    tj = read(os.path.join(default, "tokenizer.json"))
    put("tokenizer_json", "default.json", tj)
    doc = json.loads(tj)
    put("tokenizer_json", "metaspace.json", json.dumps({
        "model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6, "ab": 7},
                  "merges": ["\u2581 a", "a b"], "byte_fallback": True, "unk_token": "<unk>"},
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                       {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None, "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}]},
        "added_tokens": [{"id": 1, "content": "<s>", "special": True}, {"id": 2, "content": "</s>", "special": True}],
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}}))
    merges = doc["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    put("vocab_merges", "default", json.dumps(doc["model"]["vocab"]) + "\0#version: 0.2\n" + "\n".join(merges) + "\n")
    gpt2 = os.path.join(REF, "gpt2-tokenizer")
    if os.path.isdir(gpt2):
        vocab = json.loads(read(os.path.join(gpt2, "encoder.json")))
        small = {k: v for k, v in vocab.items() if v < 300}
        lines = read(os.path.join(gpt2, "vocab.bpe")).decode().split("\n")[:60]
        put("vocab_merges", "gpt2-head", json.dumps(small) + "\0" + "\n".join(lines) + "\n")
    # GGUF and tokenizer.model from the real stories260K vocabulary (first 64 pieces + bytes)
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    pieces += [("<0x%02X>" % b, 0.0, 6) for b in range(256)]
    pieces += [(p, -float(i), 1) for i, p in enumerate(["\u2581", "e", "t", "a", "\u2581t", "he", "\u2581a",
                                                         "\u2581the", "o", "\u2581s", "nd", "\u2581w"])]
    put("spm_model", "bpe.model", spm_model(pieces))
    toks = [p[0] for p in pieces]
    kv = [("general.architecture", 8, "llama"), ("general.alignment", 4, 32),
          ("llama.embedding_length", 4, 8), ("llama.block_count", 4, 1),
          ("llama.attention.head_count", 4, 2), ("llama.feed_forward_length", 4, 16),
          ("llama.context_length", 4, 32), ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
          ("tokenizer.ggml.model", 8, "llama"), ("tokenizer.ggml.tokens", 9, (8, toks)),
          ("tokenizer.ggml.scores", 9, (6, [p[1] for p in pieces])),
          ("tokenizer.ggml.token_type", 9, (5, [p[2] for p in pieces])),
          ("tokenizer.ggml.bos_token_id", 4, 1), ("tokenizer.ggml.eos_token_id", 4, 2)]
    emb = struct.pack("<%df" % (8 * len(toks)), *[0.01 * (i % 7) for i in range(8 * len(toks))])
    norm = struct.pack("<8f", *[1.0] * 8)
    q8 = struct.pack("<e", 0.5) + bytes(range(32))
    put("gguf", "llama-vocab.gguf", gguf(kv, [("token_embd.weight", [8, len(toks)], 0, emb),
                                              ("output_norm.weight", [8], 0, norm),
                                              ("blk.0.attn_q.weight", [32, 1], 8, q8)]))
    # one block of each block-quantized ggml type: (type id, values, bytes, offsets of its f16
    # fields); the quant bytes count up, the f16 scales are 0.5
    blocks = [(2, 32, 18, [0]), (3, 32, 20, [0, 2]), (6, 32, 22, [0]), (7, 32, 24, [0, 2]),
              (8, 32, 34, [0]), (10, 256, 84, [80, 82]), (11, 256, 110, [108]),
              (12, 256, 144, [0, 2]), (13, 256, 176, [0, 2]), (14, 256, 210, [208])]
    quants = []
    for gt, n, size, halves in blocks:
        blob = bytearray((7 * i + gt) % 256 for i in range(size))
        for at in halves:
            blob[at:at + 2] = struct.pack("<e", 0.5)
        quants.append(("q%d" % gt, [n], gt, bytes(blob)))
    put("gguf", "quant-types.gguf", gguf([("general.architecture", 8, "llama")], quants))
    bpe_kv = [("general.architecture", 8, "gpt2"), ("tokenizer.ggml.model", 8, "gpt2"),
              ("tokenizer.ggml.tokens", 9, (8, ["a", "b", "c", "ab", "\u0120", "\u0120a"])),
              ("tokenizer.ggml.merges", 9, (8, ["a b", "\u0120 a"]))]
    put("gguf", "gpt2-vocab.gguf", gguf(bpe_kv, []))
    # a gemma2 file: the keys of a family beyond llama (sliding window, soft-caps, key_length)
    g2 = [("general.architecture", 8, "gemma2"), ("gemma2.embedding_length", 4, 8),
          ("gemma2.block_count", 4, 2), ("gemma2.attention.head_count", 4, 2),
          ("gemma2.attention.head_count_kv", 4, 1), ("gemma2.attention.key_length", 4, 4),
          ("gemma2.feed_forward_length", 4, 16), ("gemma2.context_length", 4, 32),
          ("gemma2.attention.layer_norm_rms_epsilon", 6, 1e-6), ("gemma2.attention.sliding_window", 4, 4),
          ("gemma2.attn_logit_softcapping", 6, 50.0), ("gemma2.final_logit_softcapping", 6, 30.0)]
    g2_emb = struct.pack("<32f", *[0.01 * (i % 5) for i in range(32)])
    put("gguf", "gemma2-config.gguf", gguf(g2, [("token_embd.weight", [8, 4], 0, g2_emb)]))
    # npy: small real arrays from the parity fixtures
    ref = os.path.join(parity, "gpt2", "reference")
    for name in ["blocks.0.attn.hook_q.npy", "ln_final.hook_scale.npy"]:
        if os.path.isfile(os.path.join(ref, name)):
            put("npy", name, read(os.path.join(ref, name)))
    put("npy", "int64.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }" +
        b" " * 53 + b"\n" + struct.pack("<2q", 1, 2))
    # prompts: first byte 0 = .txt, 1 = .jsonl
    put("prompts", "batch-example.txt", b"\0" + read(os.path.join(ROOT, "resources", "prompts", "batch-example.txt")))
    put("prompts", "sink-check.jsonl", b"\1" + read(os.path.join(ROOT, "resources", "prompts", "sink-check.jsonl")))
    put("prompts", "choices.jsonl", b"\1" + json.dumps({"text": "2+2=", "choices": [" 4", " 5"], "answer": 0}).encode() +
        b"\n" + json.dumps({"tokens": [1, 2, 3], "continuation": " x"}).encode() + b"\n")
    # task_file: first byte 0 = .csv, 1 = .jsonl
    put("task_file", "default-induction.jsonl", b"\1" + read(os.path.join(ROOT, "resources", "tasks", "default-induction.jsonl")))
    put("task_file", "text.csv", b"\0clean,corrupted,answer,distractor\n"
        b"\"When Mary and John went, John gave it to\",\"When Mary and John went, Mary gave it to\", Mary, John\n"
        b"\"[1, 2, 3]\",\"[1, 2, 4]\",[5],[6]\n")
    # batch_job: the example job, pointed at the target's model/ and prompts.txt
    job = read(os.path.join(ROOT, "resources", "jobs", "example.toml")).decode()
    job = job.replace("../models/default", "model").replace("../prompts/batch-example.txt", "prompts.txt")
    job = job.replace("../needles/default-model.jsonl", "needles.jsonl").replace("../tasks/default-induction.jsonl", "task.jsonl")
    put("batch_job", "example.toml", job)
    put("batch_job", "grid.toml", '[[model]]\nname = "m"\npath = "model"\n\n[[prompts]]\nname = "p"\npath = "prompts.txt"\n\n'
        '[[analysis]]\nkind = "sinks"\n\n[[analysis]]\nkind = "heads"\nprompts = ["p"]\n\n[[report]]\nformat = "html"\nout = "r.html"\n')
    # sae: cfg.json NUL sae_weights.safetensors of the SAE fixtures (scripts/reference/make_sae_fixtures.py)
    sae_dir = os.path.join(ROOT, "tests", "fixtures", "sae")
    for case in ["standard", "gated", "jumprelu", "topk_legacy_cfg", "skip_transcoder", "standard_expected_average"]:
        d = os.path.join(sae_dir, case)
        put("sae", case + ".bin", read(os.path.join(d, "cfg.json")) + b"\0" + read(os.path.join(d, "sae_weights.safetensors")))
    # npz: the Gemma Scope fixture (deflated) and a small stored archive (np.savez's layout)
    put("npz", "gemma_scope_deflated.npz", read(os.path.join(sae_dir, "gemma_scope_npz", "params.npz")))
    put("npz", "stored_small.npz", small_npz())
    # encode targets: real texts and invalid UTF-8
    for t in ("encode_bytelevel", "encode_spm"):
        put(t, "text.txt", "Once upon a time, there was a little girl named Lily. 123 caf\u00e9 \u65e5\u672c \U0001F600")
        put(t, "invalid-utf8.bin", b"\xff\xfe\xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \x00 end")
        put(t, "special.txt", "<s> </s> <|endoftext|> <unk> \u2581\u2581 \t\n\r")


if __name__ == "__main__":
    sys.exit(main())
