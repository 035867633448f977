"""Rendering chest-radiograph-like grayscale images that show each finding, vectorised over a batch.

Geometry lives in normalised coordinates: ``u`` runs -1..1 from image left to image right (the
patient's right is image left, as on a real PA film), ``v`` runs -1..1 from top to bottom. Every
image gets a small random pose, so anatomy is drawn in pose-corrected ``(u, v)``. Findings are
added on top of the normal anatomy, scaled by severity; uncertain (-1) findings are drawn faint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from .labels import (
    BILATERAL,
    CHEST_TUBE,
    CLASS_INDEX,
    ENTERIC_TUBE,
    ET_TUBE,
    LEFT,
    LEFT_LINE,
    PACEMAKER,
    RIGHT,
    RIGHT_LINE,
    UPPER,
    Findings,
)

_F32 = np.float32
# Sides as image-u signs: patient right is image left (u < 0).
_SIGNS = ((RIGHT, -1.0), (LEFT, 1.0))
# About one million pixels per batch keeps every float temporary at ~4 MB.
BATCH_PIXELS = 1 << 20


@dataclass(frozen=True)
class Anatomy:
    """Per-patient body shape, so studies of one subject look like the same person."""

    thorax: np.ndarray  # width scale of the rib cage
    apex: np.ndarray  # v of the lung apices
    dia_right: np.ndarray  # v of the right hemidiaphragm (the left sits lower)
    dia_left: np.ndarray
    heart: np.ndarray  # heart half-width when normal
    heart_height: np.ndarray
    mediastinum: np.ndarray  # upper-mediastinum half-width when normal
    rib_phase: np.ndarray

    def take(self, index: np.ndarray | slice) -> Anatomy:
        return Anatomy(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def sample_anatomy(n: int, rng: np.random.Generator) -> Anatomy:
    dia_right = rng.normal(0.50, 0.035, n)
    return Anatomy(
        thorax=rng.uniform(0.94, 1.04, n),
        apex=rng.normal(-0.76, 0.025, n),
        dia_right=dia_right,
        dia_left=dia_right + rng.normal(0.06, 0.02, n),
        heart=rng.uniform(0.30, 0.35, n),
        heart_height=rng.uniform(0.30, 0.36, n),
        mediastinum=rng.uniform(0.13, 0.16, n),
        rib_phase=rng.uniform(0, 2 * np.pi, n),
    )


def render_images(
    findings: Findings, rng: np.random.Generator, size: int = 64, anatomy: Anatomy | None = None
) -> np.ndarray:
    """(N, size, size) uint8 radiographs for ``findings`` (one batch; callers split big sets)."""
    n = len(findings)
    if anatomy is None:
        anatomy = sample_anatomy(n, rng)
    return _Canvas(findings, anatomy, rng, size).draw()


def _col(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=_F32)[:, None, None]


def _ramp(d: np.ndarray, width: float) -> np.ndarray:
    """Soft step: 0 where d << 0, 1 where d >> 0 (cheaper than a sigmoid, same look)."""
    return np.clip(0.5 + d / width, 0.0, 1.0)


class _Canvas:
    def __init__(self, findings: Findings, anatomy: Anatomy, rng: np.random.Generator, size: int) -> None:
        self.f = findings
        self.a = anatomy
        self.rng = rng
        self.size = size
        self.n = len(findings)
        self.px = 2.0 / size
        self.edge = max(0.035, 1.2 * self.px)
        # Amplitude per (row, class): 1 positive, 0.45 uncertain, 0 otherwise.
        lab = findings.labels
        self.amp = np.where(lab == 1, 1.0, np.where(lab == -1, 0.45, 0.0)).astype(_F32)
        self.sev = findings.severity.astype(_F32)
        grid = np.linspace(-1 + self.px / 2, 1 - self.px / 2, size, dtype=_F32)
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        self.pose = (
            rng.normal(0, 0.035, self.n),  # rotation
            rng.uniform(0.93, 1.04, self.n),  # scale
            rng.normal(0, 0.03, self.n),  # shift x
            rng.normal(0, 0.03, self.n),  # shift y
        )
        rot, scale, tx, ty = (_col(p) for p in self.pose)
        x, y = xs[None] - tx, ys[None] - ty
        self.u = (np.cos(rot) * x + np.sin(rot) * y) / scale
        self.v = (-np.sin(rot) * x + np.cos(rot) * y) / scale

    # --- helpers -------------------------------------------------------------------------------
    def rows(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.amp[:, CLASS_INDEX[name]] > 0)

    def on_side(self, name: str, side: int) -> np.ndarray:
        s = self.f.side[:, CLASS_INDEX[name]]
        return np.flatnonzero((self.amp[:, CLASS_INDEX[name]] > 0) & ((s == side) | (s == BILATERAL)))

    def noise(self, cells: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Smooth noise in [0, 1]: a coarse random grid upsampled bilinearly (two small matmuls)."""
        m = self.n if rows is None else len(rows)
        coarse = self.rng.random((m, cells + 1, cells + 1), dtype=_F32)
        up = _upsampler(cells, self.size)
        return up @ coarse @ up.T

    # --- anatomy -------------------------------------------------------------------------------
    def draw(self) -> np.ndarray:
        u, v = self.u, self.v
        # Neck widening into rounded shoulders, then the chest wall.
        shoulder = 0.30 + 0.64 * np.sin(0.5 * np.pi * np.clip((v + 0.98) / 0.38, 0, 1))
        self.body = _ramp(shoulder - np.abs(u), self.edge)
        img = 0.03 + self.body * (0.28 + 0.15 * np.sqrt(1 - np.clip(u / shoulder, -1, 1) ** 2))
        self.lungs = self._lung_geometry()
        lung_all = sum(g["mask"] for g in self.lungs.values())
        # Below the diaphragm domes the abdomen is dense soft tissue.
        dome = np.where(u < 0, self.lungs[-1.0]["dome"], self.lungs[1.0]["dome"])
        img += 0.15 * self.body * _ramp(v - dome, 0.08) * (1 - lung_all)
        img -= 0.25 * lung_all
        img += self._markings(lung_all)
        # Findings that replace air make the lung as dense as soft tissue and hide its vessels.
        fill = np.zeros_like(u)
        self._parenchyma(fill, lung_all)
        self._pleural_fill(fill)
        img += fill * (0.28 - self.vessels * lung_all)
        img = self._pneumothorax(img)
        img = self._mediastinum(img)
        img += self._bones()
        img = self._devices(img)
        return self._finish(img)

    def _lung_geometry(self) -> dict[float, dict[str, np.ndarray]]:
        """Per side: soft mask, distance to the lateral wall, apex curve, base and normalised height."""
        u, v, a = self.u, self.v, self.a
        thorax = _col(a.thorax)
        half = 0.37 * thorax
        out = {}
        for side, sign in _SIGNS:
            base = a.dia_right if side == RIGHT else a.dia_left
            # Atelectasis loses volume: the hemidiaphragm on its side rises.
            col = CLASS_INDEX["Atelectasis"]
            hit = (self.f.side[:, col] == side) | (self.f.side[:, col] == BILATERAL)
            base = base - hit * self.amp[:, col] * 0.05 * (1 + self.sev[:, col])
            base = _col(base)
            cx = sign * 0.43 * thorax
            rel = (u - cx) / half
            top = _col(a.apex) + 0.25 * rel**2
            height = np.clip((v - top) / (base - top), 0, 1)
            width = half * (0.35 + 0.65 * np.sqrt(np.clip(height * 2.2, 0, 1)))
            dome = base - 0.11 + 0.11 * np.clip(rel, -1, 1) ** 2
            mask = _ramp(width - np.abs(u - cx), self.edge) * _ramp(v - top, self.edge)
            mask = mask * _ramp(dome - v, self.edge)
            out[sign] = {
                "mask": mask,
                "lateral": width - sign * (u - cx),  # distance inside from the chest wall
                "top": v - top,
                "height": height,
                "base": base,
                "cx": cx,
                "dome": dome,
                "half": half,
            }
        return out

    def _markings(self, lung_all: np.ndarray) -> np.ndarray:
        """Vessels fanning out from the hila, fading to the periphery (absent in a pneumothorax)."""
        u, v = self.u, self.v
        hx = np.where(u < 0, -0.18, 0.2).astype(_F32)
        du, dv = u - hx, v + 0.02
        r = np.sqrt(du**2 + dv**2)
        angle = np.arctan2(dv, du)
        wobble = 5.0 * self.noise(9) + 3.0 * self.noise(4)
        vessels = (0.5 + 0.5 * np.cos(14 * angle + wobble)) ** 6
        hilum = 0.07 * np.exp(-(r**2) / (2 * 0.07**2))
        self.vessels = 0.08 * vessels * np.exp(-r / 0.32) + 0.04 * self.noise(12) + hilum
        return self.vessels * lung_all

    def _side_rows(self, name: str) -> Iterator[tuple[float, np.ndarray]]:
        """(image-u sign, rows) for each side on which ``name`` is drawn (both for bilateral)."""
        for side, sign in _SIGNS:
            rows = self.on_side(name, side)
            if len(rows):
                yield sign, rows

    def _blobs(self, name: str, per_row: int, sigma: float, spread: float) -> np.ndarray:
        """Gaussian patches in the finding's lung zone on its side(s), one layer per row."""
        col = CLASS_INDEX[name]
        layer = np.zeros_like(self.u)
        for sign, rows in self._side_rows(name):
            m = len(rows)
            upper = self.f.zone[rows, col] == UPPER
            thorax = self.a.thorax[rows, None]
            uc = sign * thorax * self.rng.uniform(0.22, 0.62, (m, per_row))
            vc = np.where(
                upper[:, None],
                self.rng.uniform(-0.5, -0.15, (m, per_row)),
                self.rng.uniform(0.02, 0.32, (m, per_row)),
            )
            s = sigma * (1 + spread * self.sev[rows, col])[:, None] * self.rng.uniform(0.8, 1.2, (m, per_row))
            u, v = self.u[rows, None], self.v[rows, None]
            d2 = (u - uc[..., None, None]) ** 2 + (v - vc[..., None, None]) ** 2
            layer[rows] += np.exp(-d2 / (2 * s[..., None, None] ** 2)).sum(axis=1).astype(_F32)
        return np.minimum(layer, 1.0)

    def _lobe(self, name: str, reach: tuple[float, float, float]) -> np.ndarray:
        """A lobar region (lower or upper part of the lung on the finding's side) with a ragged edge."""
        col = CLASS_INDEX[name]
        layer = np.zeros_like(self.u)
        for sign, rows in self._side_rows(name):
            g = self.lungs[sign]
            ragged = 0.12 * (self.noise(4, rows) - 0.5)
            extent = _col(np.take(reach, self.f.severity[rows, col]))
            height = g["height"][rows]
            upper = _col(self.f.zone[rows, col] == UPPER)
            lower_part = _ramp(height - (1 - extent) + ragged, 0.08)
            upper_part = _ramp(extent * 0.8 - height + ragged, 0.08)
            layer[rows] += g["mask"][rows] * np.where(upper > 0, upper_part, lower_part)
        return np.minimum(layer, 1.0)

    def _parenchyma(self, fill: np.ndarray, lung_all: np.ndarray) -> None:
        """Add each airspace finding to ``fill``, the fraction of lung air replaced (0..1)."""
        amp, sev = self.amp, self.sev
        # Lung opacity: soft patchy densities.
        col = CLASS_INDEX["Lung Opacity"]
        patches = self._blobs("Lung Opacity", 2, 0.08, 0.25) * (0.6 + 0.8 * self.noise(6))
        _union(fill, 0.55 * _col(amp[:, col]) * patches * lung_all)
        # Consolidation: dense, lobar, fills the lobe.
        col = CLASS_INDEX["Consolidation"]
        lobe = self._lobe("Consolidation", (0.35, 0.5, 0.7))
        _union(fill, _col(amp[:, col] * (0.65 + 0.1 * sev[:, col])) * lobe * (0.85 + 0.3 * self.noise(8)))
        # Pneumonia: patchy consolidation, scattered within its lobe.
        col = CLASS_INDEX["Pneumonia"]
        lobe = self._lobe("Pneumonia", (0.45, 0.6, 0.8))
        patchy = np.clip((self.noise(7) - 0.3) * 2.5, 0, 1)
        _union(fill, 0.85 * _col(amp[:, col]) * lobe * patchy)
        # Edema: bilateral perihilar (bat-wing) haze.
        col = CLASS_INDEX["Edema"]
        rows = self.rows("Edema")
        if len(rows):
            spread = _col(0.22 + 0.05 * sev[rows, col])
            hx = np.where(self.u[rows] < 0, -0.2, 0.2)
            r2 = (self.u[rows] - hx) ** 2 + self.v[rows] ** 2
            haze = np.exp(-r2 / (2 * spread**2)) * (0.8 + 0.4 * self.noise(6, rows))
            strength = _col(amp[rows, col] * (0.5 + 0.15 * sev[rows, col]))
            _union(fill, strength * haze * lung_all[rows], rows)
        # Lung lesion: round, sharply marginated nodule(s).
        _union(fill, self._nodules(lung_all))
        # Atelectasis: plate-like band at the base (its volume loss is in the lung geometry).
        col = CLASS_INDEX["Atelectasis"]
        for sign, rows in self._side_rows("Atelectasis"):
            g = self.lungs[sign]
            m = len(rows)
            level = g["base"][rows] - _col(self.rng.uniform(0.14, 0.26, m))
            slope = _col(self.rng.uniform(-0.25, 0.25, m))
            dist = np.abs(self.v[rows] - level - slope * (self.u[rows] - g["cx"][rows]))
            thick = _col(0.022 + 0.014 * sev[rows, col])
            band = _ramp(thick - dist, max(0.02, self.px))
            # Severe atelectasis also collapses the whole base into a wedge.
            wedge = _col(sev[rows, col] == 2) * _ramp(self.v[rows] - level, 0.1)
            strength = 0.85 * _col(amp[rows, col])
            _union(fill, strength * np.maximum(band, 0.7 * wedge) * g["mask"][rows], rows)

    def _nodules(self, lung_all: np.ndarray) -> np.ndarray:
        col = CLASS_INDEX["Lung Lesion"]
        layer = np.zeros_like(self.u)
        for sign, rows in self._side_rows("Lung Lesion"):
            m = len(rows)
            count = np.where(self.f.severity[rows, col] == 2, 2, 1)
            radius = 0.045 + 0.025 * self.sev[rows, col]
            upper = self.f.zone[rows, col] == UPPER
            for k in range(2):
                uc = sign * self.a.thorax[rows] * self.rng.uniform(0.25, 0.6, m)
                vc = np.where(upper, self.rng.uniform(-0.5, -0.15, m), self.rng.uniform(-0.05, 0.3, m))
                d = np.sqrt((self.u[rows] - _col(uc)) ** 2 + (self.v[rows] - _col(vc)) ** 2)
                disc = _ramp(_col(radius) - d, max(0.02, self.px)) * _col(k < count)
                layer[rows] = np.maximum(layer[rows], disc * _col(self.amp[rows, col]))
        return 0.9 * layer * lung_all

    def _pleural_fill(self, fill: np.ndarray) -> None:
        """Add pleural fluid and thickening to ``fill``: both replace the lung's air near the wall."""
        amp, sev = self.amp, self.sev
        # Pleural effusion: dependent fluid with a meniscus climbing the lateral chest wall.
        col = CLASS_INDEX["Pleural Effusion"]
        for sign, rows in self._side_rows("Pleural Effusion"):
            g = self.lungs[sign]
            depth = _col((0.34 + 0.15 * sev[rows, col]) * np.where(amp[rows, col] < 1, 0.6, 1.0))
            level = g["base"][rows] - depth
            medial = np.clip(1 - g["lateral"][rows] / (2 * g["half"][rows]), 0, 1)
            surface = level + 0.12 * np.sqrt(medial)
            fluid = _ramp(self.v[rows] - surface, 0.05) * (0.9 + 0.1 * _ramp(self.v[rows] - surface, 0.4))
            _union(fill, _col(amp[rows, col]) * fluid * g["mask"][rows], rows)
        # Pleural thickening along the lateral chest wall of the mid and lower zones.
        col = CLASS_INDEX["Pleural Other"]
        for sign, rows in self._side_rows("Pleural Other"):
            g = self.lungs[sign]
            thick = _col(0.05 + 0.02 * sev[rows, col]) * (0.7 + 0.6 * self.noise(5, rows))
            band = _ramp(thick - g["lateral"][rows], 0.02) * _ramp(g["height"][rows] - 0.3, 0.2)
            _union(fill, 0.9 * _col(amp[rows, col]) * band * g["mask"][rows], rows)

    def _pneumothorax(self, img: np.ndarray) -> np.ndarray:
        """A lucent rim without vessels along the apex and lateral wall, edged by the pleural line."""
        amp, sev = self.amp, self.sev
        line_w = max(0.014, 0.6 * self.px)
        col = CLASS_INDEX["Pneumothorax"]
        for sign, rows in self._side_rows("Pneumothorax"):
            g = self.lungs[sign]
            rim = _col((0.07 + 0.07 * sev[rows, col]) * np.where(amp[rows, col] < 1, 0.6, 1.0))
            rim = rim * (1.15 - 0.8 * g["height"][rows])
            wall = np.minimum(g["lateral"][rows], 1.3 * g["top"][rows])
            mask = g["mask"][rows]
            air = _ramp(rim - wall, 0.02) * mask
            line = np.exp(-(((wall - rim) / line_w) ** 2)) * mask * _ramp(0.9 - g["height"][rows], 0.3)
            strength = _col(amp[rows, col])
            img[rows] -= strength * air * (self.vessels[rows] + 0.08)
            img[rows] += 0.18 * strength * line
        return img

    def _mediastinum(self, img: np.ndarray) -> np.ndarray:
        u, v, a, amp, sev = self.u, self.v, self.a, self.amp, self.sev
        ecm = CLASS_INDEX["Enlarged Cardiomediastinum"]
        med = _col(a.mediastinum + amp[:, ecm] * (0.07 + 0.03 * sev[:, ecm]))
        # The upper mediastinum narrows into the neck above the aortic arch.
        med = med * (0.75 + 0.25 * _ramp(v + 0.55, 0.4))
        upper = _ramp(med - np.abs(u - 0.02), self.edge) * _ramp(v + 0.95, 0.1) * _ramp(0.3 - v, 0.1)
        knob = np.exp(-((u - 0.7 * med - 0.05) ** 2 + (v + 0.33) ** 2) / (2 * 0.06**2))
        upper = np.maximum(upper, knob * _ramp(0.5 - np.abs(u - 0.12), 0.2))
        # Cardiomegaly: a heart wider than half the thorax (cardiothoracic ratio > 0.5).
        cm = CLASS_INDEX["Cardiomegaly"]
        width = _col(a.heart + amp[:, cm] * (0.14 + 0.05 * sev[:, cm]))
        # Severe atelectasis pulls the heart towards its side.
        at = CLASS_INDEX["Atelectasis"]
        pull = np.select([self.f.side[:, at] == RIGHT, self.f.side[:, at] == LEFT], [-1.0, 1.0], 0.0)
        shift = _col(pull * (self.f.severity[:, at] == 2) * amp[:, at] * 0.04)
        cx = width / 3 + shift  # two thirds of the heart lie left of the midline
        # The lower part of the heart hides behind the diaphragm and abdomen.
        cy = _col((a.dia_right + a.dia_left) / 2 - 0.35 * a.heart_height)
        ellipse = 1 - ((u - cx) / width) ** 2 - ((v - cy) / _col(a.heart_height)) ** 2
        heart = _ramp(ellipse, 0.2)
        dense = np.maximum(upper, heart) * self.body
        img = img * (1 - dense) + dense * 0.60
        trachea = _ramp(0.045 - np.abs(u - 0.01), 0.03) * _ramp(-0.3 - v, 0.15)
        return img - 0.14 * trachea

    def _bones(self) -> np.ndarray:
        """Posterior and anterior ribs, clavicles and spine; a fracture breaks one rib."""
        u, v, a = self.u, self.v, self.a
        au = np.abs(u)
        period = 0.19
        arch = v - 0.9 * (au - 0.35) ** 2 - 0.12 * au
        # Rib fracture: the rib steps (displaced) and a callus forms at the break.
        col = CLASS_INDEX["Fracture"]
        callus = np.zeros_like(u)
        for sign, rows in self._side_rows("Fracture"):
            m = len(rows)
            uf = _col(sign * self.rng.uniform(0.55, 0.75, m))
            vf = _col(self.rng.uniform(-0.45, 0.2, m))
            near = np.exp(-(((v[rows] - vf) / 0.14) ** 2))
            step = _col((0.25 + 0.15 * self.sev[rows, col]) * self.amp[rows, col]) * period
            arch[rows] += step * near * _ramp(sign * (u[rows] - uf), 0.02)
            d2 = (u[rows] - uf) ** 2 + (v[rows] - vf) ** 2
            callus[rows] += _col(self.amp[rows, col]) * np.exp(-d2 / (2 * 0.035**2))
        phase = _col(a.rib_phase)
        posterior = np.clip((0.5 + 0.5 * np.cos(2 * np.pi * arch / period + phase) - 0.55) / 0.45, 0, 1)
        anterior = 0.5 + 0.5 * np.cos(2 * np.pi * (v + 0.35 * au) / (period * 1.3) + 1.7 * phase)
        cage = _ramp(0.86 * _col(a.thorax) - au, 0.06) * _ramp(v + 0.85, 0.1) * _ramp(0.55 - v, 0.2)
        cage = cage * _ramp(au - 0.08, 0.04)  # ribs end at the spine
        ribs = cage * (0.042 * posterior + 0.022 * np.clip((anterior - 0.6) / 0.4, 0, 1))
        # Clavicles rise from the sternal notch towards the shoulders.
        clavicle_v = -0.58 - 0.45 * au + 0.25 * au**2
        clavicle = _ramp(0.03 - np.abs(v - clavicle_v), 0.04) * _ramp(0.72 - au, 0.06) * _ramp(au - 0.08, 0.04)
        spine = _ramp(0.07 - np.abs(u - 0.01), 0.03) * _ramp(0.6 - v, 0.2)
        return (ribs + 0.14 * clavicle + 0.05 * spine + 0.16 * callus) * self.body

    # --- support devices ---------------------------------------------------------------------
    def _devices(self, img: np.ndarray) -> np.ndarray:
        """Radiopaque tubes and lines (Bezier curves rasterised per row) and a pacemaker box."""
        dev = self.f.devices
        rng = self.rng
        curves: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, control points (m, 3, 2))

        def add(bit: int, points: list[tuple[float, float]], jitter: float = 0.03) -> np.ndarray:
            rows = np.flatnonzero(dev & bit)
            ctrl = np.array(points, dtype=_F32)[None] + rng.normal(0, jitter, (len(rows), 3, 2))
            curves.append((rows, ctrl.astype(_F32)))
            return rows

        add(ET_TUBE, [(0.01, -1.1), (0.02, -0.75), (0.01, -0.42)])
        add(ENTERIC_TUBE, [(0.03, -1.1), (-0.01, -0.2), (0.04, 0.55)], 0.015)
        add(ENTERIC_TUBE, [(0.04, 0.55), (0.1, 0.85), (0.38, 0.72)], 0.015)
        # Central lines come in from a subclavian vein and end in the superior vena cava.
        add(RIGHT_LINE, [(-0.55, -0.72), (-0.15, -0.62), (-0.06, -0.12)])
        add(LEFT_LINE, [(0.55, -0.72), (0.15, -0.62), (-0.06, -0.12)])
        rows = add(PACEMAKER, [(0.5, -0.64), (0.1, -0.45), (-0.03, 0.32)])
        add(PACEMAKER, [(0.5, -0.64), (0.15, -0.4), (0.08, 0.42)])
        box = np.zeros_like(self.u)
        if len(rows):
            u, v = self.u[rows], self.v[rows]
            box[rows] = _ramp(0.075 - np.abs(u - 0.5), 0.02) * _ramp(0.05 - np.abs(v + 0.64), 0.02)
        # Chest tubes drain the pneumothorax: from the lateral base up towards the apex.
        ptx = self.f.side[:, CLASS_INDEX["Pneumothorax"]]
        for side, sign in _SIGNS:
            rows = np.flatnonzero((dev & CHEST_TUBE) & (ptx == side))
            ctrl = np.array([(0.88, 0.45), (0.8, -0.2), (0.42, -0.6)], dtype=_F32)[None]
            ctrl = ctrl * np.array([sign, 1.0], dtype=_F32) + rng.normal(0, 0.03, (len(rows), 3, 2))
            curves.append((rows, ctrl.astype(_F32)))
        layer = np.maximum(self._rasterise(curves), box)
        return img + layer * (0.9 - img) * 0.6

    def _rasterise(self, curves: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        layer = np.zeros_like(self.u)
        steps = np.linspace(0, 1, 3 * self.size, dtype=_F32)[None, :, None]
        brush = max(0, round(0.009 / self.px))
        offsets = [
            (dy, dx)
            for dy in range(-brush, brush + 1)
            for dx in range(-brush, brush + 1)
            if dy * dy + dx * dx <= brush * brush
        ]
        rot, scale, tx, ty = self.pose
        for rows, ctrl in curves:
            if not len(rows):
                continue
            p0, p1, p2 = ctrl[:, 0:1], ctrl[:, 1:2], ctrl[:, 2:3]
            pts = (1 - steps) ** 2 * p0 + 2 * (1 - steps) * steps * p1 + steps**2 * p2
            cu, cv = pts[..., 0], pts[..., 1]
            c, s, k = np.cos(rot[rows])[:, None], np.sin(rot[rows])[:, None], scale[rows][:, None]
            x = tx[rows][:, None] + k * (c * cu - s * cv)
            y = ty[rows][:, None] + k * (s * cu + c * cv)
            col = np.floor((x + 1) / self.px).astype(int)
            row = np.floor((y + 1) / self.px).astype(int)
            idx = np.broadcast_to(rows[:, None], col.shape)
            for dy, dx in offsets:
                r, q = row + dy, col + dx
                ok = (r >= 0) & (r < self.size) & (q >= 0) & (q < self.size)
                layer[idx[ok], r[ok], q[ok]] = 1.0
        return layer

    # --- acquisition ---------------------------------------------------------------------------
    def _finish(self, img: np.ndarray) -> np.ndarray:
        """Detector blur, mottle and noise, then per-image exposure (contrast/brightness/gamma)."""
        img = _blur(img)
        rng = self.rng
        img += 0.03 * (self.noise(6) - 0.5)
        img += _col(rng.uniform(0.008, 0.022, self.n)) * rng.standard_normal(img.shape, dtype=_F32)
        img = np.clip(img, 0, 1) ** _col(rng.uniform(0.85, 1.15, self.n))
        img = (img - 0.3) * _col(rng.uniform(0.9, 1.25, self.n)) + 0.3 + _col(rng.normal(0, 0.03, self.n))
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _union(fill: np.ndarray, part: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Combine densities like independent absorbers (1 - (1-a)(1-b)), so overlaps never saturate."""
    target = fill if rows is None else fill[rows]
    target += np.clip(part, 0, 1) * (1 - target)
    if rows is not None:
        fill[rows] = target


def _upsampler(cells: int, size: int) -> np.ndarray:
    """(size, cells + 1) bilinear interpolation weights from a coarse grid to ``size`` pixels."""
    pos = np.linspace(0, cells, size)
    i0 = np.minimum(pos.astype(int), cells - 1)
    weights = np.zeros((size, cells + 1), dtype=_F32)
    weights[np.arange(size), i0] = 1 - (pos - i0)
    weights[np.arange(size), i0 + 1] = pos - i0
    return weights


def _blur(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur with edge replication."""
    pad = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    rows = (pad[:, :-2] + 2 * pad[:, 1:-1] + pad[:, 2:]) / 4
    return (rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 4
