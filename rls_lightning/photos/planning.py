"""What a photo may cost and what its restoration can gain, decided before the work: the memory its decoding
needs (from the file's header), which faces the generator can improve, and the scale of the restored photo.

* **Memory.** An 8-bit photo is decoded straight into the uint8 array the pipeline keeps, converted and turned
  (EXIF) a band of rows at a time (``image_io.read_image(..., dtype=np.uint8)``): Pillow's decoded image, 4 bytes
  a pixel, and that array, 3. A 16-bit one still passes through float64. Everything after that works on the
  8-bit photo a band or a window at a time (``detection`` tiles large photos, ``crop`` and ``paste`` read only
  the pixels under their output, ``png_stream`` writes the restored photo a band of rows at a time), so memory
  grows with the photo's pixels, whatever ``--upscale`` is. Each photo is charged ``DECODE_BYTES_PER_PIXEL``
  per pixel against ``--photo-memory`` from its header, and one above it is refused in one line before it is
  decoded.
* **Which faces.** The generator draws ``R`` pixels; a face whose crop is ``n`` pixels wide in the photo is cut
  at ``n' = crop.lr_size_for(n, R)`` and super-resolved ``R / n'`` times. Only factors of at least
  ``--min-factor`` (default 2) are worth it: at factor 1 the generator redraws the face at the resolution it
  already has, softer and not always the same person (issue 22: 21 of 24 faces of real photos were made worse).
* **Scale.** A restored face is pasted ``n u / R`` times larger than the generator drew it (``u``: the photo's
  upscale); beyond ``MAX_FACE_STRETCH`` it is a blurred patch in a sharp frame, so the upscale is lowered to what
  the photo's largest restored face can fill, and to what keeps the restored photo within ``MAX_OUTPUT_PIXELS``.
"""
from __future__ import annotations

import dataclasses
import math

from PIL import Image

# bytes per photo pixel each photo is charged against --photo-memory, from its header. Measured as peak-RSS growth
# (tests/test_photo_memory.py): decoding an 8-bit file takes 7.0 (Pillow's image, 4, and the uint8 photo, 3,
# turned or not; plus about 20 MB of the decoders' own), a 16-bit one (48-bit RGB or 16-bit gray PNG, decoded at
# full precision in float64) 46. The 8-bit charge is what decoding took before issue 6 (23: Pillow's image, a
# turned copy and an RGB copy, numpy's bytes, a float32 array), kept so that the default budget still admits
# exactly the photos --photo-memory's help names (up to 12000x9000): the difference is room for the rest of a
# run, which the budget promises stays within 4 GB. benchmarks/photo_memory.py, a whole invert.py --photos run on
# 12000x9000: 2.41 GB peak (2.43 GB EXIF-turned; 2.45 and 2.35 GB as PNG), where decoding through float32 made it
# 3.64 GB (4.04 GB turned); its largest step is now overview.png, not the decoding.
DECODE_BYTES_PER_PIXEL = 24
DEEP_DECODE_BYTES_PER_PIXEL = 48
DECODE_OVERHEAD_BYTES = 16 * 2 ** 20  # the decoders' own buffers (measured: 9 MB for a 3-megapixel JPEG)
# admits 12000x9000 (108 megapixels, 2.61 GB)
DEFAULT_MEMORY_GB = 2.7
DEFAULT_MIN_FACTOR = 2
MAX_FACE_STRETCH = 2.0
# Pillow's own decompression-bomb limit: a restored photo above it would be refused (or warned about) by Pillow,
# which this project's overview, the web page and most image tools open files with
MAX_OUTPUT_PIXELS = Image.MAX_IMAGE_PIXELS
LARGER_GENERATOR = "ffhq-1024"  # the registry's largest face generator, suggested for faces too large to gain


def decode_bytes(width: int, height: int, deep: bool = False) -> int:
    """The memory decoding a ``width x height`` photo needs (``deep``: more than 8 bits per sample)."""
    per_pixel = DEEP_DECODE_BYTES_PER_PIXEL if deep else DECODE_BYTES_PER_PIXEL
    return per_pixel * int(width) * int(height) + DECODE_OVERHEAD_BYTES


def memory_problem(width: int, height: int, budget_bytes: float, deep: bool = False) -> str | None:
    """Why a photo of this size is refused under ``budget_bytes``, or None."""
    need = decode_bytes(width, height, deep)
    if need <= budget_bytes:
        return None
    return (f"size {width}x{height} needs about {need / 1e9:.2g} GB of memory to decode, more than the "
            f"{budget_bytes / 1e9:.2g} GB allowed (--photo-memory); reduce the photo or raise the limit")


def gain_problem(width: float, lr_size: int, generator_resolution: int, min_factor: int) -> str | None:
    """Why a face whose crop is ``width`` photo pixels wide (cut at ``lr_size``) is left as the plain enlargement,
    in words a user understands; None when the generator can add resolution to it."""
    factor = generator_resolution // lr_size
    larger = (f"; a larger generator such as --generator {LARGER_GENERATOR} would"
              if generator_resolution < 1024 else "")
    start = f"face {width:.0f} px wide; this generator draws {generator_resolution} px: "
    stretch = width / generator_resolution
    if factor < min_factor:
        if factor > 1:
            return start + f"x{factor} only, below --min-factor {min_factor}{larger}"
        pasted = f" (pasted back, its face would be stretched {stretch:.1f}x)" if stretch > MAX_FACE_STRETCH else ""
        return start + f"nothing to gain{pasted}{larger}"
    if stretch > MAX_FACE_STRETCH:
        return start + f"pasted back, its face would be stretched {stretch:.1f}x (at most {MAX_FACE_STRETCH:g}x){larger}"
    return None


@dataclasses.dataclass
class ScaleChoice:
    upscale: int
    reason: str | None  # why it is below the requested one; None when it is not


def choose_upscale(width: int, height: int, requested: int, generator_resolution: int,
                   restored_widths: list[float]) -> ScaleChoice:
    """The restored photo's upscale: ``requested``, lowered so that no restored face (crop widths in photo
    pixels) is pasted more than ``MAX_FACE_STRETCH`` times larger than the generator drew it, and so that the
    photo stays within ``MAX_OUTPUT_PIXELS``; never below 1."""
    upscale, reason = int(requested), None
    if restored_widths:
        widest = max(restored_widths)
        fits = max(1, math.floor(MAX_FACE_STRETCH * generator_resolution / widest + 1e-9))
        if fits < upscale:
            upscale = fits
            reason = (f"at x{requested} its largest restored face ({widest:.0f} px wide) would be "
                      f"{widest * requested:.0f} px, stretched {widest * requested / generator_resolution:.1f}x "
                      f"from the {generator_resolution} px the generator draws (at most {MAX_FACE_STRETCH:g}x)")
    fits = max(1, math.isqrt(int(MAX_OUTPUT_PIXELS // (width * height))) if width * height else 1)
    if fits < upscale:
        reason = (f"x{upscale} would make it {width * upscale}x{height * upscale} px, more than the "
                  f"{MAX_OUTPUT_PIXELS / 1e6:.1f} megapixels Pillow and most viewers open")
        upscale = fits
    return ScaleChoice(upscale, reason)
