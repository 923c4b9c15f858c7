"""Super-resolve a folder of low-resolution faces with RLS / RLS+: see ``python invert.py --help``."""
from rls_lightning.interrupts import for_process, held_while_importing  # first: a signal ends the command in one line


def main() -> int:
    with held_while_importing():  # torch is imported here; a signal meanwhile is raised once it is
        from rls_lightning.cli.invert import main as command

    return command()


if __name__ == "__main__":
    for_process(main)
