"""Train the normalizing-flow latent prior: see ``python train_flow.py --help``."""
from rls_lightning.cli.train_flow import main

if __name__ == "__main__":
    raise SystemExit(main())
