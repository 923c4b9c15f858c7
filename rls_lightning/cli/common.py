"""Small pieces the training commands (train_flow, train_stylegan) share: precision, hardware checks, resuming,
and stopping cleanly on Ctrl-C / SIGTERM."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import zipfile
from pathlib import Path

import lightning as L
import torch

from ..atomic import atomic_write_path
from ..interrupts import Interrupted, StopRequests
from ..runtime import resolve_precision  # noqa: F401 - the training commands' precision
from .errors import PRECISIONS, UsageError, check_hardware

TRAINING_PRECISIONS = ("auto", *PRECISIONS)


def check_training_hardware(accelerator: str, devices: int, num_nodes: int, precision: str) -> None:
    """``errors.check_hardware`` with 'auto' precision allowed, and MPS asked for only where it exists (Lightning
    would fail with a traceback)."""
    check_hardware(accelerator, devices, num_nodes, precision, precision_choices=TRAINING_PRECISIONS)
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--accelerator mps: MPS is not available on this machine (use cpu or auto)")


# ---------------------------------------------------------------------- --resume

def resume_checkpoint(run_dir: Path, resume: str | None) -> Path | None:
    """``--resume``: None, 'last' (RUN_DIR/checkpoints/last.ckpt) or a path, which must hold a readable Lightning
    checkpoint; checked before any work."""
    if not resume:
        return None
    path = Path(run_dir) / "checkpoints" / "last.ckpt" if resume == "last" else Path(resume)
    where = _resume_label(resume, path)
    if path.is_dir():
        raise UsageError(f"{where}: a folder, not a checkpoint file")
    if not path.is_file():
        hint = " (nothing to resume: start without --resume, or give --run-dir of the run)" if resume == "last" else ""
        raise UsageError(f"{where}: no such checkpoint{hint}")
    contents = _read_checkpoint(where, path)
    if not isinstance(contents, dict) or not {"state_dict", "global_step"} <= set(contents):
        raise UsageError(f"{where}: not a Lightning training checkpoint (no state_dict and global_step)")
    return path


def _resume_label(resume: str, path: Path) -> str:
    """How error lines name the checkpoint: the option as typed, and the file where 'last' hides it."""
    return f"--resume {resume}: {path}" if resume == "last" else f"--resume {path}"


def _read_checkpoint(where: str, path: Path) -> dict:
    if not zipfile.is_zipfile(path):  # what torch.save writes; a truncated file has lost its zip directory
        raise UsageError(f"{where}: not a checkpoint (not a torch zip file; truncated or another format)")
    # mmap: the tensors are not read, so checking even a large checkpoint costs little
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - foreign pickle, damaged archive, ...: all mean "cannot resume from it"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"{where}: cannot be read as a checkpoint ({reason[:200]})") from None


def check_resume_matches(resume: str, path: Path, module: L.LightningModule,
                         same_as: dict[str, str] | None = None) -> None:
    """The checkpoint's tensors have the names and shapes of ``module``'s (it was written with the same
    architecture options); those under each prefix of ``same_as`` must also be equal (frozen inputs such as the
    generator's mapping network, named by the option that chose them)."""
    where = _resume_label(resume, path)
    saved = _read_checkpoint(where, path)["state_dict"]
    here = module.state_dict()
    differing = sorted(k for k in set(saved) | set(here)
                       if k not in saved or k not in here or tuple(saved[k].shape) != tuple(here[k].shape))
    if differing:
        key = differing[0]
        shapes = (f"{tuple(here[key].shape) if key in here else 'absent'} here, "
                  f"{tuple(saved[key].shape) if key in saved else 'absent'} in the checkpoint")
        raise UsageError(f"{where}: written with other architecture options "
                         f"({len(differing)} tensor(s) differ, e.g. {key}: {shapes})")
    for prefix, option in (same_as or {}).items():
        if any(not torch.equal(saved[k], here[k].cpu()) for k in here if k.startswith(prefix)):
            raise UsageError(f"{where}: trained for another {option}")


# ---------------------------------------------------------------------- Ctrl-C and SIGTERM

class StopAtStepBoundary(L.Callback):
    """During ``trainer.fit`` a first SIGINT / SIGTERM only asks to stop: the step in progress finishes, the
    checkpoint that ``--resume last`` reads is written (atomically), and ``Interrupted`` ends the fit. Outside
    the training loop, or on a second signal, ``StopRequests`` raises at once.

    Give it the ``StopRequests`` that the command entered before building the Trainer.
    """

    def __init__(self, stop: StopRequests, checkpoint: Path) -> None:
        self.stop, self.checkpoint = stop, Path(checkpoint)
        self.saved_step: int | None = None  # trainer.global_step of the checkpoint written on the way out
        self._deferral = contextlib.ExitStack()
        self._sigterm = signal.getsignal(signal.SIGTERM)  # StopRequests' handler

    def on_train_start(self, trainer, pl_module) -> None:
        # Lightning has just wrapped SIGTERM in its own handler, which would end the fit with SIGTERMException
        # (a SystemExit) without a checkpoint; ours gives both signals the same path.
        if threading.current_thread() is threading.main_thread() and callable(self._sigterm):
            signal.signal(signal.SIGTERM, self._sigterm)
        self._deferral.enter_context(self.stop.deferred())

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Here the previous step (and its validation, its checkpoints) is complete. Every rank must take the
        # same decision, or one of them would wait forever in the next collective.
        if not trainer.strategy.reduce_boolean_decision(self.stop.requested is not None, all=False):
            return
        if trainer.is_global_zero:
            with atomic_write_path(self.checkpoint) as tmp:  # a second Ctrl-C now keeps the previous last.ckpt
                trainer.save_checkpoint(tmp)
        else:
            trainer.save_checkpoint(self.checkpoint)  # writes nothing off rank 0, but joins its barrier
        self.saved_step = trainer.global_step
        raise Interrupted(self.stop.requested or signal.SIGTERM)

    def on_train_end(self, trainer, pl_module) -> None:
        self._deferral.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._deferral.close()


def report_interruption(err: Interrupted, checkpoint: Path, step: int | None) -> int:
    """Print the one ``interrupted: ...`` line (rank 0 only) and return the exit status, 128 + the signal."""
    from lightning.pytorch.utilities import rank_zero_only

    if step is not None:
        state = f"{err} at step {step}, saved {checkpoint}"
    elif checkpoint.is_file():
        state = f"{err}; the last checkpoint is {checkpoint}"
    else:
        state = f"{err} before the first checkpoint, nothing saved"
    if getattr(rank_zero_only, "rank", 0) == 0:
        advice = "rerun with --resume last to continue" if checkpoint.is_file() else "rerun the command to start"
        print(f"interrupted: {state}; {advice}", file=sys.stderr)
    return err.exit_code
