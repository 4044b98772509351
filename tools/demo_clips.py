"""Procedural clips for the demo model: a textured object on a random background that moves
left / right / up / down or stays still. (Rendering of clockwise / counter-clockwise turns is
kept: a 3-layer TimeSformer on 32x32 frames reached only ~50 % on the turn direction, see
models/demo/training_log.txt, so the shipped model leaves those two classes out.)
Used by tools/train_demo_model.py (training and held-out data) and to render the bundled
example videos. numpy only."""
import numpy as np

LABELS = ["left", "right", "up", "down", "still"]
ALL_MOTIONS = ["left", "right", "up", "down", "clockwise", "counter-clockwise", "still"]
FRAMES = 8


def _texture(rng, n=16):
    """An asymmetric two-colour texture (stripes plus a corner marker), n x n x 3 in [0, 255]."""
    # A bright object on a darker background: edges have a consistent polarity.
    a, b = rng.uniform(150, 255, 3), rng.uniform(150, 255, 3)
    while np.abs(a - b).sum() < 120:
        b = rng.uniform(150, 255, 3)
    y, x = np.mgrid[0:n, 0:n]
    period = rng.integers(3, 6)
    stripes = ((x + rng.integers(0, period)) // max(1, period // 2)) % 2
    if rng.random() < 0.5:
        stripes = ((x + y) // max(1, period // 2)) % 2
    tex = np.where(stripes[..., None] == 1, a, b)
    # A large marker quadrant: its circular motion shows which way the object turns.
    tex[: n // 2, : n // 2] = rng.uniform(200, 255, 3) * np.array([1, 0.25, 0.25])[rng.permutation(3)]
    return tex


def _background(rng, size):
    y, x = np.mgrid[0:size, 0:size] / size
    c0, c1, c2 = (rng.uniform(0, 110, 3) for _ in range(3))
    bg = c0 + (c1 - c0) * x[..., None] + (c2 - c0) * y[..., None] * rng.uniform(0, 1)
    return bg + rng.normal(0, rng.uniform(0, 12), (size, size, 3))


def render(label, rng, size=32):
    """One clip, uint8 [FRAMES, size, size, 3]. All geometry is in units of `size`."""
    k = ALL_MOTIONS.index(label)
    tex = _texture(rng)
    half = rng.uniform(0.18, 0.27) * size                       # half side of the object
    speed = rng.uniform(0.06, 0.09) * size                      # per frame
    omega = np.deg2rad(rng.uniform(15, 30))                     # per frame
    travel = speed * (FRAMES - 1)
    margin = half * 1.45
    lo, hi = margin, size - margin
    c = rng.uniform(lo, hi, 2)
    direction = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}.get(k, (0, 0))
    for axis in range(2):
        if direction[axis] < 0:
            c[axis] = rng.uniform(lo + travel, max(lo + travel, hi))
        elif direction[axis] > 0:
            c[axis] = rng.uniform(lo, max(lo, hi - travel))
    theta0 = rng.uniform(0, 2 * np.pi)
    bg = _background(rng, size)
    noise = rng.uniform(0, 6)
    y, x = np.mgrid[0:size, 0:size] + 0.5
    out = np.empty((FRAMES, size, size, 3))
    for t in range(FRAMES):
        cx = c[0] + direction[0] * speed * t
        cy = c[1] + direction[1] * speed * t
        if k == 6:
            cx += rng.normal(0, 0.01 * size); cy += rng.normal(0, 0.01 * size)
        th = theta0 + (omega * t if k == 4 else -omega * t if k == 5 else 0.0)
        # Clockwise on screen (y grows downwards) is a growing angle; sample the texture backwards.
        dx, dy = x - cx, y - cy
        u = np.cos(th) * dx + np.sin(th) * dy
        v = -np.sin(th) * dx + np.cos(th) * dy
        inside = (np.abs(u) < half) & (np.abs(v) < half)
        n = tex.shape[0]
        tu = np.clip(((u / half + 1) / 2 * n).astype(int), 0, n - 1)
        tv = np.clip(((v / half + 1) / 2 * n).astype(int), 0, n - 1)
        frame = np.where(inside[..., None], tex[tv, tu], bg)
        out[t] = frame + rng.normal(0, noise, frame.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def batch(rng, n, size=32):
    labels = rng.integers(0, len(LABELS), n)
    return np.stack([render(LABELS[l], rng, size) for l in labels]), labels
