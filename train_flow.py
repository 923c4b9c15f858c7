"""Train the normalizing-flow latent prior: see ``python train_flow.py --help``."""
from rls_lightning.cli.entry_points import run  # first: from here on a signal ends the command in one line

if __name__ == "__main__":
    run("train_flow")
