"""The old spelling of the LR-set command: ``python -m rls_lightning.make_lr`` runs
``python -m rls_lightning.cli.make_lr`` (installed: ``rls-make-lr``), with the same options.

The degradations of the sets are ``rls_lightning.lr_sets``; this module holds nothing else.
"""

if __name__ == "__main__":
    import runpy

    runpy.run_module("rls_lightning.cli.make_lr", run_name="__main__")
