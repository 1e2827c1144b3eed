"""FreeSurfer / SynthSeg label codes, and which MUSE ROIs a label map can express.

The label maps follow the FreeSurfer classification (``FreeSurferColorLUT``): SynthSeg
segments the 33 structures of :data:`SYNTHSEG_LABELS`; its training label maps carry a few
more FreeSurfer codes (:data:`EXTRA_LABELS`) and extra-cerebral tissue classes (codes
502-530, :data:`EXTRACEREBRAL_CODES`) that are not brain ROIs.

MUSE ROIs map to codes as follows (``L``/``R`` -> left/right code):

==============================  ============  =============================================
MUSE ROI                        code L / R    note
==============================  ============  =============================================
LateralVentricle                4 / 43
InfLatVentricle                 5 / 44
CerebellumExterior              8 / 47        cerebellum cortex (vermis lobules not split)
Cerebellum_WM                   7 / 46
ThalamusProper                  10 / 49
Caudate                         11 / 50
Putamen                         12 / 51
Pallidum                        13 / 52
Hippocampus                     17 / 53
Amygdala                        18 / 54
AccumbensArea                   26 / 58
VentralDC                       28 / 60
3rdVentricle, 4thVentricle      14, 15
BrainStem                       16
Cortex_{L,R} (composite)        3 / 42        sum of the hemisphere's cortical MUSE GM ROIs
CerebralWM_{L,R} (composite)    2 / 41        sum of lobar WM, fornix and internal capsule
==============================  ============  =============================================

The cortical GM ROIs (frontal ... cingulate, entorhinal, parahippocampal) and the lobar WM
ROIs have no code of their own: the label maps only know the whole cortex / cerebral WM of a
hemisphere, named by the composite ROIs ``Cortex_L`` ... (:func:`muse_components` lists their
MUSE parts). BasalForebrain, CorpusCallosum and the vermal lobules cannot be expressed.
"""

from __future__ import annotations

import functools

from roisynth.datasets.muse import canonical_roi_name, muse_rois

SYNTHSEG_LABELS: dict[int, str] = {
    0: "background",
    2: "left cerebral white matter",
    3: "left cerebral cortex",
    4: "left lateral ventricle",
    5: "left inferior lateral ventricle",
    7: "left cerebellum white matter",
    8: "left cerebellum cortex",
    10: "left thalamus",
    11: "left caudate",
    12: "left putamen",
    13: "left pallidum",
    14: "3rd ventricle",
    15: "4th ventricle",
    16: "brain-stem",
    17: "left hippocampus",
    18: "left amygdala",
    24: "CSF",
    26: "left accumbens area",
    28: "left ventral DC",
    41: "right cerebral white matter",
    42: "right cerebral cortex",
    43: "right lateral ventricle",
    44: "right inferior lateral ventricle",
    46: "right cerebellum white matter",
    47: "right cerebellum cortex",
    49: "right thalamus",
    50: "right caudate",
    51: "right putamen",
    52: "right pallidum",
    53: "right hippocampus",
    54: "right amygdala",
    58: "right accumbens area",
    60: "right ventral DC",
}
"""The structures SynthSeg segments (its ``labels_table.txt``), code -> name."""

EXTRA_LABELS: dict[int, str] = {
    25: "left lesion",
    30: "left vessel",
    57: "right lesion",
    62: "right vessel",
    72: "5th ventricle",
    85: "optic chiasm",
}
"""Further FreeSurfer codes found in SynthSeg's training label maps."""

EXTRACEREBRAL_CODES: tuple[int, ...] = (502, 506, 507, 508, 509, 511, 512, 514, 515, 516, 530)
"""Extra-cerebral tissue classes of SynthSeg's training label maps (skull, scalp, ...)."""

CSF: int = 24
"""The (extra-ventricular) CSF code."""

CSF_CODES: tuple[int, ...] = (CSF,)
"""Default CSF codes for mask editing: ROIs grow into and shrink to these."""

_SINGLE: dict[str, tuple[int, int] | int] = {
    "LateralVentricle": (4, 43),
    "InfLatVentricle": (5, 44),
    "CerebellumExterior": (8, 47),
    "Cerebellum_WM": (7, 46),
    "ThalamusProper": (10, 49),
    "Caudate": (11, 50),
    "Putamen": (12, 51),
    "Pallidum": (13, 52),
    "Hippocampus": (17, 53),
    "Amygdala": (18, 54),
    "AccumbensArea": (26, 58),
    "VentralDC": (28, 60),
    "3rdVentricle": 14,
    "4thVentricle": 15,
    "BrainStem": 16,
    "Cortex": (3, 42),
    "CerebralWM": (2, 41),
}


