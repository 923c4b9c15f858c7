"""The old spelling of the studies' command: ``python -m rls_lightning.experiments`` runs
``python -m rls_lightning.cli.experiments`` (installed: ``rls-experiments``), with the same options."""

if __name__ == "__main__":
    import runpy

    runpy.run_module("rls_lightning.cli.experiments", run_name="__main__", alter_sys=True)
