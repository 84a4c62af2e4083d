import numpy as np
import pytest

from recording_index.speech.convert import ct2_to_openai_state, read_ct2_model
from recording_index.speech.weights import embedded_model_path

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


def test_state_dict_has_openai_whispers_names_and_shapes_and_loads_strictly(ct2_model):
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


def test_the_converted_model_computes_what_ctranslate2_computes(ct2_model, cache_dir, sample_mp3):
    """Same weights, same function: the converted encoder's output on the sample's first 30 s equals
    CTranslate2's own (float32 on both sides), and so does the first token the decoder predicts."""
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor

    from recording_index.ingest import audio

    sample_audio = audio.load_audio(audio.normalise(sample_mp3, cache_dir / "audio"))
    dims, state = ct2_to_openai_state(ct2_model[1])
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**dims))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    model.eval()
    mel = FeatureExtractor(feature_size=dims["n_mels"])(sample_audio[:30 * 16000])[:, :3000]
    mel = np.pad(mel, ((0, 0), (0, 3000 - mel.shape[1]))).astype(np.float32)
    with torch.no_grad():
        ours = model.encoder(torch.from_numpy(mel)[None]).numpy()
    reference = ctranslate2.models.Whisper(str(embedded_model_path(cache_dir)), device="cpu", compute_type="float32")
    theirs = np.array(reference.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))
    assert ours.shape == theirs.shape == (1, 1500, 512)
    assert np.abs(ours - theirs).max() < 0.02 * np.abs(theirs).max()
    # The decoder too: after <|startoftranscript|><|fr|><|transcribe|><|notimestamps|>, the same first word.
    prompt = [50258, 50265, 50359, 50363]
    with torch.no_grad():
        logits = model.decoder(torch.tensor([prompt]), torch.from_numpy(ours))
    generated = reference.generate(ctranslate2.StorageView.from_array(theirs), [prompt], max_length=6,
                                   beam_size=1, suppress_blank=False, suppress_tokens=[])
    assert int(logits[0, -1].argmax()) == generated[0].sequences_ids[0][0]
