#!/usr/bin/python3
"""Regenerates the torchvision preprocessing fixture of the dataset package.

Run once, from this directory, with Debian's python3-torchvision (0.14) and
python3-pil:    /usr/bin/python3 gen_torchvision.py

It writes the source images torchvision/*.{png,jpg} and, for every line of
torchvision/cases.txt, torchvision's output as uint8 CHW arrays in
torchvision/expected.npz (key "case<line index>"). The Go test
(TestTorchvisionFixture) decodes the same files with robust's loader and
compares, without running Python.
"""
import os

import numpy as np
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

assert torchvision.__version__.startswith("0.14"), torchvision.__version__
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision"))


def grid(h, w):
    return np.meshgrid(np.arange(h), np.arange(w), indexing="ij")


# Landscape RGB with fine detail (stripes, a checkerboard) that
# antialiasing must average away.
y, x = grid(97, 157)
land = np.stack([(x * 5 + y * 3) % 256,
                 ((x // 3 + y // 3) % 2) * 200 + 20,
                 (128 + 100 * np.sin(x / 4.0) * np.cos(y / 7.0))], -1)
Image.fromarray(land.clip(0, 255).astype(np.uint8), "RGB").save("landscape.png")
# Portrait RGB.
y, x = grid(131, 83)
por = np.stack([(y * 2) % 256, (x * 7) % 256, ((x + y) % 9) * 28], -1)
Image.fromarray(por.astype(np.uint8), "RGB").save("portrait.png")
# Grayscale (mode L), converted to RGB by the loader.
y, x = grid(64, 64)
Image.fromarray(((x * x + y * 3) % 256).astype(np.uint8), "L").save("gray.png")
# RGBA with varying alpha: convert("RGB") drops alpha without blending.
y, x = grid(50, 70)
rgba = np.stack([x * 3, y * 5, (x * y) % 256, (x * 4 + y) % 256], -1)
Image.fromarray(rgba.astype(np.uint8), "RGBA").save("alpha.png")
# A smooth JPEG (chroma varies slowly, so decoders' chroma upsampling agrees).
y, x = grid(90, 120)
smooth = np.stack([x * 2, y * 2.5, 255 - x - y], -1)
Image.fromarray(smooth.clip(0, 255).astype(np.uint8), "RGB").save("smooth.jpg", quality=95)
# A small image: resizing enlarges it.
y, x = grid(30, 20)
small = np.stack([x * 12, y * 8, ((x + y) % 2) * 255], -1)
Image.fromarray(small.astype(np.uint8), "RGB").save("small.png")

out = {}
with open("cases.txt") as f:
    lines = [l.split() for l in f if l.strip() and not l.startswith("#")]
for k, case in enumerate(lines):
    img = Image.open(case[1]).convert("RGB")
    if case[0] == "center":
        r, c = int(case[2]), int(case[3])
        res = T.Compose([T.Resize(r), T.CenterCrop(c)])(img)
    else:
        top, left, h, w, size = map(int, case[2:7])
        res = F.resized_crop(img, top, left, h, w, [size, size])
    out["case%d" % k] = np.ascontiguousarray(np.asarray(res).transpose(2, 0, 1))
np.savez("expected.npz", **out)
