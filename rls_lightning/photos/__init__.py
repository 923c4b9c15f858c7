"""Real photographs in: find every face, align it to the generator's framing, cut it at the LR size the inversion
needs, and paste the super-resolved faces back into an enlarged photo. Plain numpy/PIL functions, no Lightning.

Coordinates everywhere: continuous ``(x, y)`` with the origin at the top-left corner of the top-left pixel, pixel
``(i, j)`` centred at ``(j + 0.5, i + 0.5)``; affine maps are ``[2, 3]`` arrays acting on ``[x, y, 1]``.

* ``detection.detect_faces``: MTCNN faces and five landmarks (``Detection``), largest first;
* ``alignment.crop_transform``: the FFHQ recipe's similarity from the landmarks to a framing's crop;
* ``crop.lr_size_for`` and ``crop.extract_crop``: the crop's LR side, and the antialiased cut;
* ``paste.enlarge`` and ``paste.paste_back``: the plain bicubic enlargement, and the faces blended back in.
"""
from .alignment import FRAMINGS, crop_corners_in_photo, crop_transform, crop_width_in_photo
from .crop import extract_crop, lr_size_for, warp_affine
from .detection import DEFAULT_MIN_SCORE, Detection, detect_faces
from .paste import enlarge, feather_mask, paste_back

__all__ = ["DEFAULT_MIN_SCORE", "FRAMINGS", "Detection", "crop_corners_in_photo", "crop_transform",
           "crop_width_in_photo", "detect_faces", "enlarge", "extract_crop", "feather_mask", "lr_size_for",
           "paste_back", "warp_affine"]
