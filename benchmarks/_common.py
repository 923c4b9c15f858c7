"""What every benchmark script shares: the machine's description, timing, peak memory, a matmul roofline, one JSON
line of output. (Scripts run as ``python benchmarks/<name>.py``, so this module is importable as ``_common``.)"""
from __future__ import annotations

import datetime
import json
import platform
import resource
import subprocess
import time
from pathlib import Path
from typing import Callable

import torch

from rls_lightning.flow.lightning_module import flow_config_for
from rls_lightning.flow.maf import LatentFlow
from rls_lightning.stylegan import Generator, GeneratorConfig

# The networks benchmarked: config-f (any resolution) and the embedded demo model's size.
GENERATOR_PRESETS = {
    "config-f": dict(channel_base=32768, channel_max=512, z_dim=512, w_dim=512),
    "demo": dict(channel_base=4096, channel_max=256, z_dim=256, w_dim=256),
}


def generator_config(preset: str, resolution: int) -> GeneratorConfig:
    return GeneratorConfig(img_resolution=resolution, **GENERATOR_PRESETS[preset])


def untrained_flow(G: Generator, hidden_features: int | None = None) -> LatentFlow:
    """A flow of the paper's size (sec. 4; MADE width 2 x w_dim unless given) that is finite on mapped w:
    standardised with their statistics, and nflows' batch-norm running variances set to 1 (nflows starts them at
    0, which makes an untrained flow's eval-mode density -inf)."""
    flow = LatentFlow(flow_config_for(G.w_dim, hidden_features=hidden_features)).eval()
    with torch.no_grad():
        w = G.mapping(torch.randn(10_000, G.z_dim, generator=torch.Generator().manual_seed(0)))
    flow.set_standardisation(w.mean(0), w.std(0))
    for module in flow.modules():
        if hasattr(module, "running_var"):
            module.running_var.fill_(1.0)
    return flow


def sync(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Mean wall time of ``fn`` over ``repeats`` calls after ``warmup`` calls (allocations, cuDNN autotuning)."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float:
    """GPU: peak allocated since the last reset. CPU: the process's peak resident set (never reset)."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def matmul_flops(device: torch.device, dtype: torch.dtype, size: int = 4096, repeats: int = 10) -> float:
    """FLOP/s of a square matmul measured now, on the same device: the practical ceiling the generator is compared
    against (float32 keeps PyTorch's default, i.e. no TF32)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = time_call(lambda: a @ b, device, repeats, warmup=2)
    return 2 * size**3 / seconds


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _cpu_flags() -> list[str]:
    """The CPU features that decide our speed (AVX2 only vs AVX512 with native bf16, AMX)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    except OSError:
        pass
    return []


def machine(device: torch.device) -> dict:
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "cpu_flags": _cpu_flags(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "commit": _commit(),
        "date": datetime.date.today().isoformat(),
    }


def emit(benchmark: str, device: torch.device, **fields) -> None:
    """Print the benchmark's one JSON line."""
    print(json.dumps({"benchmark": benchmark, **machine(device), **fields}), flush=True)
