"""Speech: French speech to timed text with Whisper.

`transcribe` holds the engines (faster-whisper, openai-whisper) behind one interface, `weights`
finds, joins and verifies model files, `convert` turns the CTranslate2 weights into an
openai-whisper checkpoint, and `repetition` guards against hallucinated loops.
"""
