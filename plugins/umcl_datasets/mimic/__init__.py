"""The ``mimic`` dataset plugin: MIMIC-CXR-JPG images, per-study labels and MIMIC-CXR report sections.

The plugin class lives in ``plugin.py`` so that this package imports nothing heavy: report-reading
worker processes import ``reports`` and ``sections`` only.
"""
