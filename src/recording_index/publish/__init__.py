"""Publish: subtitle cues that follow professional rules (`subtitles`), written as SRT and WebVTT (`files`)."""
