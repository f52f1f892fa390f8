"""Fuzzing DecodeImage: seeded mutations of real PNG/JPEG/TIFF/GIF/WebP files (scikit-image's photos) either
decode to a uint8 HxWx3 image or raise ImageDecodeError (the skip-with-reason error), never anything else,
never a hang, never a decompression bomb that PIL only warns about."""
import contextlib
import io
import signal
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data as photos

from paddle_resnet.data.transforms import MAX_IMAGE_PIXELS, DecodeImage, ImageDecodeError

SECONDS_PER_CASE = 20  # a hang, not a slow case: a 50M-pixel 16-bit image takes ~3 s here
EXTREME_VALUES = (0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 100_000, 0x7FFFFFFF, 0xFFFFFFFF)


def _seed_files():
    """Small crops of the photos in every format and pixel layout the decoder handles, as encoded bytes."""
    rgb, gray = photos.astronaut()[100:148, 150:190], photos.camera()[100:140, 200:248]
    gray16 = Image.fromarray(gray.astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: rotate
    files = []

    def add(image, fmt, **options):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        files.append((fmt, buffer.getvalue()))

    add(Image.fromarray(rgb), "PNG")
    add(Image.fromarray(gray), "PNG")
    add(gray16, "PNG")
    add(Image.fromarray(rgb).convert("P"), "PNG")
    add(Image.fromarray(rgb), "JPEG", quality=80, exif=exif)
    add(Image.fromarray(gray), "JPEG", progressive=True)
    add(Image.fromarray(rgb), "TIFF")
    add(gray16, "TIFF")
    add(Image.fromarray(rgb), "TIFF", compression="tiff_deflate", exif=exif)
    add(Image.fromarray(rgb).convert("P"), "GIF")
    add(Image.fromarray(rgb), "WEBP", lossless=True)
    add(Image.fromarray(rgb), "WEBP", quality=70)
    return files


def _png_with_size(png, width, height):
    """``png`` declaring another size, with a valid IHDR checksum (so only the size is wrong)."""
    ihdr = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def _tiff_entries(data):
    """Offsets of the first IFD's 12-byte entries (little-endian TIFF, as PIL writes it)."""
    ifd = struct.unpack_from("<I", data, 4)[0]
    return [ifd + 2 + 12 * i for i in range(struct.unpack_from("<H", data, ifd)[0])]


def with_declared_size(encoded, fmt, width, height):
    """``encoded`` with its header declaring ``width`` x ``height`` (cut to what the format's fields hold)."""
    if fmt == "PNG":
        return _png_with_size(encoded, width, height)
    data = bytearray(encoded)
    if fmt == "GIF":
        struct.pack_into("<HH", data, 6, width & 0xFFFF, height & 0xFFFF)
    elif fmt == "JPEG":
        start_of_frame = min(i for i in (data.find(b"\xff\xc0"), data.find(b"\xff\xc2")) if i >= 0)
        struct.pack_into(">HH", data, start_of_frame + 5, height & 0xFFFF, width & 0xFFFF)
    elif fmt == "WEBP" and data[12:16] == b"VP8L":
        old = struct.unpack_from("<I", data, 21)[0]
        struct.pack_into("<I", data, 21, (old & ~0xFFFFFFF) | ((width - 1) & 0x3FFF) | ((height - 1) & 0x3FFF) << 14)
    elif fmt == "WEBP":
        struct.pack_into("<HH", data, 26, width & 0x3FFF, height & 0x3FFF)
    elif fmt == "TIFF":
        for entry in _tiff_entries(data):
            tag = struct.unpack_from("<H", data, entry)[0]
            if tag in (256, 257):
                struct.pack_into("<HHII", data, entry, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


# Declared sizes: just above the pixel cap, between it and PIL's own error, far above, slivers, and ordinary.
DECLARED_SIZES = ((9_500, 9_500), (12_000, 12_000), (16_383, 16_383), (65_535, 65_535), (1, 65_535), (65_535, 1),
                  (100_000, 100_000), (1, 4_000_000), (4_000, 3_000), (300, 200))


def mutate(encoded, fmt, rng):
    data = bytearray(encoded)
    kind = int(rng.integers(6))
    if kind == 0:  # bit flips
        for position in rng.integers(0, len(data) * 8, int(rng.integers(1, 9))):
            data[position // 8] ^= 1 << (position % 8)
    elif kind == 1:  # truncation
        del data[int(rng.integers(0, len(data))):]
    elif kind == 2:  # inserted bytes
        at = int(rng.integers(0, len(data)))
        data[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    elif kind == 3:  # a field near the start (size, depth, offset, count) set to an extreme value
        width = int(rng.choice([2, 4]))
        at = int(rng.integers(0, min(len(data), 200) - width))
        value = int(rng.choice(EXTREME_VALUES)) & ((1 << (8 * width)) - 1)
        data[at:at + width] = value.to_bytes(width, "big" if rng.integers(2) else "little")
    elif kind == 4:  # the header declaring another size
        return with_declared_size(encoded, fmt, *DECLARED_SIZES[int(rng.integers(len(DECLARED_SIZES)))])
    elif fmt == "TIFF":  # one tag's type (e.g. strip offsets as floats) or value set to another
        entry = int(rng.choice(_tiff_entries(data)))
        if rng.integers(2):
            struct.pack_into("<H", data, entry + 2, int(rng.integers(1, 13)))
        else:
            struct.pack_into("<I", data, entry + 8, int(rng.choice(EXTREME_VALUES)))
    else:  # a run of bytes overwritten with random ones
        at = int(rng.integers(0, len(data)))
        data[at:at + 16] = rng.integers(0, 256, len(data[at:at + 16]), dtype=np.uint8).tobytes()
    return bytes(data)


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    def on_alarm(signum, frame):
        raise Hang(f"decoding took more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_decodes_or_skips(decode, encoded):
    """-> "decoded" or "skipped"; fails on any other outcome."""
    with warnings.catch_warnings(record=True) as caught, time_limit(SECONDS_PER_CASE):
        warnings.simplefilter("always")
        try:
            image = decode(encoded)
        except ImageDecodeError as error:
            message = str(error)
            assert message and "\n" not in message and len(message) < 500, message
            outcome = "skipped"
        else:
            assert isinstance(image, np.ndarray) and image.dtype == np.uint8, (type(image), image.dtype)
            assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] * image.shape[1] <= MAX_IMAGE_PIXELS
            outcome = "decoded"
    bombs = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert not bombs, f"PIL only warned about a decompression bomb: {bombs[0].message}"
    return outcome


def run_fuzz(n_cases, seed):
    rng = np.random.default_rng(seed)
    files, decode = _seed_files(), DecodeImage()
    outcomes = {"decoded": 0, "skipped": 0}
    for case in range(n_cases):
        fmt, encoded = files[case % len(files)]
        mutated = mutate(encoded, fmt, rng)
        try:
            outcomes[check_decodes_or_skips(decode, mutated)] += 1
        except BaseException as error:
            raise AssertionError(f"case {case} (seed {seed}, {fmt}): {type(error).__name__}: {error}") from error
    return outcomes


def test_a_few_mutated_images_decode_or_are_skipped_with_a_reason():
    outcomes = run_fuzz(200, seed=1)
    assert outcomes["decoded"] > 20 and outcomes["skipped"] > 20, outcomes


@pytest.mark.slow
def test_thousands_of_mutated_images_decode_or_are_skipped_with_a_reason():
    outcomes = run_fuzz(4000, seed=2)
    assert outcomes["decoded"] > 400 and outcomes["skipped"] > 400, outcomes


if __name__ == "__main__":
    import sys
    print(run_fuzz(int(sys.argv[1]), int(sys.argv[2])))
