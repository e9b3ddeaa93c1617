"""The pipeline's stages, one module each; Snakemake scripts and the ``nextlat`` CLI call them.

Each module imports only what its stage runs, so the code a rule depends on (derived by
:mod:`nextlat.codedeps` from these imports) is exactly the code that can change its output:
training never depends on report code, and a figure never retrains a model.
"""
