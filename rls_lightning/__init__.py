"""rls-lightning: RLS / RLS+ super-resolution by regularized StyleGAN2 latent search (Gheisari & Genovesio)."""

__version__ = "0.1.0"
