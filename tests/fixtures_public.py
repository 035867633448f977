"""Miniature copies of the public datasets' downloads, written into a test's tmp_path.

Each builder reproduces the real files' quirks byte for byte where they matter (headers, line
endings, trailing commas, leading spaces, 3- and 4-field list lines) with made-up patients.
Images are tiny PNGs; DICOM files are placeholders, since ``umcl prepare`` only checks they exist.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def touch_images(paths: Iterable[Path], payload: bytes) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)


# --- NIH ChestX-ray14 -------------------------------------------------------------------------------
NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
# (image, findings, follow-up, patient, age, sex, view)
NIH_ROWS: tuple[tuple[str, str, int, int, int, str, str], ...] = (
    ("00000001_000.png", "Cardiomegaly", 0, 1, 58, "M", "PA"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", 1, 1, 58, "M", "PA"),
    ("00000002_000.png", "No Finding", 0, 2, 81, "M", "PA"),
    ("00000003_000.png", "Hernia", 0, 3, 81, "F", "PA"),
    ("00000003_001.png", "Effusion|Pleural_Thickening", 1, 3, 74, "F", "AP"),
    ("00000004_000.png", "Mass|Nodule", 0, 4, 82, "M", "AP"),
    ("00000005_000.png", "Infiltration", 0, 5, 69, "F", "PA"),
    ("00000006_000.png", "Atelectasis|Pneumothorax", 0, 6, 40, "F", "PA"),
    ("00000007_000.png", "Consolidation|Edema|Fibrosis|Pneumonia", 0, 7, 35, "M", "AP"),
    ("00000008_000.png", "No Finding", 0, 8, 12, "F", "PA"),
    ("00000009_000.png", "No Finding", 0, 9, 50, "M", "PA"),  # in neither split list
)
NIH_TEST = ("00000007_000.png", "00000008_000.png")


def make_chestxray14(root: Path, variant: str = "v2020", layout: str = "flat", drop_images: Sequence[str] = ()) -> Path:
    """``variant`` v2020 (plain ages, LF) or 2017 (CRLF, trailing comma, ``058Y``); ``layout`` flat or kaggle."""
    root.mkdir(parents=True, exist_ok=True)
    if variant == "v2020":
        lines = [NIH_HEADER] + [
            f"{img},{labels},{fu},{pid},{age},{sex},{view},2500,2048,0.143,0.143"
            for img, labels, fu, pid, age, sex, view in NIH_ROWS
        ]
        (root / "Data_Entry_2017_v2020.csv").write_bytes(("\n".join(lines) + "\n").encode())
    else:
        lines = [NIH_HEADER + ","] + [
            f"{img},{labels},{fu},{pid},{age:03d}Y,{sex},{view},2500,2048,0.143,0.143,"
            for img, labels, fu, pid, age, sex, view in NIH_ROWS
        ]
        (root / "Data_Entry_2017.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    train_val = [row[0] for row in NIH_ROWS[:-1] if row[0] not in NIH_TEST]
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (root / "test_list.txt").write_text("\n".join(NIH_TEST) + "\n")
    names = [row[0] for row in NIH_ROWS if row[0] not in drop_images]
    if layout == "flat":
        folders = [root / "images"] * len(names)
    else:  # Kaggle spreads the images over images_001/images/ … images_012/images/
        folders = [root / f"images_{1 + i % 2:03d}" / "images" for i in range(len(names))]
    touch_images((folder / name for folder, name in zip(folders, names, strict=True)), png_bytes())
    return root


# --- IU X-ray (Open-i) ------------------------------------------------------------------------------
IU_REPORTS: dict[str, dict] = {
    "1": {
        "sections": {
            "COMPARISON": "None.",
            "INDICATION": "Positive TB test",
            "FINDINGS": "The cardiac silhouette and mediastinum size are within normal limits. "
            "There are no XXXX of a pleural effusion.",
            "IMPRESSION": "Normal chest x-XXXX.",
        },
        "major": ["normal"],
        "automatic": [],
        "images": ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"],
    },
    "2": {
        "sections": {
            "COMPARISON": "XXXX.",
            "INDICATION": "XXXX-year-old male, chest pain.",
            "FINDINGS": "The heart is enlarged. Small right pleural effusion.",
            "IMPRESSION": "Cardiomegaly with small right effusion.",
        },
        "major": ["Cardiomegaly/mild", "Pleural Effusion/right/small", "Calcified Granuloma/lung/upper lobe/right"],
        "automatic": ["atelectases"],
        "images": ["CXR2_IM-0652-1001"],
    },
    "3": {  # lists no image: skipped
        "sections": {"FINDINGS": "Lungs are clear.", "IMPRESSION": "No active disease."},
        "major": ["normal"],
        "automatic": [],
        "images": [],
    },
    "4": {  # no findings section text
        "sections": {"COMPARISON": "None.", "FINDINGS": "", "IMPRESSION": "Left basilar opacity."},
        "major": ["Opacity/lung/base/left/mild", "Thoracic Vertebrae/degenerative/mild"],
        "automatic": [],
        "images": ["CXR4_IM-2050-1001"],
    },
    "10": {  # never indexed
        "sections": {"FINDINGS": "Stable appearance.", "IMPRESSION": "No change."},
        "major": ["No Indexing"],
        "automatic": [],
        "images": ["CXR10_IM-0002-1001"],
    },
}


def iu_xml(number: str, report: dict) -> str:
    texts = "\n".join(
        f'            <AbstractText Label="{label}"/>'
        if not body
        else f'            <AbstractText Label="{label}">{body}</AbstractText>'
        for label, body in report["sections"].items()
    )
    mesh = "\n".join(
        [f"      <major>{t}</major>" for t in report["major"]]
        + [f"      <automatic>{t}</automatic>" for t in report["automatic"]]
    )
    images = "\n".join(
        f'   <parentImage id="{i}">\n      <figureId>F{k + 1}</figureId>\n'
        "      <caption>Xray Chest PA and Lateral</caption>\n"
        f'      <panel type="single">\n         <url>/hadoop/storage/radiology/extract/{i}.jpg</url>\n'
        "      </panel>\n   </parentImage>"
        for k, i in enumerate(report["images"])
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<eCitation>
   <meta type="rr"/>
   <uId id="CXR{number}"/>
   <pmcId id="{number}"/>
   <docSource>CXR</docSource>
   <IUXRId id="{number}"/>
   <licenseType>open-access</licenseType>
   <MedlineCitation Owner="Indiana University" Status="supplied by publisher">
      <Article PubModel="Electronic">
         <ArticleTitle>Indiana University Chest X-ray Collection</ArticleTitle>
         <Abstract>
{texts}
         </Abstract>
      </Article>
   </MedlineCitation>
   <MeSH>
{mesh}
   </MeSH>
{images}
</eCitation>
"""


