"""The one compiled part: ranked_bm25(), an FTS5 ranking function (src/recording_index/_bm25.c).

Optional: without a C compiler or SQLite's headers the build goes on without it, and searches rank
with FTS5's own bm25() instead (index/ranking.py), only slower on large archives.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("recording_index._bm25", ["src/recording_index/_bm25.c"], libraries=["sqlite3"],
                             optional=True)])
