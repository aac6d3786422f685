"""Metrics beyond the ELBO: generation quality (FID / IS with an MNIST classifier) and probes of the codes;
the importance-sampled log-likelihood (``likelihood``) and posterior diagnostics (``diagnostics``)."""
