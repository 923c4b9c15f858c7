"""Flows found by generator: ``train_flow.py`` without ``--output`` writes into the weights cache under the
fingerprint of the generator's mapping network; ``invert.py``, the API and ``weights list`` find it there; the
shipped demo flow is never written by default."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from support.inversion_fixtures import known_latents, toy_generator

from rls_lightning.degradations import downsample_bicubic
from rls_lightning.flow.checkpoint import load_flow
from rls_lightning.image_io import to_uint8
from rls_lightning.stylegan import save_generator

ROOT = Path(__file__).resolve().parents[1]
DEMO_FLOW = ROOT / "checkpoints" / "demo64" / "flow.pt"
TINY_FLOW = ["--num-samples", "1024", "--batch-size", "256", "--val-samples", "256", "--val-every", "2",
             "--stats-samples", "512", "--blocks", "1", "--hidden", "16", "--report", "false",
             "--accelerator", "cpu", "--precision", "32-true"]


def run(script: str, *args: str, torch_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TORCH_HOME": str(torch_home), "RLS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mapping_sha256(G) -> str:
    """SHA-256 over the mapping's parameters, names, shapes and float32 bytes in name order, written out here."""
    digest = hashlib.sha256()
    for name, tensor in sorted(G.mapping.named_parameters(), key=lambda item: item[0]):
        values = tensor.detach().float().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(values.shape)).encode())
        digest.update(values.numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny generator and the flow train_flow.py wrote for it by default, in a private torch hub."""
    folder = tmp_path_factory.mktemp("flows")
    G = toy_generator()
    save_generator(G, folder / "G.pt")
    result = run("train_flow.py", "--generator", str(folder / "G.pt"), "--run-dir", str(folder / "run"), *TINY_FLOW,
                 torch_home=folder / "torch")
    return folder, G, result


def test_train_flow_writes_into_the_cache_under_the_generators_fingerprint(trained):
    folder, G, result = trained
    cache = folder / "torch" / "hub" / "checkpoints" / "rls-flows"
    expected = cache / f"{mapping_sha256(G)[:16]}.pt"
    assert sorted(p.name for p in cache.iterdir()) == sorted([expected.name, expected.with_suffix(".json").name])
    assert f"flow prior written to {expected}" in result.stdout
    assert load_flow(expected, G).generator_fingerprint == mapping_sha256(G)  # refused if trained for another
    described = json.loads(expected.with_suffix(".json").read_text())
    assert described["generator"] == str(folder / "G.pt") and described["fingerprint"] == mapping_sha256(G)


def test_commands_and_the_api_find_the_flow_without_being_told(trained, monkeypatch, capsys):
    from rls_lightning.api.loading import load_models
    from rls_lightning.cli.weights import main as weights_main

    folder, G, _ = trained
    flow_file = next((folder / "torch" / "hub" / "checkpoints" / "rls-flows").glob("*.pt"))
    lr_dir = folder / "lr"
    lr_dir.mkdir()
    with torch.no_grad():
        lr = downsample_bicubic(G.synthesis(known_latents(G, 1, seed=3)), 4).clamp(-1, 1)
    Image.fromarray(to_uint8(lr[0])).save(lr_dir / "face.png")
    result = run("invert.py", "--lr-dir", str(lr_dir), "--generator", str(folder / "G.pt"), "--steps", "2",
                 "--refine-steps", "1", "--keep-best", "false", torch_home=folder / "torch")
    assert f"flow prior: {flow_file} (trained for this generator, from the weights cache)" in result.stderr
    payload = torch.load(folder / "lr_rls+" / "face.pt", weights_only=True)
    bundle = load_flow(flow_file, G)  # sample 0 starts at the flow's mean w (paper sec. 4): RLS moved from there
    assert payload["ws_rls"].shape == (1, G.num_ws, G.w_dim) and not torch.equal(payload["ws_rls"][0, 0], bundle.w_init)

    monkeypatch.setenv("TORCH_HOME", str(folder / "torch"))
    models = load_models(folder / "G.pt")
    assert (models.flow_path, models.flow_source) == (flow_file, "cache")
    assert torch.equal(models.flow.w_init, bundle.w_init)
    assert weights_main(["list"]) == 0
    listed = capsys.readouterr().out
    assert str(folder / "G.pt") in listed and str(flow_file) in listed
    assert weights_main(["list", "--json"]) == 0
    rows = [row for row in json.loads(capsys.readouterr().out) if row["kind"] == "flow"]
    assert [(row["path"], row["generator"]) for row in rows] == [(str(flow_file), str(folder / "G.pt"))]


def test_plain_train_flow_never_writes_the_shipped_demo_flow(tmp_path, monkeypatch):
    before = sha256(DEMO_FLOW)
    result = run("train_flow.py", "--run-dir", str(tmp_path / "run"), *TINY_FLOW, torch_home=tmp_path / "torch")
    assert sha256(DEMO_FLOW) == before
    written = next((tmp_path / "torch" / "hub" / "checkpoints" / "rls-flows").glob("*.pt"))
    assert f"the shipped demo flow {DEMO_FLOW} is left as it is" in result.stdout
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from rls_lightning.api.loading import load_models

    models = load_models()  # the demo generator: its freshly trained flow is the one used now
    assert (models.flow_path, models.flow_source) == (written, "cache")


def test_the_weights_table_is_not_wrapped_without_a_terminal(tmp_path):
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "COLUMNS": "80"}
    result = subprocess.run([sys.executable, "-m", "rls_lightning.weights", "list"], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    from rls_lightning.weights import registry

    names = {entry.name for entry in registry.FILES}
    rows = [line for line in result.stdout.splitlines() if line.split(" ", 1)[0] in names]
    # one line per entry, in the registry's order: no cell wrapped onto a second line, even at COLUMNS=80 (a pipe
    # gets plain rows up to 120 columns, whatever the terminal variable says)
    assert [row.split()[0] for row in rows] == [entry.name for entry in registry.FILES]
    assert max(len(line) for line in result.stdout.splitlines()) <= 120
    assert max(len(line) for line in rows) > 80
