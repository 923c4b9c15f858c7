import copy
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from scipy import stats

from rls_lightning.runtime import cpu_has_native_bf16
from rls_lightning.flow.checkpoint import (FlowBundle, FlowCheckpointError, load_flow, mapping_fingerprint,
                                          save_flow)
from rls_lightning.flow.lightning_module import FlowPrior, flow_config_for
from rls_lightning.flow.maf import FlowConfig, LatentFlow
from rls_lightning.flow.pulse import pulse_gaussianize
from rls_lightning.flow.report import gaussianization_report, squared_norm_summary
from rls_lightning.flow.sampling import SeedStream, draw_z, latent_statistics, stream_seed
from rls_lightning.stylegan import Generator, GeneratorConfig, save_generator

ROOT = Path(__file__).resolve().parents[1]


def tiny_generator(seed: int = 0, w_dim: int = 8) -> Generator:
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(img_resolution=8, z_dim=w_dim, w_dim=w_dim, mapping_layers=2,
                                     channel_base=64, channel_max=8)).eval()


def warmed_flow(d: int = 5, seed: int = 0) -> LatentFlow:
    torch.manual_seed(seed)
    flow = LatentFlow(FlowConfig(features=d, hidden_features=16, num_blocks=2)).double()
    flow.set_standardisation(torch.randn(d).double(), torch.rand(d).double() + 0.5)
    flow.train()
    for _ in range(3):  # give the batch-norm layers non-trivial running statistics
        flow.log_prob(torch.randn(64, d, dtype=torch.float64) * 2)
    return flow.eval()


def test_log_prob_is_the_change_of_variables_formula():
    """Eq. 1 with a brute-force Jacobian: log N(F(w)) + log|det dF/dw|."""
    flow = warmed_flow()
    w = torch.randn(4, 5, dtype=torch.float64)
    for row in w:
        jac = torch.autograd.functional.jacobian(lambda x: flow.to_gaussian(x[None])[0], row)
        u = flow.to_gaussian(row[None])[0]
        base = stats.multivariate_normal(np.zeros(5), np.eye(5)).logpdf(u.detach().numpy())
        expected = base + torch.linalg.slogdet(jac)[1]
        assert flow.log_prob(row[None]).item() == pytest.approx(expected.item(), abs=1e-8)


def test_frozen_keep_eq1_and_the_gradient():
    """Inside ``frozen`` the density is still Eq. 1 against a brute-force Jacobian (a lost mask would break
    the triangular Jacobian the MAF's log-determinant assumes), equal to outside, and the class forward returns."""
    flow = warmed_flow()
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    outside = flow.log_prob(w)
    (outside_grad,) = torch.autograd.grad(outside.sum(), w)
    with flow.frozen():
        inside = flow.log_prob(w)
        (inside_grad,) = torch.autograd.grad(inside.sum(), w)
        for row in w.detach():
            jac = torch.autograd.functional.jacobian(lambda x: flow.to_gaussian(x[None])[0], row)
            u = flow.to_gaussian(row[None])[0]
            base = stats.multivariate_normal(np.zeros(5), np.eye(5)).logpdf(u.detach().numpy())
            expected = base + torch.linalg.slogdet(jac)[1]
            assert flow.log_prob(row[None]).item() == pytest.approx(expected.item(), abs=1e-8)
    torch.testing.assert_close(inside, outside, atol=1e-10, rtol=0)
    torch.testing.assert_close(inside_grad, outside_grad, atol=1e-10, rtol=0)
    assert flow._folded is None  # nflows' own pass again after the block


@pytest.mark.parametrize("residual_blocks, batch_norm", [(2, True), (0, True), (1, False)])
def test_the_folded_pass_is_nflows_pass(residual_blocks, batch_norm):
    """The folded pass of ``frozen()`` gives nflows' F(w), log|det J| and gradient on a flow whose every weight is
    perturbed (nflows starts each residual block's last layer at zero, which would hide a wrong residual path),
    and Eq. 1 against a brute-force Jacobian."""
    torch.manual_seed(3)
    d = 6
    flow = LatentFlow(FlowConfig(features=d, hidden_features=12, num_blocks=3, made_residual_blocks=residual_blocks,
                                 batch_norm=batch_norm)).double()
    flow.set_standardisation(torch.randn(d).double(), torch.rand(d).double() + 0.5)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
        for module in flow.modules():
            if hasattr(module, "running_var"):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    flow.eval()
    w = torch.randn(4, d, dtype=torch.float64, requires_grad=True)
    u_ref, logdet_ref = flow.forward_with_logdet(w)
    (grad_ref,) = torch.autograd.grad(flow.log_prob(w).sum(), w)
    with flow.frozen():
        assert flow._folded  # the folded pass runs, not a fallback
        u, logdet = flow.forward_with_logdet(w)
        (grad,) = torch.autograd.grad(flow.log_prob(w).sum(), w)
        jac = torch.autograd.functional.jacobian(lambda x: flow.to_gaussian(x[None])[0], w[0].detach())
        expected = stats.multivariate_normal(np.zeros(d), np.eye(d)).logpdf(u[0].detach().numpy()) \
            + torch.linalg.slogdet(jac)[1].item()
        assert flow.log_prob(w[:1]).item() == pytest.approx(expected, rel=1e-9)
    for ours, nflows in ((u, u_ref), (logdet, logdet_ref), (grad, grad_ref)):
        torch.testing.assert_close(ours, nflows, atol=1e-12, rtol=1e-12)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")
