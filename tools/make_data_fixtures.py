#!/usr/bin/env python3
"""Writes the data fixtures of tests/test_data.c in the official formats, by
hand, with pixel values given by formulas the test repeats:

  idx/train-images-idx3-ubyte.gz, idx/train-labels-idx1-ubyte.gz   20 images 28x28, gzip
  idx/t10k-images-idx3-ubyte, idx/t10k-labels-idx1-ubyte           10 images, plain
      pixel (n, y, x) = (n * 31 + y * 7 + x * 3) % 256; label n = n % 10
  idx/bad_magic-idx3-ubyte, idx/truncated-idx3-ubyte.gz, idx/short-labels-idx1-ubyte
  cifar10/data_batch_1..5.bin (1 record each), cifar10/test_batch.bin (2 records)
      pixel (r, c, p) = (r * 17 + c * 85 + p) % 256, label = r % 10 (r counted over all files)
  cifar100/train.bin (2 records), cifar100/test.bin (1): coarse = 19 - r % 20, fine = (r * 7) % 100
  cifar10_bad/...: data_batch_3.bin with a partial record
  img/gray.png 5x4 gray, img/rgb.png 3x2 RGB, img/rgba.png 2x2 RGBA, img/palette.png 3x1 palette,
  img/gray16.png 2x1 16-bit gray, img/smooth.jpg 16x16 RGB (cjpeg -quality 100 -sample 1x1: within a few levels),
  img/corrupt.jpg (smooth.jpg cut in half), img/truncated.png, img/not_an_image.png

Needs cjpeg (Debian: libjpeg-turbo-progs) for the JPEG only.
Run from the repository root:  /usr/bin/python3 tools/make_data_fixtures.py
"""
import gzip
import json
import os
import struct
import subprocess
import zlib

OUT = "tests/fixtures/data"


def idx_images(n, rows=28, cols=28):
    px = bytes((i * 31 + y * 7 + x * 3) % 256 for i in range(n) for y in range(rows) for x in range(cols))
    return struct.pack(">IIII", 0x803, n, rows, cols) + px


def idx_labels(n):
    return struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))


def cifar_record(r, cifar100):
    px = bytes((r * 17 + c * 85 + p) % 256 for c in range(3) for p in range(1024))
    if cifar100:
        return bytes([19 - r % 20, (r * 7) % 100]) + px
    return bytes([r % 10]) + px


