"""Where the pretrained feature networks of the evaluation come from: a folder the user gives, or the torch cache.

Nothing is downloaded. A missing file makes its metric be skipped with one line naming the file and the folders
searched; the other metrics still run.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch


@dataclasses.dataclass(frozen=True)
class WeightFile:
    metric: str
    filename: str
    source: str  # where users get it


INCEPTION = WeightFile("FID/KID", "inception_v3_google-0cc3c7bd.pth",
                       "torchvision's Inception-v3 ImageNet weights (download.pytorch.org/models/)")
ALEXNET = WeightFile("LPIPS", "alexnet-owt-7be5be79.pth",
                     "torchvision's AlexNet weights (download.pytorch.org/models/)")
FACENET = WeightFile("ID", "20180402-114759-vggface2.pt",
                     "facenet-pytorch's InceptionResnetV1 VGGFace2 weights (its GitHub releases)")
NIQE_PARAMS = WeightFile("NIQE", "niqe_modelparameters.mat",
                         "modelparameters.mat of the authors' NIQE MATLAB release (mu_prisparam, cov_prisparam)")


class MissingWeights(FileNotFoundError):
    def __init__(self, weight: WeightFile, searched: list[Path]) -> None:
        folders = ", ".join(str(p) for p in searched) or "(none)"
        super().__init__(f"{weight.metric} skipped: put {weight.filename} ({weight.source}) in --weights-dir "
                         f"(searched: {folders})")
        self.weight = weight


def search_folders(weights_dir: str | Path | None) -> list[Path]:
    folders = [Path(weights_dir)] if weights_dir else []
    return folders + [Path(torch.hub.get_dir()) / "checkpoints"]


def find_weights(weight: WeightFile, weights_dir: str | Path | None) -> Path:
    """The first ``weight.filename`` found in ``weights_dir`` or the torch hub cache."""
    folders = search_folders(weights_dir)
    for folder in folders:
        candidate = folder / weight.filename
        if candidate.is_file():
            return candidate
    raise MissingWeights(weight, folders)