@pytest.mark.parametrize("rows, bf16", [(1, False), (10, False), (80, False), (10, True)])
def test_the_packed_pass_matches_nflows_in_float64(rows, bf16):
    """On the CPU the folded MADE layers run oneDNN products of prepacked W and W^T (in bf16 under bf16 autocast):
    F(w), log|det J| and the gradient of log p(w) must equal nflows' pass of the same flow in float64, to float32
    precision, or to what bf16 products allow."""
    torch.manual_seed(5)
    d = 16
    flow = LatentFlow(FlowConfig(features=d, hidden_features=32, num_blocks=3))
    flow.set_standardisation(torch.randn(d), torch.rand(d) + 0.5)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
        for module in flow.modules():
            if hasattr(module, "running_var"):
                module.running_var.uniform_(0.5, 2.0)
    flow.eval()
    reference = copy.deepcopy(flow).double()
    w = torch.randn(rows, d, requires_grad=True)
    w64 = w.detach().double().requires_grad_(True)
    u_ref, logdet_ref = reference.forward_with_logdet(w64)
    (grad_ref,) = torch.autograd.grad(reference.log_prob(w64).sum(), w64)
    with flow.frozen(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        u, logdet = flow.forward_with_logdet(w)
        (grad,) = torch.autograd.grad(flow.log_prob(w).sum(), w)
        layers = [layer for step in flow._folded_steps() if hasattr(step, "layers") for layer in step.layers]
        dtype = torch.bfloat16 if bf16 else torch.float32
        if not bf16 or cpu_has_native_bf16():  # elsewhere oneDNN may refuse bf16 and F.linear runs instead
            assert layers and all(dtype in layer.packed for layer in layers)  # the oneDNN path ran, every layer
    assert u.dtype == logdet.dtype == grad.dtype == torch.float32
    tolerance = 5e-2 if bf16 else 1e-5  # bf16 keeps 8 bits of mantissa
    for ours, exact in ((u, u_ref), (logdet, logdet_ref), (grad, grad_ref)):
        torch.testing.assert_close(ours.double(), exact, rtol=tolerance, atol=tolerance * exact.abs().max().item())


def test_packed_products_that_disagree_with_f_linear_are_not_used(monkeypatch):
    """The oneDNN entry points are torch-internal: if they ever compute something else, a probe at packing time
    catches it and the layers keep F.linear, so the density stays right."""
    from rls_lightning.flow import frozen

    monkeypatch.setattr(frozen, "_onednn_linear", lambda x, packed, bias: x.new_zeros(x.shape[0], packed.shape[0]))
    flow = warmed_flow(d=8).float()
    w = torch.randn(10, 8)
    outside = flow.log_prob(w)
    with flow.frozen():
        inside = flow.log_prob(w)
        layers = [layer for step in flow._folded_steps() if hasattr(step, "layers") for layer in step.layers]
        assert layers and not any(layer.packed for layer in layers)
    torch.testing.assert_close(inside, outside, rtol=1e-5, atol=1e-5)


def test_a_flow_in_training_mode_is_not_folded():
    flow = warmed_flow().train()
    with flow.frozen():
        assert flow._folded is None


def test_inverse_and_sampling():
    flow = warmed_flow()
    w = torch.randn(6, 5, dtype=torch.float64)
    torch.testing.assert_close(flow.from_gaussian(flow.to_gaussian(w)), w, atol=1e-10, rtol=0)
    samples = flow.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 5) and not samples.requires_grad


