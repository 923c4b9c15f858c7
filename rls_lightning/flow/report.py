"""Gaussianization report (paper section 4, "Quality of the Gaussianization process", Figure 3).

For fresh samples z ~ N(0, I) and w = G.mapping(z), compare the squared norms of
* z itself (the reference: exactly chi^2 with z_dim degrees of freedom),
* F(w), our flow's Gaussianization,
* PULSE's transform: LeakyReLU with negative slope 5 applied to w (undoing the mapping's last activation), then
  standardised per dimension with a mean and std estimated on separate samples,
against the chi^2_d density. Writes ``<prefix>.png`` (histograms) and ``<prefix>.json`` (mean, std and the
Kolmogorov-Smirnov distance to chi^2_d of each).

The command is ``python -m rls_lightning.cli.flow_report`` (``rls-flow-report``); ``python -m
rls_lightning.flow.report``, its old spelling, still runs it. PULSE's transform itself is in ``flow.pulse``.
"""
from __future__ import annotations

import json
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_write_path
from ..no_grad import no_grad
from .pulse import pulse_gaussianize, pulse_statistics

if TYPE_CHECKING:  # torch, scipy and the flow are imported when work starts: --help needs none of them
    import torch

    from .maf import LatentFlow


def squared_norm_summary(squared_norms: np.ndarray, dof: int) -> dict:
    """Mean, std and KS distance of ``squared_norms`` to chi^2 with ``dof`` degrees of freedom."""
    from scipy import stats

    squared_norms = np.asarray(squared_norms, dtype=np.float64)
    return {
        "mean": float(squared_norms.mean()),
        "std": float(squared_norms.std(ddof=1)),
        "ks_to_chi2": float(stats.kstest(squared_norms, "chi2", args=(dof,)).statistic),
        "chi2_mean": float(dof),
        "chi2_std": float(np.sqrt(2.0 * dof)),
    }


@no_grad
def gaussianization_report(mapping: torch.nn.Module, z_dim: int, flow: LatentFlow, *, num_samples: int = 5000,
                           pulse_stats_samples: int = 100_000, seed: int = 0,
                           device: torch.device | str = "cpu", batch_size: int = 1000) -> dict:
    """Squared norms of z, F(w) and PULSE(w) for ``num_samples`` fresh samples, summarised against chi^2."""
    import torch

    from .sampling import draw_z, stream_seed

    flow = flow.eval().to(device)
    mapping = mapping.eval().to(device)
    d = flow.features
    pulse_mean, pulse_std = pulse_statistics(mapping, z_dim, pulse_stats_samples,
                                             stream_seed(seed, "pulse-stats"), device)
    z_all = draw_z(num_samples, z_dim, stream_seed(seed, "report"))
    norms = {"z": [], "flow": [], "pulse": []}
    for z in z_all.split(batch_size):
        z = z.to(device)
        w = mapping(z).float()
        norms["z"].append(z.square().sum(1).cpu())
        norms["flow"].append(flow.to_gaussian(w).square().sum(1).cpu())
        norms["pulse"].append(pulse_gaussianize(w, pulse_mean.to(device), pulse_std.to(device)).square().sum(1).cpu())
    squared = {k: torch.cat(v).double().numpy() for k, v in norms.items()}
    return {
        "num_samples": num_samples,
        "w_dim": d,
        "z_dim": z_dim,
        "pulse_stats_samples": pulse_stats_samples,
        "squared_norms": {"z": squared_norm_summary(squared["z"], z_dim),
                          "flow": squared_norm_summary(squared["flow"], d),
                          "pulse": squared_norm_summary(squared["pulse"], d)},
        "_arrays": squared,
    }


def write_report(report: dict, prefix: str | Path) -> tuple[Path, Path]:
    """``<prefix>.json`` (numbers) and ``<prefix>.png`` (histograms against the chi^2_d density)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    prefix = Path(prefix)
    arrays = report["_arrays"]
    numbers = {k: v for k, v in report.items() if k != "_arrays"}
    json_path, png_path = prefix.with_suffix(".json"), prefix.with_suffix(".png")
    with atomic_write_path(json_path) as tmp:
        tmp.write_text(json.dumps(numbers, indent=2))

    d = report["w_dim"]
    summary = report["squared_norms"]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    upper = np.percentile(np.concatenate(list(arrays.values())), 99.5)
    bins = np.linspace(0, upper, int(np.clip(report['num_samples'] // 40, 30, 120)))
    labels = {"z": f"z ~ N(0, I) (z_dim={report['z_dim']})", "flow": "F(w), our MAF",
              "pulse": "PULSE: lrelu_5(w), standardised"}
    for key in ("z", "flow", "pulse"):
        ax.hist(arrays[key], bins=bins, density=True, alpha=0.45,
                label=f"{labels[key]}  KS={summary[key]['ks_to_chi2']:.3f}")
    grid = np.linspace(max(bins[0], 1e-6), bins[-1], 400)
    ax.plot(grid, stats.chi2.pdf(grid, d), "k-", lw=1.5, label=rf"$\chi^2_{{{d}}}$ density")
    ax.set_xlabel("squared norm")
    ax.set_ylabel("density")
    ax.set_title(f"Gaussianization of W ({report['num_samples']} samples)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return json_path, png_path


if __name__ == "__main__":  # the old spelling of the command
    import runpy

    runpy.run_module("rls_lightning.cli.flow_report", run_name="__main__")
