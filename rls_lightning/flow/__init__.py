"""The normalizing-flow latent prior (paper sections 2.2 and 3.1)."""
