"""The old spelling of the evaluation command: ``python -m rls_lightning.evaluate`` runs
``python -m rls_lightning.cli.evaluate`` (installed: ``rls-evaluate``), with the same options.

The evaluation itself is ``rls_lightning.metrics.evaluator``; this module holds nothing else.
"""

if __name__ == "__main__":
    import runpy

    runpy.run_module("rls_lightning.cli.evaluate", run_name="__main__")
