"""DICOM support for the datasets that ship DICOM (rsna, siim), with pydicom as an optional extra.

``umcl prepare`` only writes paths, so it never needs pydicom; reading the pixels does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from umcl_cli.contracts import UsageError

INSTALL = "pip install umcl[dicom]"


def reader_note() -> str:
    """What dataset.json says about reading the DICOM images on this machine."""
    try:
        import pydicom
    except ImportError:
        return f"images are DICOM; reading them needs pydicom: run `{INSTALL}`"
    return f"images are DICOM; pydicom {pydicom.__version__} is installed"


def read_dicom_gray(path: str | Path) -> np.ndarray:
    """The image of a single-frame DICOM file as a 2-D uint8 array (bright = dense, as on film)."""
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError as exc:
        raise UsageError(f"reading DICOM {path} needs pydicom, which is not installed", f"run `{INSTALL}`") from exc
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except InvalidDicomError as exc:
        raise UsageError(f"{path} is not a DICOM file", "check the file, or re-download it") from exc
    except (RuntimeError, NotImplementedError) as exc:
        raise UsageError(
            f"cannot decode the pixels of {path} ({exc})",
            "install a pixel decoder for its transfer syntax, e.g. `pip install pylibjpeg pylibjpeg-libjpeg`",
        ) from exc
    if pixels.ndim == 3 and int(ds.get("SamplesPerPixel", 1)) == 3:
        pixels = pixels.mean(axis=-1)
    if pixels.ndim != 2:
        raise UsageError(f"{path} holds {pixels.ndim}-D pixel data", "use single-frame grayscale DICOM images")
    # MONOCHROME1 stores dense tissue as low values; invert so every image reads the same way.
    invert = ds.get("PhotometricInterpretation") == "MONOCHROME1"
    if pixels.dtype == np.uint8:
        return 255 - pixels if invert else pixels
    image = pixels.astype(np.float64)
    lo, hi = float(image.min()), float(image.max())
    if hi == lo:
        return np.zeros(image.shape, dtype=np.uint8)
    scaled = (image - lo) * (255.0 / (hi - lo))
    return np.round(255.0 - scaled if invert else scaled).astype(np.uint8)
