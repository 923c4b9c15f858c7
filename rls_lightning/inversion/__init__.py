"""RLS and RLS+ inversion: objective terms, presets, the two stage LightningModules, callbacks, the directory job."""
