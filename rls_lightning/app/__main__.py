"""``python -m rls_lightning.app``: the web page's command, which lives in ``rls_lightning/cli/app.py`` (also
``rls-app``). The command is run by name so that the page's package never imports the command-line one."""
if __name__ == "__main__":
    import runpy

    runpy.run_module("rls_lightning.cli.app", run_name="__main__", alter_sys=True)
