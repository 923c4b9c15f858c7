"""The official NVIDIA StyleGAN2 generator snapshots our loader reads, as fields of ``registry.PretrainedFile``.

Both families are stylegan2-ada-pytorch pickles (``stylegan.checkpoint_nvidia`` reads them without running code):

* stylegan2-ada-pytorch's own (README "Pretrained networks", https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/
  pretrained/, and the transfer-learning source nets of its ``train.py --resume`` shorthands, lines 294-298);
* the StyleGAN2 models of the stylegan3 repository (README: "StyleGAN2 pre-trained models compatible with this
  codebase", https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/<MODEL>), named
  ``ngc-*`` here; "u" models are trained on unaligned faces (FFHQ-U, MetFaces-U).

The TensorFlow pickles of NVlabs/stylegan2 (``stylegan2-ffhq-config-f.pkl``) are not listed: reading them needs a
conversion (stylegan2-ada-pytorch's legacy.py); ``ffhq-1024`` is the same network, released in the PyTorch format.
No NVIDIA page publishes hashes or sizes. ``ffhq-1024``'s sha256 and size are third-party measurements that agree
across independent download scripts and mirrors; every other file is checked for its size and content at download
(it must parse as a generator of the listed resolution) and its sha256 pinned then.
"""
from __future__ import annotations

_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_TRANSFER = _ADA + "transfer-learning-source-nets/"
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_ADA_LICENCE = ("NVIDIA Source Code License for StyleGAN2 with Adaptive Discriminator Augmentation (ADA): "
                "non-commercial, research or evaluation only")
_NGC_LICENCE = "NVIDIA Source Code License for StyleGAN3: non-commercial, research or evaluation only"
_ADA_README = "URL and description: NVlabs/stylegan2-ada-pytorch README.md, 'Pretrained networks' table"
_ADA_TRAIN = "URL: NVlabs/stylegan2-ada-pytorch train.py --resume shorthand {key!r}; description from the file name"
_NGC_README = ("URL: NVlabs/stylegan3 README.md, StyleGAN2 models at the NGC files URL; resolution and data set from "
               "the file name")
_UNHASHED = "; no hash or size is published: size and content checked at download, sha256 pinned then"
_USES = "invert.py / train_flow.py / experiments / inspect_generator --generator {name}"


def _entry(name: str, filename: str, base: str, resolution: int, licence: str, known: str, description: str,
           framing: str | None = "ffhq", **extra) -> dict:
    return dict(name=name, filename=filename, urls=(base + filename,), resolution=resolution, framing=framing,
                licence=licence, known=known + ("" if "sha256" in extra else _UNHASHED), description=description,
                used_by=_USES.format(name=name), **extra)


