"""The pretrained files the project knows, one entry each, with what is known of them and how it is known.

Metric networks are the files the SR literature's numbers rest on (FID Inception of torch-fidelity /
pytorch-fid, torchvision's AlexNet and VGG16 behind LPIPS, facenet-pytorch's VGGFace2 network); generators are the
official NVIDIA StyleGAN2 / StyleGAN2-ADA snapshots our loader reads (``stylegan.checkpoint_nvidia``).

Verification, strongest first: a full sha256 published or measured by us (``sha256``); the torch-hub convention,
where the file name carries the first hex digits of its sha256 (``hash_prefix``); for files of which no hash is
published anywhere we found, the download's size must equal the server's Content-Length and the file must parse
as the generator the entry describes (resolution), and its sha256 is written beside it (``<file>.sha256``) so
that later changes are caught (``python -m rls_lightning.cli.weights verify``).
"""
from __future__ import annotations

import dataclasses

from .generators import GENERATORS


@dataclasses.dataclass(frozen=True)
class PretrainedFile:
    name: str  # what users type: --generator ffhq-1024, python -m rls_lightning.cli.weights fetch fid-inception
    filename: str  # the name in the cache (and on mirrors)
    urls: tuple[str, ...]  # tried in order
    kind: str  # "metric" or "generator"
    used_by: str
    licence: str
    known: str  # where the URL, hash and size come from
    sha256: str | None = None
    hash_prefix: str | None = None
    size: int | None = None  # bytes
    resolution: int | None = None  # generators: the output size in pixels
    framing: str | None = None  # generators: how the training faces were cropped (photos.alignment.FRAMINGS)
    description: str = ""

    @property
    def verifiable_by_hash(self) -> bool:
        return self.sha256 is not None or self.hash_prefix is not None

    @property
    def verification(self) -> str:
        if self.sha256 is not None:
            return "sha256"
        if self.hash_prefix is not None:
            return f"sha256 prefix {self.hash_prefix}"
        return "size + content, sha256 pinned at first download"


_TORCHVISION = "torchvision's model weights (BSD-3-Clause code; ImageNet-trained weights)"

METRIC_FILES = (
    PretrainedFile(
        name="fid-inception", filename="weights-inception-2015-12-05-6726825d.pth",
        urls=("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
              "weights-inception-2015-12-05-6726825d.pth",
              "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
              "pt_inception-2015-12-05-6726825d.pth"),
        kind="metric", hash_prefix="6726825d", size=95628359,
        used_by="FID and KID (evaluate): torch-fidelity's FeatureExtractorInceptionV3 through torchmetrics",
        licence="Apache-2.0 (TensorFlow's 2015-12-05 Inception graph, converted by torch-fidelity / pytorch-fid)",
        known="URL: torch_fidelity/feature_extractor_inceptionv3.py URL_INCEPTION_V3 (torch-fidelity 0.4.0) and "
              "pytorch_fid/inception.py FID_WEIGHTS_URL; hash prefix: the file name (torch-hub convention, "
              "neither project checks it when downloading); size: third-party pins of this file (several agree); "
              "same state-dict layout as pytorch-fid's pt_inception file of the same hash prefix and size, which "
              "torch-fidelity first re-hosted under that name",
        description="Inception-v3 of the FID paper (TF graph of 2015-12-05), as torch-fidelity and pytorch-fid "
                    "publish it"),
    PretrainedFile(
        name="alexnet", filename="alexnet-owt-7be5be79.pth",
        urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
        kind="metric", hash_prefix="7be5be79", size=244408911,
        used_by="LPIPS (evaluate; lpips' AlexNet backbone, its linear heads ship with the lpips package)",
        licence=_TORCHVISION,
        known="URL: torchvision/models/alexnet.py AlexNet_Weights.IMAGENET1K_V1 (torchvision 0.29.1); hash "
              "prefix: the file name (torch-hub convention, torchvision checks it); size: a recorded Content-Length and "
              "torchvision's _file_size (233.087 MiB)",
        description="torchvision AlexNet, ImageNet"),
    PretrainedFile(
        name="vgg16", filename="vgg16-397923af.pth",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        kind="metric", hash_prefix="397923af", size=553433881,
        used_by="LPIPS-VGG and BRGM's perceptual term (listed for users of those; our brgm preset leaves the "
                "term out and evaluate uses LPIPS-AlexNet)",
        licence=_TORCHVISION,
        known="URL: torchvision/models/vgg.py VGG16_Weights.IMAGENET1K_V1 (torchvision 0.29.1); hash prefix: "
              "the file name (torch-hub convention); size: download logs, agrees with torchvision's _file_size (527.796 "
              "MiB)",
        description="torchvision VGG16, ImageNet"),
    PretrainedFile(
        name="facenet-vggface2", filename="20180402-114759-vggface2.pt",
        urls=("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",),
        kind="metric", sha256="281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b", size=111898327,
        used_by="identity similarity (evaluate: cosine of FaceNet embeddings)",
        licence="MIT (facenet-pytorch); weights from David Sandberg's facenet, MIT, trained on VGGFace2",
        known="URL: facenet_pytorch/models/inception_resnet_v1.py load_weights (facenet-pytorch 2.5.3, which "
              "downloads it unchecked); sha256 and size: third-party pins (independent scripts, one running "
              "sha256sum -c, agree; the size also matches facenet-pytorch's download progress)",
        description="InceptionResnetV1 trained on VGGFace2"),
)

FILES = METRIC_FILES + tuple(PretrainedFile(kind="generator", **fields) for fields in GENERATORS)
BY_NAME = {entry.name: entry for entry in FILES}
GENERATOR_NAMES = tuple(entry.name for entry in FILES if entry.kind == "generator")


class UnknownName(KeyError):
    def __init__(self, name: str, kind: str | None = None) -> None:
        names = [entry.name for entry in FILES if kind is None or entry.kind == kind]  # FILES: patched in tests
        what = f"{kind} name" if kind else "name"
        super().__init__(f"unknown {what} {name!r}; known: {', '.join(names)}")

    def __str__(self) -> str:
        return self.args[0]


def lookup(name: str, kind: str | None = None) -> PretrainedFile:
    entry = next((entry for entry in FILES if entry.name == name), None)
    if entry is None or (kind is not None and entry.kind != kind):
        raise UnknownName(name, kind)
    return entry
