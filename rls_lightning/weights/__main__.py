"""The old spelling of the weights command: ``python -m rls_lightning.weights list | fetch | verify`` runs
``python -m rls_lightning.cli.weights`` (installed: ``rls-weights``), with the same options.
"""

if __name__ == "__main__":
    import runpy

    runpy.run_module("rls_lightning.cli.weights", run_name="__main__")