GENERATORS: tuple[dict, ...] = (
    _entry("ffhq-1024", "ffhq.pkl", _ADA, 1024, _ADA_LICENCE,
           _ADA_README + "; sha256 and size: third-party pins (download scripts and Hugging Face LFS pointers of "
           "this URL agree), not published by NVIDIA",
           "FFHQ at 1024x1024, trained using original StyleGAN2 (config-f): the paper's generator",
           sha256="a205a346e86a9ddaae702e118097d014b7b8bd719491396a162cca438f2f524c", size=381624121),
    _entry("metfaces-1024", "metfaces.pkl", _ADA, 1024, _ADA_LICENCE, _ADA_README,
           "MetFaces (faces in art) at 1024x1024, transfer learning from FFHQ using ADA"),
    _entry("afhqcat-512", "afhqcat.pkl", _ADA, 512, _ADA_LICENCE, _ADA_README,
           "AFHQ Cat at 512x512, trained from scratch using ADA", framing=None),
    _entry("afhqdog-512", "afhqdog.pkl", _ADA, 512, _ADA_LICENCE, _ADA_README,
           "AFHQ Dog at 512x512, trained from scratch using ADA", framing=None),
    _entry("afhqwild-512", "afhqwild.pkl", _ADA, 512, _ADA_LICENCE, _ADA_README,
           "AFHQ Wild at 512x512, trained from scratch using ADA", framing=None),
    _entry("brecahad-512", "brecahad.pkl", _ADA, 512, _ADA_LICENCE, _ADA_README,
           "BreCaHAD (histology) at 512x512, trained from scratch using ADA", framing=None),
    _entry("ffhq-256", "ffhq-res256-mirror-paper256-noaug.pkl", _TRANSFER, 256, _ADA_LICENCE,
           _ADA_TRAIN.format(key="ffhq256"), "FFHQ at 256x256, x-flips, paper256 config, no ADA"),
    _entry("ffhq-512", "ffhq-res512-mirror-stylegan2-noaug.pkl", _TRANSFER, 512, _ADA_LICENCE,
           _ADA_TRAIN.format(key="ffhq512"), "FFHQ at 512x512, x-flips, StyleGAN2 config, no ADA"),
    _entry("ffhq-1024-noaug", "ffhq-res1024-mirror-stylegan2-noaug.pkl", _TRANSFER, 1024, _ADA_LICENCE,
           _ADA_TRAIN.format(key="ffhq1024"), "FFHQ at 1024x1024, x-flips, StyleGAN2 config, no ADA (ADA paper)"),
    _entry("celebahq-256", "celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl", _TRANSFER, 256,
           _ADA_LICENCE, _ADA_TRAIN.format(key="celebahq256"),
           "CelebA-HQ at 256x256 (CelebA-HQ's own crop, not FFHQ's: pass --framing for photos), ADA",
           framing=None),
    _entry("lsundog-256", "lsundog-res256-paper256-kimg100000-noaug.pkl", _TRANSFER, 256, _ADA_LICENCE,
           _ADA_TRAIN.format(key="lsundog256"), "LSUN Dog at 256x256, paper256 config", framing=None),
    _entry("ngc-ffhq-1024", "stylegan2-ffhq-1024x1024.pkl", _NGC, 1024, _NGC_LICENCE, _NGC_README,
           "FFHQ at 1024x1024 (stylegan3 repository's StyleGAN2)"),
    _entry("ngc-ffhq-512", "stylegan2-ffhq-512x512.pkl", _NGC, 512, _NGC_LICENCE, _NGC_README,
           "FFHQ at 512x512 (stylegan3 repository's StyleGAN2)"),
    _entry("ngc-ffhq-256", "stylegan2-ffhq-256x256.pkl", _NGC, 256, _NGC_LICENCE, _NGC_README,
           "FFHQ at 256x256 (stylegan3 repository's StyleGAN2)"),
    _entry("ngc-ffhqu-1024", "stylegan2-ffhqu-1024x1024.pkl", _NGC, 1024, _NGC_LICENCE, _NGC_README,
           "FFHQ-U (unaligned faces) at 1024x1024", framing=None),
    _entry("ngc-ffhqu-256", "stylegan2-ffhqu-256x256.pkl", _NGC, 256, _NGC_LICENCE, _NGC_README,
           "FFHQ-U (unaligned faces) at 256x256", framing=None),
    _entry("ngc-metfaces-1024", "stylegan2-metfaces-1024x1024.pkl", _NGC, 1024, _NGC_LICENCE, _NGC_README,
           "MetFaces at 1024x1024"),
    _entry("ngc-metfacesu-1024", "stylegan2-metfacesu-1024x1024.pkl", _NGC, 1024, _NGC_LICENCE, _NGC_README,
           "MetFaces-U (unaligned) at 1024x1024", framing=None),
    _entry("ngc-celebahq-256", "stylegan2-celebahq-256x256.pkl", _NGC, 256, _NGC_LICENCE, _NGC_README,
           "CelebA-HQ at 256x256 (CelebA-HQ's crop)", framing=None),
    _entry("ngc-afhqv2-512", "stylegan2-afhqv2-512x512.pkl", _NGC, 512, _NGC_LICENCE, _NGC_README,
           "AFHQv2 (cats, dogs, wild animals) at 512x512", framing=None),
    _entry("ngc-lsundog-256", "stylegan2-lsundog-256x256.pkl", _NGC, 256, _NGC_LICENCE, _NGC_README,
           "LSUN Dog at 256x256", framing=None),
)
