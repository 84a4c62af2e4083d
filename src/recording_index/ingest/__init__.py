"""Ingest: from a catalog entry, a path or a URL to a local media file, probed and normalised.

`sources` locates a recording (local file, direct URL, event page, video site), `discover` reads
an event page's links, `fetch` downloads within bounds, `video` goes through yt-dlp, and `audio`
probes and normalises with ffmpeg (16 kHz mono). This is the only package that touches the network
or decodes media.
"""
