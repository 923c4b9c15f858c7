"""Super-resolve a folder of low-resolution faces with RLS / RLS+: see ``python invert.py --help``."""
from rls_lightning.cli.entry_points import run  # first: from here on a signal ends the command in one line

if __name__ == "__main__":
    run("invert")
