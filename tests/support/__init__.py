"""Helpers of the test suite, not tests themselves: models, files, servers and command runners that several test
files share. pytest collects nothing here (no ``test_*.py``); conftest.py puts the tests folder on ``sys.path``, so
test files import them as ``from support.x import ...``. Test data that is checked in (files other code wrote) stays
in ``tests/fixtures/``; nothing here imports a test module.

* ``app_server``: a free port on 127.0.0.1 and gradio's HTTP API (upload, call, read the answer) for the web page.
* ``checkpoint_writers``: rosinality and NVIDIA checkpoint layouts written independently of the library's readers.
* ``corpus_checkpoints``: hostile generator and flow files (memory bombs, wrong layouts) for the commands.
* ``corpus_commands``: hostile options of train_flow, train_stylegan, inspect_generator and experiments.
* ``corpus_evaluate``: hostile images and options of evaluate and make_lr.
* ``corpus_invert``: hostile cases of invert.py, and its toy models and argument lists used by other tests too.
* ``corpus_photos``: hostile cases of invert.py --photos (GIFs, bombs, photos that exhaust memory).
* ``hostile_corpus``: the corpus machinery: ``Case``, ``Outcome``, ``run_case``, ``run_command``, checksums.
* ``inversion_fixtures``: a toy StyleGAN2, latents it can reach, a flow prior fitted to it, a quiet trainer.
* ``metric_weights``: random weights in the layout of torch-fidelity's FID Inception.
* ``png_writers``: PNGs written byte by byte (16-bit samples, huge blank images, decompression bombs).
* ``reference_stylegan2``: a deliberately different StyleGAN2 forward pass, the oracle of the network tests.
* ``repo_scripts``: loads the repository's scripts/*.py (not a package) as modules.
* ``weights_server``: a local HTTP server with well-behaved, broken and hostile download answers, and its fixtures.
"""