def make_iuxray(root: Path, drop_images: Sequence[str] = ()) -> Path:
    (root / "ecgen-radiology").mkdir(parents=True, exist_ok=True)
    for number, report in IU_REPORTS.items():
        (root / "ecgen-radiology" / f"{number}.xml").write_text(iu_xml(number, report), encoding="utf-8")
    ids = [i for r in IU_REPORTS.values() for i in r["images"] if i not in drop_images]
    touch_images((root / "NLMCXR_png" / f"{i}.png" for i in ids), png_bytes())
    return root


# --- DICOM placeholders -----------------------------------------------------------------------------
DICOM_PLACEHOLDER = b"\0" * 128 + b"DICM"


# --- RSNA Pneumonia ---------------------------------------------------------------------------------
RSNA_LABELS = (
    "patientId,x,y,width,height,Target\n"
    "0004cfab-14fd-4e49-80ba-63a80b6bddd6,,,,,0\n"
    "00313ee0-9eaa-42f4-b0ab-c148ed3241cd,,,,,0\n"
    "00322d4d-1c29-4943-afc9-b6754be640eb,,,,,0\n"
    "003d8fa0-6bf1-40ed-b54c-ac657f8495c5,,,,,0\n"
    "00436515-870c-4b36-a041-de91049b9ab4,264.0,152.0,213.0,379.0,1\n"
    "00436515-870c-4b36-a041-de91049b9ab4,562.0,152.0,256.0,453.0,1\n"
    "00569f44-917d-4e86-a3e7-6ff1e3ddd2b7,,,,,0\n"
    "00704310-78a8-4b38-8475-49f4573b2dbb,323.0,577.0,160.0,104.0,1\n"
    "00704310-78a8-4b38-8475-49f4573b2dbb,695.0,575.0,162.0,137.0,1\n"
    "00704310-78a8-4b38-8475-49f4573b2dbb,310.0,390.0,200.0,120.0,1\n"
    "00704310-78a8-4b38-8475-49f4573b2dbb,690.0,400.0,150.0,140.0,1\n"
    "00aecb01-a116-45a2-956c-08d2fa55433f,288.0,322.0,94.0,135.0,1\n"
    "00c0b293-48e7-4e16-ac76-9269ba535a62,306.0,544.0,168.0,244.0,1\n"
    "00f08de1-517e-4652-a04f-d1dc9ee48593,,,,,0\n"
)
RSNA_DETAILS = {
    "0004cfab-14fd-4e49-80ba-63a80b6bddd6": "No Lung Opacity / Not Normal",
    "00313ee0-9eaa-42f4-b0ab-c148ed3241cd": "No Lung Opacity / Not Normal",
    "00322d4d-1c29-4943-afc9-b6754be640eb": "No Lung Opacity / Not Normal",
    "003d8fa0-6bf1-40ed-b54c-ac657f8495c5": "Normal",
    "00436515-870c-4b36-a041-de91049b9ab4": "Lung Opacity",
    "00569f44-917d-4e86-a3e7-6ff1e3ddd2b7": "No Lung Opacity / Not Normal",
    "00704310-78a8-4b38-8475-49f4573b2dbb": "Lung Opacity",
    "00aecb01-a116-45a2-956c-08d2fa55433f": "Lung Opacity",
    "00c0b293-48e7-4e16-ac76-9269ba535a62": "Lung Opacity",
    "00f08de1-517e-4652-a04f-d1dc9ee48593": "Normal",
}