def png(path, width, height, color_type, rows, bit_depth=8, palette=None):
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + r for r in rows)
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette:
        body += chunk(b"PLTE", palette)
    body += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + body)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    write(f"{OUT}/idx/train-images-idx3-ubyte.gz", gzip.compress(idx_images(20), mtime=0))
    write(f"{OUT}/idx/train-labels-idx1-ubyte.gz", gzip.compress(idx_labels(20), mtime=0))
    write(f"{OUT}/idx/t10k-images-idx3-ubyte", idx_images(10))
    write(f"{OUT}/idx/t10k-labels-idx1-ubyte", idx_labels(10))
    write(f"{OUT}/idx/bad_magic-idx3-ubyte", struct.pack(">IIII", 0x802, 1, 2, 2) + bytes(4))
    write(f"{OUT}/idx/truncated-idx3-ubyte.gz", gzip.compress(idx_images(3)[:-100], mtime=0))
    write(f"{OUT}/idx/short-labels-idx1-ubyte", idx_labels(19))

    r = 0
    for b in range(1, 6):
        write(f"{OUT}/cifar10/data_batch_{b}.bin", cifar_record(r, False))
        r += 1
    write(f"{OUT}/cifar10/test_batch.bin", b"".join(cifar_record(k, False) for k in range(2)))
    write(f"{OUT}/cifar100/train.bin", b"".join(cifar_record(k, True) for k in range(2)))
    write(f"{OUT}/cifar100/test.bin", cifar_record(0, True))
    write(f"{OUT}/cifar10_bad/data_batch_1.bin", cifar_record(0, False) + cifar_record(1, False)[:1000])

    os.makedirs(f"{OUT}/img", exist_ok=True)
    png(f"{OUT}/img/gray.png", 5, 4, 0, [bytes((y * 5 + x) * 12 for x in range(5)) for y in range(4)])
    png(f"{OUT}/img/rgb.png", 3, 2, 2, [bytes((y * 3 + x) * 10 + c for x in range(3) for c in range(3))
                                        for y in range(2)])
    # RGBA: opaque pixels keep their color, a transparent one composites to black
    png(f"{OUT}/img/rgba.png", 2, 2, 6, [bytes([200, 100, 50, 255, 10, 20, 30, 255]),
                                         bytes([1, 2, 3, 255, 250, 250, 250, 0])])
    png(f"{OUT}/img/palette.png", 3, 1, 3, [bytes([2, 0, 1])], palette=bytes([255, 0, 0, 0, 255, 0, 0, 0, 255]))
    png(f"{OUT}/img/gray16.png", 2, 1, 0, [struct.pack(">HH", 0x1234, 0xFFFF)], bit_depth=16)
    ppm = b"P6\n16 16\n255\n" + bytes(min(255, x * 16 + c * 40) if c < 2 else min(255, y * 16)
                                     for y in range(16) for x in range(16) for c in range(3))
    jpg = subprocess.run(["cjpeg", "-quality", "100", "-sample", "1x1"], input=ppm, capture_output=True, check=True).stdout
    write(f"{OUT}/img/smooth.jpg", jpg)
    write(f"{OUT}/img/corrupt.jpg", jpg[:len(jpg) // 2])
    good = open(f"{OUT}/img/gray.png", "rb").read()
    write(f"{OUT}/img/truncated.png", good[:len(good) - 20])
    write(f"{OUT}/img/not_an_image.png", b"this is text, not a PNG\n")
    folders(jpg)


def rgb_png(path, w, h, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    png(path, w, h, 2, [bytes((seed * 37 + y * 11 + x * 5 + c * 60) % 256 for x in range(w) for c in range(3))
                        for y in range(h)])


def folders(jpg):
    """Image folders and a Visual Decathlon tree, good and broken."""
    base = f"{OUT}/imagefolder"
    for split, n in (("train", 2), ("val", 1)):
        for ci, cls in enumerate(("ant", "bee", "cat")):
            for i in range(n):
                rgb_png(f"{base}/{split}/{cls}/{i}.png", 4 + ci, 3, ci * 10 + i + (5 if split == "val" else 0))
    write(f"{base}/train/bee/2.jpg", jpg)  # JPEG beside PNG: 3 bee images in train
    os.makedirs(f"{base}/train/cat", exist_ok=True)
    png(f"{base}/train/cat/gray.png", 2, 2, 0, [bytes([0, 50]), bytes([100, 150])])  # gray: replicated to RGB
    write(f"{base}/train/ant/notes.txt", b"not an image: ignored\n")
    rgb_png(f"{OUT}/imagefolder_missing/train/ant/0.png", 2, 2, 1)
    rgb_png(f"{OUT}/imagefolder_missing/train/bee/0.png", 2, 2, 2)
    rgb_png(f"{OUT}/imagefolder_missing/val/ant/0.png", 2, 2, 3)
    write(f"{OUT}/imagefolder_corrupt/train/ant/0.jpg", jpg[:len(jpg) // 2])
    rgb_png(f"{OUT}/imagefolder_corrupt/val/ant/0.png", 2, 2, 4)

    dec = f"{OUT}/decathlon"
    domains = {"alpha": [(10002, "two"), (10001, "one")], "beta": [(5, "only")]}
    for d, cats in domains.items():
        for split, n in (("train", 3), ("val", 2)):
            images, anns = [], []
            for i in range(n):
                fn = f"data/{d}/{split}/{i:07d}.png"
                rgb_png(f"{dec}/{fn}", 6, 4, len(d) + i)
                iid = 1000 * (1 if split == "train" else 2) + i
                images.append({"id": iid, "file_name": fn, "width": 6, "height": 4})
                anns.append({"id": iid, "image_id": iid, "category_id": cats[i % len(cats)][0]})
            doc = {"images": images, "annotations": anns,
                   "categories": [{"id": c, "name": nm} for c, nm in cats]}
            write(f"{dec}/annotations/{d}_{split}.json", json.dumps(doc).encode())
    write(f"{dec}/annotations/broken_train.json", b'{"images": [')
    write(f"{dec}/annotations/broken_val.json", b'{}')
    doc = {"images": [{"id": 1, "file_name": "data/gone/train/0000001.png"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 7}], "categories": [{"id": 7, "name": "x"}]}
    write(f"{dec}/annotations/gone_train.json", json.dumps(doc).encode())
    write(f"{dec}/annotations/gone_val.json", json.dumps(doc).encode())
    # categories without an id or with a repeated one (once a double free), and
    # file names that leave the data root (refused, never read)
    ok_image = {"images": [{"id": 1, "file_name": "data/alpha/train/0000000.png"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 7}]}
    bad = {"noid": [{"name": "x"}], "dupid": [{"id": 7, "name": "x"}, {"id": 7, "name": "y"}]}
    for name, cats in bad.items():
        write(f"{dec}/annotations/{name}_train.json", json.dumps(dict(ok_image, categories=cats)).encode())
        write(f"{dec}/annotations/{name}_val.json", json.dumps(dict(ok_image, categories=cats)).encode())
    for name, fn in (("escape", "../imagefolder/train/ant/0.png"), ("absolute", "/etc/passwd")):
        doc = {"images": [{"id": 1, "file_name": fn}],
               "annotations": [{"id": 1, "image_id": 1, "category_id": 7}], "categories": [{"id": 7, "name": "x"}]}
        write(f"{dec}/annotations/{name}_train.json", json.dumps(doc).encode())
        write(f"{dec}/annotations/{name}_val.json", json.dumps(doc).encode())


if __name__ == "__main__":
    main()
