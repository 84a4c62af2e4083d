import numpy as np
import pytest

from recording_index.convert import ct2_to_openai_state, read_ct2_model
from recording_index.whisper_models import embedded_model_path

torch = pytest.importorskip("torch")
whisper = pytest.importorskip("whisper")


@pytest.fixture(scope="module")
def ct2_model(cache_dir):
    path = embedded_model_path(cache_dir)
    spec, variables, aliases = read_ct2_model(path / "model.bin")
    return spec, variables, aliases


def test_reads_ctranslate2_whisper_spec(ct2_model):
    spec, variables, aliases = ct2_model
    assert spec == "WhisperSpec"
    assert variables["encoder/conv1/weight"].shape == (512, 80, 3)
    assert aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}


def test_state_dict_matches_openai_whisper_exactly(ct2_model):
    dims, state = ct2_to_openai_state(ct2_model[1])
    assert dims == {"n_mels": 80, "n_vocab": 51865, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8,
                    "n_audio_layer": 6, "n_text_ctx": 448, "n_text_state": 512, "n_text_head": 8, "n_text_layer": 6}
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**dims))
    expected = model.state_dict()
    assert set(state) == set(expected)
    for name, array in state.items():
        assert tuple(array.shape) == tuple(expected[name].shape), name
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)


def test_fused_projections_are_split_in_query_key_value_order(ct2_model):
    variables = ct2_model[1]
    _, state = ct2_to_openai_state(variables)
    fused = variables["encoder/layer_2/self_attention/linear_0/weight"].astype(np.float32)
    np.testing.assert_array_equal(state["encoder.blocks.2.attn.query.weight"], fused[:512])
    np.testing.assert_array_equal(state["encoder.blocks.2.attn.key.weight"], fused[512:1024])
    np.testing.assert_array_equal(state["encoder.blocks.2.attn.value.weight"], fused[1024:])
    kv = variables["decoder/layer_1/attention/linear_1/weight"].astype(np.float32)
    np.testing.assert_array_equal(state["decoder.blocks.1.cross_attn.key.weight"], kv[:512])
    np.testing.assert_array_equal(state["decoder.blocks.1.cross_attn.value.weight"], kv[512:])
    # openai-whisper's key projection has no bias: CTranslate2 stored zeros there.
    bias = variables["encoder/layer_2/self_attention/linear_0/bias"]
    assert not bias[512:1024].any()