def rsna_patients() -> list[str]:
    return list(dict.fromkeys(line.split(",")[0] for line in RSNA_LABELS.splitlines()[1:]))


def make_rsna(root: Path, details: bool = True, drop_images: Sequence[str] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stage_2_train_labels.csv").write_text(RSNA_LABELS)
    if details:
        # One row per label row, like the real file (a patient with two boxes appears twice).
        counts = {pid: RSNA_LABELS.count(pid + ",") for pid in RSNA_DETAILS}
        rows = [f"{pid},{cls}" for pid, cls in RSNA_DETAILS.items() for _ in range(counts[pid])]
        (root / "stage_2_detailed_class_info.csv").write_text("patientId,class\n" + "\n".join(rows) + "\n")
    ids = [p for p in rsna_patients() if p not in drop_images]
    touch_images((root / "stage_2_train_images" / f"{p}.dcm" for p in ids), DICOM_PLACEHOLDER)
    return root


# --- SIIM-ACR Pneumothorax --------------------------------------------------------------------------
SIIM_IMAGES = {  # ImageId → (study uid, series uid)
    "1.2.276.0.7230010.3.1.4.8323329.5597.1517875188.959090": (
        "1.2.276.0.7230010.3.1.2.8323329.5597.1517875188.959089",
        "1.2.276.0.7230010.3.1.3.8323329.5597.1517875188.959088",
    ),
    "1.2.276.0.7230010.3.1.4.8323329.12515.1517875239.501137": (
        "1.2.276.0.7230010.3.1.2.8323329.12515.1517875239.501136",
        "1.2.276.0.7230010.3.1.3.8323329.12515.1517875239.501135",
    ),
    "1.2.276.0.7230010.3.1.4.8323329.4904.1517875185.355709": (
        "1.2.276.0.7230010.3.1.2.8323329.4904.1517875185.355708",
        "1.2.276.0.7230010.3.1.3.8323329.4904.1517875185.355707",
    ),
    "1.2.276.0.7230010.3.1.4.8323329.32579.1517875161.299312": (
        "1.2.276.0.7230010.3.1.2.8323329.32579.1517875161.299311",
        "1.2.276.0.7230010.3.1.3.8323329.32579.1517875161.299310",
    ),
    "1.2.276.0.7230010.3.1.4.8323329.1314.1517875167.222290": (  # a DICOM with no row in train-rle.csv
        "1.2.276.0.7230010.3.1.2.8323329.1314.1517875167.222289",
        "1.2.276.0.7230010.3.1.3.8323329.1314.1517875167.222288",
    ),
}
_SIIM = list(SIIM_IMAGES)
SIIM_RLE = (
    "ImageId, EncodedPixels\n"
    f"{_SIIM[0]}, -1\n"
    f"{_SIIM[1]}, 175349 7 1013 12 1009 17 1005 19 1003 20 1002 22\n"
    f"{_SIIM[1]}, 407576 2 1021 7 1015 10 1013 12 1011 14 1008 17\n"
    f"{_SIIM[2]}, -1\n"
    f"{_SIIM[3]}, 592184 33 976 58 956 73 941 88 926 102\n"
)


def make_siim(root: Path, drop_images: Sequence[str] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train-rle.csv").write_text(SIIM_RLE)
    paths = (
        root / "dicom-images-train" / study / series / f"{image}.dcm"
        for image, (study, series) in SIIM_IMAGES.items()
        if image not in drop_images
    )
    touch_images(paths, DICOM_PLACEHOLDER)
    return root


# --- COVIDx -----------------------------------------------------------------------------------------
COVIDX_TRAIN = (
    "379 SARS-10.1148rg.242035193-g04mr34g0-Fig8a-day0.jpeg COVID-19 cohen\n"
    "379 SARS-10.1148rg.242035193-g04mr34g0-Fig8b-day5.jpeg COVID-19 cohen\n"
    "COVID 00012 b 12-covid-pa.png COVID-19 actmed\n"
    "8a88cdd0-fd7a-4d0c-8c4a-2ee8a1e5e4aa 8a88cdd0-fd7a-4d0c-8c4a-2ee8a1e5e4aa.png normal rsna\n"
    "f2b9ed31-21b4-4e37-94d1-08b6f2ce0c21 f2b9ed31-21b4-4e37-94d1-08b6f2ce0c21.png pneumonia rsna\n"
    "5f45d3f4-3cab-4d69-a2e4-7cd38f1b6ab0 5f45d3f4-3cab-4d69-a2e4-7cd38f1b6ab0.png normal rsna\n"
)
COVIDX_TEST = (
    "419639-003251 MIDRC-RICORD-1C-419639-003251-46647-0.png COVID-19 ricord\n"
    "c1e7d1f1-1b2e-4d6d-a7b5-cf15b8b1b1a1 c1e7d1f1-1b2e-4d6d-a7b5-cf15b8b1b1a1.png pneumonia rsna\n"
    "Normal patient 7 normal-7.png normal sirm\n"
)
COVIDX_OLD = (  # early releases: patientid filename label
    "3 SARS-10.1148rg.242035193-g04mr34g0-Fig8a-day0.jpeg COVID-19\n"
    "patient 4 a covid-4a.jpg COVID-19\n"
    "8a88cdd0-fd7a-4d0c-8c4a-2ee8a1e5e4aa 8a88cdd0-fd7a-4d0c-8c4a-2ee8a1e5e4aa.png normal\n"
)
COVIDX_OLD_TEST = "9 f2b9ed31.png pneumonia\n"
COVIDX_BINARY = "A001 A001-0.png positive bimcv\nA001 A001-1.png positive bimcv\nB002 B002-0.png negative rsna\n"
COVIDX_BINARY_TEST = "C003 C003-0.png negative rsna\nD004 D004-0.png positive ricord\n"


def make_covidx(root: Path, release: str = "9A", drop_images: Sequence[str] = ()) -> Path:
    """``release`` 9A (4 fields, three classes), old (3 fields, train_split_v2.txt) or binary."""
    root.mkdir(parents=True, exist_ok=True)
    train, test, name = {
        "9A": (COVIDX_TRAIN, COVIDX_TEST, "COVIDx9A"),
        "old": (COVIDX_OLD, COVIDX_OLD_TEST, "split_v2"),
        "binary": (COVIDX_BINARY, COVIDX_BINARY_TEST, "COVIDx-CXR4"),
    }[release]
    (root / f"train_{name}.txt").write_text(train)
    (root / f"test_{name}.txt").write_text(test)
    for split, text in (("train", train), ("test", test)):
        names = [line.rsplit(maxsplit=3 if release != "old" else 2)[1] for line in text.splitlines()]
        touch_images((root / split / n for n in names if n not in drop_images), png_bytes())
    return root
