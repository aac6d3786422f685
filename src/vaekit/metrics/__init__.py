"""Metrics beyond the ELBO: generation quality (FID / IS with an MNIST classifier) and probes of the codes."""
