"""Super-resolve a folder of low-resolution faces with RLS / RLS+: see ``python invert.py --help``."""
import sys

try:
    from rls_lightning.cli.invert import main
except KeyboardInterrupt:  # Ctrl-C while torch is still being imported
    print("interrupted before start-up finished", file=sys.stderr)
    raise SystemExit(130) from None

if __name__ == "__main__":
    raise SystemExit(main())
