"""The pretrained networks behind FID/KID (the FID Inception), LPIPS (AlexNet) and identity similarity (FaceNet),
built from the registry's verified files (``rls_lightning.weights``: fetched once into the torch hub cache, or
found in ``--weights-dir``; never from a download inside a third-party package)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import ensure, lookup

FACENET_SIZE = 160
FID_FEATURES = 2048

# What FID/KID mean here, written into metrics.json and --help: papers differ in resizing and reference sets.
FID_PROTOCOL = ("torch-fidelity's FID Inception (TF 2015-12-05 weights, file weights-inception-2015-12-05-6726825d"
                ".pth) through torchmetrics, 2048-d pool features; images as uint8 RGB resized to 299x299 by "
                "torch-fidelity's TF1-compatible bilinear resize (no antialiasing, as torch-fidelity and "
                "pytorch-fid); reference set: the HR images of the evaluated pairs")


@contextlib.contextmanager
def _weights_only_loads():
    """torch-fidelity reads its weights with ``torch.load(weights_only=False)``; torch's override variable makes
    that load refuse anything but tensors, so a tampered file cannot run code (it is also hash-verified)."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def fid_inception(weights_path: str | Path) -> nn.Module:
    """torchmetrics' ``NoTrainInceptionV3`` (torch-fidelity's ``FeatureExtractorInceptionV3``) on ``weights_path``:
    uint8 ``[N, 3, H, W]`` in, ``[N, 2048]`` features out, resized exactly as torch-fidelity does."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    with _weights_only_loads():
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(FID_FEATURES)],
                                 feature_extractor_weights_path=str(weights_path), antialias=False)
    net.num_features = FID_FEATURES  # lets torchmetrics size its states without a dummy forward
    return net


def load_inception(weights_dir: str | Path | None) -> nn.Module:
    return fid_inception(ensure(lookup("fid-inception"), weights_dir))


def load_lpips(weights_dir: str | Path | None) -> nn.Module:
    """LPIPS (Zhang et al. 2018) v0.1 with AlexNet: the linear heads ship with the lpips package; the AlexNet
    backbone is torchvision's, from the registry file instead of torchvision's own download."""
    import lpips

    path = ensure(lookup("alexnet"), weights_dir)
    model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    slices = {**{i: 1 for i in range(0, 2)}, **{i: 2 for i in range(2, 5)}, **{i: 3 for i in range(5, 8)},
              **{i: 4 for i in range(8, 10)}, **{i: 5 for i in range(10, 12)}}
    state = torch.load(path, map_location="cpu", weights_only=True)
    backbone = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "features":
            index = int(parts[1])
            backbone[f"slice{slices[index]}.{index}.{parts[2]}"] = value
    model.net.load_state_dict(backbone)
    return model.eval().requires_grad_(False)


class FaceIdentity(nn.Module):
    """Unit-norm FaceNet (InceptionResnetV1, VGGFace2) embeddings of images in [0, 1]. The paper used
    CurricularFace, which has no maintained PyTorch release; identity scores are therefore not comparable."""

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from facenet_pytorch import InceptionResnetV1

        net = InceptionResnetV1(pretrained=None, classify=False)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
        self.net = net.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(FACENET_SIZE, FACENET_SIZE), mode="bilinear", align_corners=False)
        return F.normalize(self.net((x * 255.0 - 127.5) / 128.0), dim=1)


def load_face_identity(weights_dir: str | Path | None) -> FaceIdentity:
    return FaceIdentity(ensure(lookup("facenet-vggface2"), weights_dir))