@functools.cache
def roi_codes() -> dict[str, int]:
    """Every expressible ROI name (MUSE single ROIs and the composites) -> label code.

    Returns
    -------
    dict of str to int
        ROI name (``_L``/``_R`` suffixed where the structure has two sides) -> FreeSurfer code.

    Examples
    --------
    >>> from roisynth.imaging import roi_codes
    >>> codes = roi_codes()
    >>> codes["Hippocampus_L"], codes["Hippocampus_R"], codes["BrainStem"], codes["Cortex_L"]
    (17, 53, 16, 3)
    """
    codes: dict[str, int] = {}
    for base, code in _SINGLE.items():
        if isinstance(code, tuple):
            codes[f"{base}_L"], codes[f"{base}_R"] = code
        else:
            codes[base] = code
    return codes


@functools.cache
def muse_components(roi: str) -> tuple[str, ...]:
    """The MUSE single ROIs whose volumes add up to ``roi`` (itself for a MUSE ROI).

    ``Cortex_L``: the left cortical GM ROIs (GM outside the subcortical and cerebellar groups,
    hippocampus and amygdala excluded); ``CerebralWM_L``: the left lobar WM, fornix and
    internal-capsule ROIs. Raises like :func:`label_for` for other names.

    Parameters
    ----------
    roi : str
        A MUSE ROI (any spelling :func:`~roisynth.datasets.canonical_roi_name` takes) or a
        composite name.

    Returns
    -------
    tuple of str
        The MUSE names of the parts.

    Examples
    --------
    >>> from roisynth.imaging.labels import muse_components
    >>> muse_components("MUSE_48")
    ('Hippocampus_L',)
    >>> len(muse_components("Cortex_L")) > 10
    True
    """
    name = _resolve(roi)
    if name not in ("Cortex_L", "Cortex_R", "CerebralWM_L", "CerebralWM_R"):
        return (name,)
    table = muse_rois()
    table = table[table["hemisphere"] == name[-1]]
    if name.startswith("Cortex"):
        keep = (table["tissue"] == "GM") & ~table["lobe"].isin(["subcortical", "cerebellum"])
        keep &= ~table["name"].str.startswith(("Hippocampus", "Amygdala"))
    else:
        keep = (table["tissue"] == "WM") & ~table["lobe"].isin(["cerebellum"])
        keep &= ~table["name"].str.startswith("VentralDC")
    return tuple(table.loc[keep, "name"])


def _resolve(roi: str) -> str:
    codes = roi_codes()
    name = roi if roi in codes else canonical_roi_name(roi)
    if name not in codes:
        raise ValueError(
            f"ROI {roi!r} cannot be expressed with the label map's codes; expressible ROIs: "
            f"{sorted(codes)}"
        )
    return name


def label_for(roi: str) -> int:
    """The label code of a ROI given by MUSE name or composite name.

    Any spelling ``canonical_roi_name`` takes is accepted (e.g. ``"Hippocampus_L"`` or
    ``"MUSE_48"``), as are the composite names (``"Cortex_R"``).

    Parameters
    ----------
    roi : str
        The ROI.

    Returns
    -------
    int
        Its FreeSurfer label code.

    Raises
    ------
    ValueError
        Naming the ROI and listing the expressible ones when the label maps have no code for
        it (cortical parcels, BasalForebrain, CorpusCallosum, vermal lobules).

    Examples
    --------
    >>> from roisynth.imaging import label_for
    >>> label_for("Hippocampus_L"), label_for("MUSE_48"), label_for("Cortex_R")
    (17, 17, 42)
    """
    return roi_codes()[_resolve(roi)]


def label_name(code: int) -> str:
    """The FreeSurfer structure name of a label code (``ValueError`` if unknown).

    Parameters
    ----------
    code : int
        A SynthSeg, extra FreeSurfer or extra-cerebral code.

    Returns
    -------
    str
        The structure name (``"extra-cerebral tissue"`` for codes 502-530).

    Examples
    --------
    >>> from roisynth.imaging import label_name
    >>> label_name(17), label_name(507)
    ('left hippocampus', 'extra-cerebral tissue')
    """
    code = int(code)
    if code in SYNTHSEG_LABELS:
        return SYNTHSEG_LABELS[code]
    if code in EXTRA_LABELS:
        return EXTRA_LABELS[code]
    if code in EXTRACEREBRAL_CODES:
        return "extra-cerebral tissue"
    raise ValueError(f"label code {code} is not a known FreeSurfer/SynthSeg code")