def test_log_determinant_stays_float32_under_bf16_autocast():
    flow = warmed_flow(d=8).float()
    w = torch.randn(16, 8)
    full = flow.log_prob(w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        u, logdet = flow.forward_with_logdet(w)
        low = flow.log_prob(w)
    assert u.dtype == torch.float32 and logdet.dtype == torch.float32
    assert full.abs().max() < 100  # warmed batch-norm statistics: a sane density
    assert (low - full).abs().max() < 0.5  # nats; only the MADE products run in bf16


def test_latent_statistics_match_numpy():
    G = tiny_generator()
    mean, std = latent_statistics(G.mapping, G.z_dim, 3000, seed=5, device="cpu", batch_size=700)
    with torch.no_grad():
        w = G.mapping(draw_z(3000, G.z_dim, 5)).double().numpy()
    np.testing.assert_allclose(mean.numpy(), w.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std.numpy(), w.std(0, ddof=1), rtol=1e-4)


def test_seed_stream_splits_steps_evenly_across_ranks(monkeypatch):
    stream = SeedStream(base_seed=100, num_steps=7)
    assert list(stream) == list(range(100, 107)) and len(stream) == 7
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(SeedStream, "_rank_and_world", staticmethod(lambda r=rank: (r, 2)))
        seen.append(list(stream))
        assert len(stream) == 4  # equal step counts, or DDP's all-reduce would wait forever
    assert seen == [[100, 102, 104, 106], [101, 103, 105, 107]]
    assert stream.seed_of(2) == 105  # what a resumed rank 1 continues with at its third step


def _train(G, **kwargs) -> FlowPrior:
    module = FlowPrior(G.mapping, G.z_dim, flow_config_for(G.w_dim, num_blocks=2, hidden_features=32),
                       **{**dict(num_samples=300 * 256, batch_size=256, lr=1e-3, val_samples=2000,
                                 stats_samples=4000), **kwargs})
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        val_check_interval=100, check_val_every_n_epoch=None)
    trainer.fit(module)
    return module


def _gaussian_nll(w: np.ndarray) -> float:
    """NLL of a full-covariance Gaussian fitted to ``w`` itself (an optimistic baseline)."""
    mu, cov = w.mean(0), np.cov(w.T)
    return float(-stats.multivariate_normal(mu, cov).logpdf(w).mean())


@pytest.mark.slow
def test_training_beats_a_fitted_gaussian_and_round_trips(tmp_path):
    G = tiny_generator()
    with torch.no_grad():
        w = G.mapping(draw_z(4000, G.z_dim, seed=99))
    untrained = FlowPrior(G.mapping, G.z_dim, flow_config_for(G.w_dim, num_blocks=2, hidden_features=32))
    untrained.flow.set_standardisation(w.mean(0), w.std(0))
    nll_before = -untrained.flow.eval().log_prob(w).mean().item()

    module = _train(G)
    flow = module.flow.eval()
    nll_after = -flow.log_prob(w).mean().item()
    assert nll_after < nll_before - 1.0
    assert nll_after < _gaussian_nll(w.double().numpy()) - 1.0  # the mapped w are far from Gaussian
    # standardisation and the RLS initialisation: the statistics of the 'stats' stream of mapped samples
    mean, std = latent_statistics(G.mapping, G.z_dim, 4000, stream_seed(0, "stats"), "cpu")
    torch.testing.assert_close(module.w_init, mean)
    torch.testing.assert_close(module.flow.w_std, std)

    save_flow(module.to_bundle({"val_nll": nll_after}), tmp_path / "flow.pt")
    bundle = load_flow(tmp_path / "flow.pt", G)
    torch.testing.assert_close(bundle.flow.log_prob(w), flow.log_prob(w), atol=0, rtol=0)
    torch.testing.assert_close(bundle.w_init, module.w_init)
    assert bundle.generator_fingerprint == mapping_fingerprint(G.mapping)
    assert bundle.training["val_nll"] == nll_after


def test_flow_files_leave_out_the_masks_and_still_load_every_version(tmp_path):
    flow = warmed_flow().float()
    bundle = FlowBundle(flow=flow, w_init=torch.zeros(5), generator_fingerprint="x")
    save_flow(bundle, tmp_path / "flow.pt")
    payload = torch.load(tmp_path / "flow.pt", weights_only=True)
    assert not [k for k in payload["state_dict"] if k.endswith(".mask")]
    w = torch.randn(7, 5)
    torch.testing.assert_close(load_flow(tmp_path / "flow.pt").flow.log_prob(w), flow.log_prob(w), atol=0, rtol=0)
    # a version-1 file, masks included, still loads
    payload.update(version=1, state_dict=flow.state_dict())
    torch.save(payload, tmp_path / "v1.pt")
    torch.testing.assert_close(load_flow(tmp_path / "v1.pt").flow.log_prob(w), flow.log_prob(w), atol=0, rtol=0)
    # a weight that is missing is named
    del payload["state_dict"]["transform._transforms.0.autoregressive_net.initial_layer.weight"]
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(FlowCheckpointError, match="missing.*initial_layer.weight"):
        load_flow(tmp_path / "broken.pt")


