"""Train the normalizing-flow latent prior: see ``python train_flow.py --help``."""
from rls_lightning.interrupts import for_process  # first: from here on a signal ends the command in one line


def main() -> int:
    from rls_lightning.cli.train_flow import main as command  # torch is imported here, under the handlers

    return command()


if __name__ == "__main__":
    for_process(main)
