"""Prints, as JSON, how nibabel and pydicom read the test data they ship (Debian's python3-nibabel
and python3-pydicom): per file the size, spacing, origin and direction in ITK's LPS convention,
or "error" when the library itself refuses the file. Used by ReferenceDataTest.cpp."""
import glob
import json
import os
import sys

out = {}
nib_dir, dcm_dir = sys.argv[1], sys.argv[2]
try:
    import nibabel as nib
    import numpy as np
    for f in sorted(glob.glob(os.path.join(nib_dir, "*"))):
        if not (f.endswith(".nii") or f.endswith(".nii.gz") or f.endswith(".hdr")):
            continue
        try:
            img = nib.load(f)
            np.asanyarray(img.dataobj)  # a header without its .img fails here
            a = img.affine.copy()
            a[:2] *= -1  # RAS -> LPS
            shape = list(img.shape[:3]) + [1] * (3 - len(img.shape[:3]))
            norms = np.linalg.norm(a[:3, :3], axis=0)
            direction = (a[:3, :3] / np.where(norms > 0, norms, 1)).flatten().tolist()
            out[f] = {"size": shape, "spacing": norms.tolist(), "origin": a[:3, 3].tolist(),
                      "direction": direction, "dims": len(img.shape)}
        except Exception as e:  # noqa: BLE001 - any refusal counts
            out[f] = {"error": str(e).splitlines()[0] if str(e) else type(e).__name__}
except ImportError:
    pass
try:
    import pydicom
    for f in sorted(glob.glob(os.path.join(dcm_dir, "*.dcm"))):
        try:
            d = pydicom.dcmread(f)
            d.pixel_array  # noqa: B018 - refuses what pydicom cannot decode
            ps = [1.0, 1.0]
            if "PixelSpacing" in d:
                ps = [float(x) for x in d.PixelSpacing]
            elif "SharedFunctionalGroupsSequence" in d:  # enhanced multi-frame objects
                shared = d.SharedFunctionalGroupsSequence[0]
                if "PixelMeasuresSequence" in shared and "PixelSpacing" in shared.PixelMeasuresSequence[0]:
                    ps = [float(x) for x in shared.PixelMeasuresSequence[0].PixelSpacing]
            entry = {"size": [int(d.Columns), int(d.Rows)], "spacing": [ps[1], ps[0]],
                     "frames": int(getattr(d, "NumberOfFrames", 1) or 1),
                     "samples": int(getattr(d, "SamplesPerPixel", 1)), "sop": str(d.SOPClassUID)}
            if "ImagePositionPatient" in d:
                entry["origin"] = [float(x) for x in d.ImagePositionPatient]
            if "ImageOrientationPatient" in d:
                o = [float(x) for x in d.ImageOrientationPatient]
                entry["row"], entry["column"] = o[:3], o[3:]
            out[f] = entry
        except Exception as e:  # noqa: BLE001
            out[f] = {"error": (str(e).splitlines() or [type(e).__name__])[0]}
except ImportError:
    pass
json.dump(out, sys.stdout)
