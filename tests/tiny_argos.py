"""Build a tiny but real Argos Translate package (fr→en) for tests, with no download.

A CTranslate2 Transformer made with ctranslate2's own spec API (one layer, small random weights),
a SentencePiece model trained on a few French and English sentences, and the metadata.json Argos
expects, zipped as an .argosmodel. Its translations are nonsense, but everything around them
(installing, loading, tokenising, decoding) is argostranslate's and CTranslate2's real code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

SENTENCES = [
    "Bonjour, je m'appelle Éric et je suis programmeur.",
    "La coordination des acteurs locaux est essentielle à la prévention de la criminalité.",
    "Nous évaluons les processus de coordination au centre international.",
    "J'ai fait une bonne partie de ma carrière en traduction automatique statistique.",
    "Hello, my name is Eric and I am a programmer.",
    "Coordination of local actors is essential to crime prevention.",
    "We assess coordination processes at the international centre.",
    "I spent a good part of my career in statistical machine translation.",
    "Le 28 février 2018, 120 personnes sont venues à Montréal.",
]


def build_tiny_argos_package(dest: Path, d_model: int = 32, seed: int = 0) -> Path:
    """Write `dest/translate-fr_en-tiny.argosmodel` and return its path."""
    import ctranslate2
    import sentencepiece as spm
    from ctranslate2.specs import model_spec, transformer_spec

    root = dest / "translate-fr_en-tiny"
    (root / "model").mkdir(parents=True, exist_ok=True)
    corpus = dest / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 3), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(root / "sentencepiece"), vocab_size=120,
                                   hard_vocab_limit=False, character_coverage=1.0, minloglevel=2)
    processor = spm.SentencePieceProcessor(model_file=str(root / "sentencepiece.model"))
    vocabulary = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]

    rng = np.random.default_rng(seed)
    spec = transformer_spec.TransformerSpec.from_config(num_layers=1, num_heads=2)
    ffn = d_model * 2
    shapes = {
        "embeddings_0/weight": (len(vocabulary), d_model), "embeddings/weight": (len(vocabulary), d_model),
        "projection/weight": (len(vocabulary), d_model), "projection/bias": (len(vocabulary),),
        "self_attention/linear_0/weight": (3 * d_model, d_model), "self_attention/linear_0/bias": (3 * d_model,),
        "attention/linear_0/weight": (d_model, d_model), "attention/linear_0/bias": (d_model,),
        "attention/linear_1/weight": (2 * d_model, d_model), "attention/linear_1/bias": (2 * d_model,),
        "attention/linear_2/weight": (d_model, d_model), "attention/linear_2/bias": (d_model,),
        "self_attention/linear_1/weight": (d_model, d_model), "self_attention/linear_1/bias": (d_model,),
        "ffn/linear_0/weight": (ffn, d_model), "ffn/linear_0/bias": (ffn,),
        "ffn/linear_1/weight": (d_model, ffn), "ffn/linear_1/bias": (d_model,),
    }

    def fill(layer, scope: str) -> None:
        for name, value in list(layer.__dict__.items()):
            path = f"{scope}/{name}".lstrip("/")
            if isinstance(value, model_spec.LayerSpec):
                fill(value, path)
            elif isinstance(value, list) and value and isinstance(value[0], model_spec.LayerSpec):
                for i, item in enumerate(value):
                    fill(item, f"{path}_{i}")
            elif value is None or (name == "bias" and isinstance(value, str)):
                if name == "gamma":
                    array = np.ones(d_model, np.float32)
                elif name == "beta":
                    array = np.zeros(d_model, np.float32)
                else:
                    shape = next(s for key, s in shapes.items() if path.endswith(key))
                    array = (rng.standard_normal(shape) * 0.2).astype(np.float32)
                setattr(layer, name, array)

    fill(spec, "")
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    spec.validate()
    spec.save(str(root / "model"))
    ctranslate2.Translator(str(root / "model"))  # it loads, or the test set-up fails here

    (root / "metadata.json").write_text(json.dumps({
        "package_version": "0.1", "argos_version": "1.9.0", "from_code": "fr", "from_name": "French",
        "to_code": "en", "to_name": "English", "type": "translate",
    }))
    (root / "README.md").write_text("Tiny random fr→en model for recording-index tests.\n")
    archive = dest / "translate-fr_en-tiny.argosmodel"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(root.rglob("*")):
            zipped.write(file, file.relative_to(dest))
    return archive
