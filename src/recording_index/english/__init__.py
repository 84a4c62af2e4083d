"""English: the French transcript's English, sentence by sentence, at the French timestamps.

`translate` runs Argos Translate (or Whisper's own speech translation), and `sentences` merges
segments into sentences for the translator and shares the English back out to the segments.
"""
