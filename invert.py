"""Super-resolve a folder of low-resolution faces with RLS / RLS+: see ``python invert.py --help``."""
from rls_lightning.cli.invert import main

if __name__ == "__main__":
    raise SystemExit(main())
