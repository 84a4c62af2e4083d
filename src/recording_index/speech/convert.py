"""Turn a CTranslate2 Whisper model (model.bin) back into an openai-whisper checkpoint (.pt).

No openai-whisper checkpoint can be downloaded where only PyPI is reachable, yet the reference
implementation must run on the same weights as faster-whisper: so read CTranslate2's binary format,
map its variable names back to openai-whisper's, and split the fused attention projections.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from recording_index.safety import replacing
from recording_index.speech.weights import alignment_heads

# CTranslate2's DataType enum, in order (include/ctranslate2/types.h).
_CT2_DTYPES = [np.float32, np.int8, np.int16, np.int32, np.float16, None]  # None: bfloat16


def read_ct2_model(path: str | Path) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """Read a CTranslate2 model.bin: (spec name, variables by name, aliases)."""
    with open(path, "rb") as handle:
        version = _unpack(handle, "I")
        if version < 5:
            raise ValueError(f"{path}: CTranslate2 binary version {version} is too old to convert")
        spec = _read_string(handle)
        _unpack(handle, "I")  # spec revision
        variables: dict[str, np.ndarray] = {}
        for _ in range(_unpack(handle, "I")):
            name = _read_string(handle)
            shape = [_unpack(handle, "I") for _ in range(_unpack(handle, "B"))]
            type_id = _unpack(handle, "B")
            data = handle.read(_unpack(handle, "I"))
            if type_id >= len(_CT2_DTYPES) or _CT2_DTYPES[type_id] is None:
                raise ValueError(f"{path}: variable {name} has a type ({type_id}) this converter does not read")
            variables[name] = np.frombuffer(data, dtype=_CT2_DTYPES[type_id]).reshape(shape)
        aliases = {}
        for _ in range(_unpack(handle, "I")):
            alias = _read_string(handle)
            aliases[alias] = _read_string(handle)
    return spec, variables, aliases


def _unpack(handle: BinaryIO, fmt: str) -> int:
    return struct.unpack(fmt, handle.read(struct.calcsize(fmt)))[0]


def _read_string(handle: BinaryIO) -> str:
    length = _unpack(handle, "H")
    return handle.read(length)[:-1].decode("utf-8")


def _float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.int8:
        raise ValueError("int8-quantised CTranslate2 models cannot be converted back; use a float16/float32 one")
    return np.asarray(array, dtype=np.float32)


def _count_layers(variables: dict[str, np.ndarray], stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for name in variables if (m := pattern.match(name)))


def ct2_to_openai_state(variables: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """Map CTranslate2 WhisperSpec variables to openai-whisper's (dims, state_dict as numpy)."""
    v = {name: value for name, value in variables.items() if value.ndim > 0}
    n_state = v["encoder/layer_norm/gamma"].shape[0]
    n_audio_layer = _count_layers(v, "encoder")
    n_text_layer = _count_layers(v, "decoder")
    dims = {
        "n_mels": v["encoder/conv1/weight"].shape[1],
        "n_vocab": v["decoder/embeddings/weight"].shape[0],
        "n_audio_ctx": v["encoder/position_encodings/encodings"].shape[0],
        "n_audio_state": n_state,
        "n_audio_head": int(variables["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_text_ctx": v["decoder/position_encodings/encodings"].shape[0],
        "n_text_state": v["decoder/layer_norm/gamma"].shape[0],
        "n_text_head": int(variables["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    state: dict[str, np.ndarray] = {}

    def norm(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = _float(v[f"{src}/gamma"])
        state[f"{dst}.bias"] = _float(v[f"{src}/beta"])

    def linear(dst: str, src: str, bias: bool = True) -> None:
        state[f"{dst}.weight"] = _float(v[f"{src}/weight"])
        if bias:
            state[f"{dst}.bias"] = _float(v[f"{src}/bias"])

    def split(src: str, parts: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return (np.split(_float(v[f"{src}/weight"]), parts), np.split(_float(v[f"{src}/bias"]), parts))

    def attention(dst: str, fused_qkv: str | None, query: str | None, fused_kv: str | None, out: str) -> None:
        # openai-whisper's key projection has no bias; CTranslate2 stores zeros there when fusing.
        if fused_qkv:
            (wq, wk, wv), (bq, _, bv) = split(fused_qkv, 3)
        else:
            wq, bq = _float(v[f"{query}/weight"]), _float(v[f"{query}/bias"])
            (wk, wv), (_, bv) = split(fused_kv, 2)
        state.update({f"{dst}.query.weight": wq, f"{dst}.query.bias": bq, f"{dst}.key.weight": wk,
                      f"{dst}.value.weight": wv, f"{dst}.value.bias": bv})
        linear(f"{dst}.out", out)

    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    state["encoder.positional_embedding"] = _float(v["encoder/position_encodings/encodings"])
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        attention(f"{dst}.attn", f"{src}/self_attention/linear_0", None, None, f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    norm("encoder.ln_post", "encoder/layer_norm")

    state["decoder.token_embedding.weight"] = _float(v["decoder/embeddings/weight"])
    state["decoder.positional_embedding"] = _float(v["decoder/position_encodings/encodings"])
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        attention(f"{dst}.attn", f"{src}/self_attention/linear_0", None, None, f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        attention(f"{dst}.cross_attn", None, f"{src}/attention/linear_0", f"{src}/attention/linear_1",
                  f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")
    return dims, state


def convert_ct2_to_openai(model_dir: str | Path, output: str | Path) -> Path:
    """Write an openai-whisper checkpoint for the CTranslate2 model in `model_dir` (atomically)."""
    import torch

    model_dir, output = Path(model_dir), Path(output)
    spec, variables, _aliases = read_ct2_model(model_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{model_dir}: a {spec} model, not Whisper")
    dims, state = ct2_to_openai_state(variables)
    checkpoint = {
        "dims": dims,
        "model_state_dict": {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in state.items()},
        # Not part of openai-whisper's format: kept so the loader can restore word-timing heads.
        "alignment_heads": alignment_heads(model_dir),
    }
    with replacing(output) as partial:
        torch.save(checkpoint, partial)
    return output
