"""Corrections: what people fix in a transcript, kept beside the machine's output and applied over it.

`align` turns an edited subtitle file (or a sentence edited in the web page) into corrections of the
recording's timeline; `layer` applies them at every run (the `correct` stage) and reports those that
no longer fit; `vocabulary` offers the names and terms people corrected as catalog vocabulary.
"""
