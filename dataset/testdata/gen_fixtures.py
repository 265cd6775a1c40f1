#!/usr/bin/python3
"""Regenerates the NumPy/PIL fixtures used by the dataset package's tests.

Run with a Python that has numpy and Pillow:  /usr/bin/python3 gen_fixtures.py
The Go tests recompute the same formulas; they never run Python.
"""
import numpy as np
from PIL import Image

# Images: x[n, h, w, c] = (n*60 + h*12 + w*3 + c) % 256, 3 samples of 4x5x3 (NHWC).
n, h, w, c = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), np.arange(3), indexing="ij")
x_nhwc = ((n * 60 + h * 12 + w * 3 + c) % 256).astype(np.uint8)
y = np.array([2, 0, 1], dtype=np.int64)
np.savez("numpy_nhwc_u8.npz", x=x_nhwc, y=y)
np.savez_compressed("numpy_nchw_f64_compressed.npz",
                    x=(x_nhwc.transpose(0, 3, 1, 2) / 255.0).astype(np.float64),
                    y=y.astype(np.int32))
np.save("numpy_x_f32.npy", (x_nhwc.transpose(0, 3, 1, 2) / 255.0).astype(np.float32))
np.save("numpy_y_u8.npy", y.astype(np.uint8))
np.save("numpy_big_endian_f4.npy", np.array([[0.25, 0.5], [0.75, 1.0]], dtype=">f4"))

# Resize golden: a 13 wide x 9 high RGB image, p[y, x, ch] = (y*29 + x*17 + ch*50) % 256,
# resized (PIL bilinear, as torchvision.transforms.Resize(6)) to shorter side 6
# then center-cropped to 5 (torchvision.transforms.CenterCrop(5)).
yy, xx, cc = np.meshgrid(np.arange(9), np.arange(13), np.arange(3), indexing="ij")
src = ((yy * 29 + xx * 17 + cc * 50) % 256).astype(np.uint8)
Image.fromarray(src, "RGB").save("resize_src.png")
img = Image.open("resize_src.png").convert("RGB")
w0, h0 = img.size
short, long_ = (w0, h0) if w0 <= h0 else (h0, w0)
new_short, new_long = 6, int(6 * long_ / short)
size = (new_short, new_long) if w0 <= h0 else (new_long, new_short)
r = img.resize(size, Image.BILINEAR)
rw, rh = r.size
top, left = int(round((rh - 5) / 2.0)), int(round((rw - 5) / 2.0))
crop = np.asarray(r.crop((left, top, left + 5, top + 5)))
np.save("resize_golden_u8.npy", np.ascontiguousarray(crop.transpose(2, 0, 1)))