def test_default_flow_width_is_the_papers_and_the_demo_flow_file_is_small(tmp_path):
    assert flow_config_for(512).hidden_features == 1024  # paper sec. 4
    demo = LatentFlow(flow_config_for(256))  # the demo model's w_dim
    save_flow(FlowBundle(flow=demo, w_init=torch.zeros(256), generator_fingerprint="x"), tmp_path / "demo.pt")
    assert (tmp_path / "demo.pt").stat().st_size < 30 * 2**20


def test_flow_for_another_generator_is_refused(tmp_path):
    G, other = tiny_generator(0), tiny_generator(1)
    flow = LatentFlow(FlowConfig(features=8, hidden_features=16, num_blocks=1))
    from rls_lightning.flow.checkpoint import FlowBundle
    save_flow(FlowBundle(flow, torch.zeros(8), mapping_fingerprint(G.mapping)), tmp_path / "flow.pt")
    load_flow(tmp_path / "flow.pt", G)
    with pytest.raises(FlowCheckpointError, match=r"flow\.pt: this flow was trained for a different generator"):
        load_flow(tmp_path / "flow.pt", other)
    load_flow(tmp_path / "flow.pt", other, force=True)
    with pytest.raises(FlowCheckpointError, match="w_dim=8"):
        load_flow(tmp_path / "flow.pt", tiny_generator(0, w_dim=4), force=True)
    torch.save({"state_dict": {}}, tmp_path / "not_flow.pt")
    with pytest.raises(FlowCheckpointError, match="not an rls-lightning flow checkpoint"):
        load_flow(tmp_path / "not_flow.pt")


def _brute_force_ks(samples: np.ndarray, cdf) -> float:
    x = np.sort(samples)
    n = len(x)
    f = cdf(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(0, n) / n)))


def test_squared_norm_summary_against_brute_force():
    rng = np.random.default_rng(0)
    d = 64
    chi2_samples = (rng.standard_normal((5000, d)) ** 2).sum(1)
    good = squared_norm_summary(chi2_samples, d)
    assert good["ks_to_chi2"] == pytest.approx(_brute_force_ks(chi2_samples, stats.chi2(d).cdf), abs=1e-12)
    assert good["ks_to_chi2"] < 0.025 and abs(good["mean"] - d) < 1.0 and abs(good["std"] - math.sqrt(2 * d)) < 0.5
    wide = squared_norm_summary(1.5 * chi2_samples, d)
    assert wide["ks_to_chi2"] > 0.3


