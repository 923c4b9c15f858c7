"""The pretrained networks behind FID/KID (Inception-v3), LPIPS (AlexNet) and identity similarity (FaceNet),
built without any download from weight files found by ``weights.find_weights``."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .weights import ALEXNET, FACENET, INCEPTION, find_weights

INCEPTION_SIZE = 299
FACENET_SIZE = 160


class InceptionFeatures(nn.Module):
    """2048-d pool features of torchvision's Inception-v3 for uint8 images ``[N, 3, H, W]`` (torchmetrics' input).

    These are torchvision's ImageNet weights, not the TensorFlow FID Inception of pytorch-fid / torch-fidelity,
    so absolute FID values differ slightly from papers that use those; comparisons within one run are sound.
    """

    num_features = 2048

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
        net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        net.fc = nn.Identity()
        net.aux_logits, net.AuxLogits = False, None
        self.net = net.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        x = (x - torch.tensor([0.485, 0.456, 0.406], device=x.device)[:, None, None]) / torch.tensor(
            [0.229, 0.224, 0.225], device=x.device)[:, None, None]
        return self.net(x)


def load_inception(weights_dir: str | Path | None) -> InceptionFeatures:
    return InceptionFeatures(find_weights(INCEPTION, weights_dir))


def load_lpips(weights_dir: str | Path | None) -> nn.Module:
    """LPIPS (Zhang et al. 2018) v0.1 with AlexNet: the linear heads ship with the lpips package; the AlexNet
    backbone is torchvision's, read from the weights folder instead of being downloaded."""
    import lpips

    path = find_weights(ALEXNET, weights_dir)
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
    return FaceIdentity(find_weights(FACENET, weights_dir))
