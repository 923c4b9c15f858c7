"""Train the normalizing-flow latent prior: see ``python train_flow.py --help``."""
import sys

try:
    from rls_lightning.cli.train_flow import main
except KeyboardInterrupt:  # Ctrl-C while torch is still being imported
    print("interrupted before start-up finished", file=sys.stderr)
    raise SystemExit(130) from None

if __name__ == "__main__":
    raise SystemExit(main())
