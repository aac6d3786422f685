"""``vaekit explore``: a live page to move through a run's latent space, served or exported.

``api`` computes (codes, decodes, scores), ``server`` serves the page in ``page/`` and the API on
loopback, ``export`` writes one self-contained file whose networks run in the page (``page/nn.js``),
``command`` is the CLI.
"""
