"""A tiny GGUF model with random weights, written here for the ``llm_gguf`` tests.

No model small enough for a test ships in an installable package (the ones on
PyPI are 90-250 MB and pull in a source build of llama-cpp-python), so the tests
write their own: a 2-layer llama-architecture model (64-wide, ~130k parameters,
~0.5 MB in F32) with a byte-level SentencePiece vocabulary (every byte, every
printable ASCII character, the word boundary), which real llama.cpp loads and
runs. Its weights are random, so what it writes is noise; the grammar makes
that noise a JSON object of the reply's shape, which is what the tests check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_model(path: Path, *, seed: int = 0) -> Path:
    import gguf

    dim, layers, heads, ff = 64, 2, 4, 128
    rng = np.random.default_rng(seed)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256
    pieces = ["\u2581"] + [chr(c) for c in range(33, 127)]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("convmem-test-tiny-random")
    writer.add_context_length(4096)
    writer.add_embedding_length(dim)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(dim // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)

    def random(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    def ones(name: str) -> None:
        writer.add_tensor(name, np.ones(dim, dtype=np.float32))

    random("token_embd.weight", len(tokens), dim)
    ones("output_norm.weight")
    random("output.weight", len(tokens), dim)
    for i in range(layers):
        ones(f"blk.{i}.attn_norm.weight")
        for part in ("q", "k", "v", "output"):
            random(f"blk.{i}.attn_{part}.weight", dim, dim)
        ones(f"blk.{i}.ffn_norm.weight")
        random(f"blk.{i}.ffn_gate.weight", ff, dim)
        random(f"blk.{i}.ffn_down.weight", dim, ff)
        random(f"blk.{i}.ffn_up.weight", ff, dim)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