class _LeakyAffine(torch.nn.Module):
    """w = lrelu_0.2(a * z + b): PULSE's lrelu_5 undoes it exactly, so its squared norms are chi^2_d."""

    def __init__(self, d: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = torch.rand(d) + 0.5, torch.randn(d)

    def forward(self, z):
        return torch.nn.functional.leaky_relu(self.a * z + self.b, 0.2)


def test_report_on_a_case_with_a_known_answer():
    d = 32
    mapping = _LeakyAffine(d)
    flow = LatentFlow(FlowConfig(features=d, hidden_features=8, num_blocks=1, batch_norm=False))
    with torch.no_grad():  # an unfitted flow: F(w) = softplus(0) * w, about 0.69 w, is far from chi^2_d
        for p in flow.parameters():
            p.zero_()
    report = gaussianization_report(mapping, d, flow, num_samples=4000, pulse_stats_samples=20000)
    numbers = report["squared_norms"]
    assert numbers["z"]["ks_to_chi2"] < 0.03
    assert numbers["pulse"]["ks_to_chi2"] < 0.03
    assert numbers["flow"]["ks_to_chi2"] > 0.3
    w = torch.nn.functional.leaky_relu(torch.randn(10, d), 0.2)
    torch.testing.assert_close(pulse_gaussianize(w, torch.zeros(d), torch.ones(d)),
                               torch.where(w > 0, w, 5 * w))


@pytest.mark.slow
def test_train_flow_cli_with_two_ddp_processes(tmp_path):
    G = tiny_generator()
    save_generator(G, tmp_path / "G.pt")
    config = tmp_path / "flow.yaml"
    # 201 steps: an odd count, split 101 + 101 over the two processes
    config.write_text("num_samples: 51456\nbatch_size: 256\nhidden: 32\nblocks: 2\nval_every: 25\n"
                      "val_samples: 2000\nstats_samples: 4000\nlr: 0.001\nreport_samples: 2000\n")
    cmd = [sys.executable, str(ROOT / "train_flow.py"), "--config", str(config), "--generator", str(tmp_path / "G.pt"),
           "--output", str(tmp_path / "out" / "flow.pt"), "--run-dir", str(tmp_path / "run"),
           "--accelerator", "cpu", "--devices", "2"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "flow prior written to" in result.stdout
    bundle = load_flow(tmp_path / "out" / "flow.pt", G)
    assert bundle.training["samples_seen"] == 101 * 2 * 256
    with open(next((tmp_path / "run" / "logs").glob("version_*/metrics.csv"))) as f:
        val = [float(r["val_nll"]) for r in csv.DictReader(f) if r["val_nll"]]
    assert len(val) >= 4 and val[3] < val[0]  # 4 validations in training (then one on the best weights)
    report = json.loads((tmp_path / "out" / "flow-report.json").read_text())
    assert set(report["squared_norms"]) == {"z", "flow", "pulse"}
    # Figure 3's claim, on a trained prior: F(w) is closer to chi^2_d than PULSE's transform
    assert report["squared_norms"]["flow"]["ks_to_chi2"] < report["squared_norms"]["pulse"]["ks_to_chi2"]
    assert (tmp_path / "out" / "flow-report.png").stat().st_size > 10_000


def test_train_flow_cli_reports_missing_generator(tmp_path, capsys):
    from rls_lightning.cli.train_flow import main
    assert main(["--generator", str(tmp_path / "nope.pt")]) == 2
    assert "nope.pt: no such file" in capsys.readouterr().err


def test_train_flow_resumes_where_it_stopped(tmp_path):
    from rls_lightning.cli.train_flow import main

    G = tiny_generator()
    save_generator(G, tmp_path / "G.pt")
    common = ["--generator", str(tmp_path / "G.pt"), "--output", str(tmp_path / "flow.pt"), "--run-dir",
              str(tmp_path / "run"), "--batch-size", "64", "--hidden", "16", "--blocks", "1", "--val-every", "10",
              "--val-samples", "256", "--stats-samples", "1000", "--report", "false", "--accelerator", "cpu"]
    assert main([*common, "--num-samples", str(20 * 64)]) == 0
    assert main([*common, "--num-samples", str(40 * 64), "--resume", "last"]) == 0
    assert load_flow(tmp_path / "flow.pt", G).training["samples_seen"] == 40 * 64
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 40
    logs = sorted((tmp_path / "run" / "logs").glob("version_*/metrics.csv"))
    with open(logs[-1]) as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert min(steps) >= 19  # the second run continued from step 20 instead of starting over


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "train_flow.py ended before its first checkpoint"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.05)


def test_train_flow_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    """SIGINT in a real process: exit 130, one 'interrupted' line, no traceback, no flow file; --resume last
    continues from the step it saved."""
    from support.inversion_fixtures import toy_generator

    from rls_lightning.cli.train_flow import main

    G = toy_generator()
    save_generator(G, tmp_path / "G.pt")
    common = ["--generator", str(tmp_path / "G.pt"), "--output", str(tmp_path / "flow.pt"), "--run-dir",
              str(tmp_path / "run"), "--batch-size", "64", "--hidden", "16", "--blocks", "1", "--val-every", "10",
              "--val-samples", "64", "--stats-samples", "500", "--report", "false", "--accelerator", "cpu",
              "--precision", "32-true"]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # on a shared 2-core machine one thread is several times faster
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        process = subprocess.Popen([sys.executable, str(ROOT / "train_flow.py"), *common,
                                    "--num-samples", str(64 * 10**6)], cwd=tmp_path, stdout=out, stderr=err, env=env)
        try:
            _wait_for(last, process)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 130
        finally:
            process.kill()
    stderr = (tmp_path / "stderr").read_text()
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    step = torch.load(last, weights_only=False)["global_step"]
    assert len(lines) == 1 and f"at step {step}, saved {last}" in lines[0], stderr[-3000:]
    assert lines[0].endswith("rerun with --resume last to continue")
    assert step >= 10 and not (tmp_path / "flow.pt").exists()

    assert main([*common, "--num-samples", str(64 * (step + 5)), "--resume", "last"]) == 0
    assert load_flow(tmp_path / "flow.pt", G).training["samples_seen"] == 64 * (step + 5)
