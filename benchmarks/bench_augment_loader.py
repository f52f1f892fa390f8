"""Does augmentation starve training? The Train loader with RandAugment + RandomErasing at 224 px against the
resnet50 training step it feeds, on this machine, side by side in one run.

    python benchmarks/bench_augment_loader.py [--batch-size 16] [--batches 3] [--warmup 1] [--rounds 2]
        [--workers 0 1 2] [--write benchmarks/results/augment_loader.md]

Data: 48 JPEG files (quality 90) cut from scikit-image's colour photos (astronaut, chelsea, coffee, rocket,
hubble_deep_field, immunohistochemistry), each a crop of 60-100% of the photo's side resized to a 320-512 px
short side, as a PaddleClas file list with 6 classes. The Train pipeline is PaddleClas's ResNet50_RandAugment
list with ResNet50_RandomErasing's op added: DecodeImage, RandCropImage 224, RandFlipImage,
RandAugment {num_layers 2, magnitude 5}, NormalizeImage, RandomErasing {EPSILON 0.5, sl 0.02, sh 0.4, r1 0.3}.

Rows, in every round (``--rounds``, the order reversed every other round), so that the machine's load falls on
all of them alike:

* ``loader, N workers``: the engine's Train loader (``Engine.build_loader``) alone, images/s over
  ``--loader-batches`` batches after ``--warmup`` batches (the workers' start is in the warm-up).
* ``train step``: the engine's training step alone (``Trainer._forward_backward``: forward, loss, backward,
  Momentum step; ``Global.to_static`` auto, i.e. the static program with oneDNN on the CPU), resnet50 at
  224 px, the same batch size, on one batch held in memory; images/s over ``--batches`` steps after
  ``--warmup`` steps (the program is compiled there).
* ``training, N workers``: both together as training runs them: each step takes the loader's next batch;
  images/s of the whole, and the share of its time spent waiting for a batch.

``loader / step`` is the loader's images/s over the step's: above 1 the loader alone keeps up. On 2 cores the
workers and the step share the cores, so the ``training`` rows are the answer; they are compared with the
step alone (``vs step``: 1.0 means the loader costs training nothing).
"""
import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from paddle_resnet.cpu import cpu_description  # noqa: E402  (after the path)

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
PER_PHOTO = 8
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}}
TRAIN_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"RandCropImage": {"size": 224}},
             {"RandFlipImage": {"flip_code": 1}}, {"RandAugment": {"num_layers": 2, "magnitude": 5}}, NORMALIZE,
             {"RandomErasing": {"EPSILON": 0.5, "sl": 0.02, "sh": 0.4, "r1": 0.3, "mean": [0.0, 0.0, 0.0]}}]
EVAL_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"resize_short": 256}},
            {"CropImage": {"size": 224}}, NORMALIZE]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=3, help="timed batches (steps) per row and round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches (steps) at the start of each row")
    parser.add_argument("--loader-batches", type=int, default=12, help="timed batches per loader-alone row")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--write", default=None, help="also write the tables as markdown to this file")
    return parser.parse_args()


def write_photos(root):
    """PER_PHOTO JPEGs per photo (a class each) and train_list.txt; returns the number of files."""
    import numpy as np
    from PIL import Image
    from skimage import data
    from paddle_resnet.data.datasets import CLASS_INDICES_FILE, write_class_indices
    rng = np.random.default_rng(0)
    lines = []
    for label, name in enumerate(PHOTOS):
        photo = Image.fromarray(getattr(data, name)()).convert("RGB")
        for i in range(PER_PHOTO):
            side = int(min(photo.size) * rng.uniform(0.6, 1.0))
            x, y = (int(rng.integers(0, extent - side + 1)) for extent in photo.size)
            short = int(rng.integers(320, 513))
            crop = photo.crop((x, y, x + side, y + side)).resize((short, short), Image.BILINEAR)
            file_name = f"{name}_{i}.jpg"
            crop.save(os.path.join(root, file_name), quality=90)
            lines.append(f"{file_name} {label}")
    with open(os.path.join(root, "train_list.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    write_class_indices(os.path.join(root, CLASS_INDICES_FILE), list(PHOTOS))
    return len(lines)


def engine_for(root, workers, args, output_dir):
    from paddle_resnet.config import validate
    from paddle_resnet.engine import Engine
    dataset = {"name": "ImageNetDataset", "image_root": root, "cls_label_path": os.path.join(root, "train_list.txt")}
    config = {
        "Global": {"output_dir": output_dir, "epochs": 1, "device": "cpu", "use_visualdl": False,
                   "eval_during_train": False},
        "Arch": {"name": args.model, "class_num": len(PHOTOS)},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.1},
                      "regularizer": {"name": "L2", "coeff": 1e-4}},
        "DataLoader": {
            "Train": {"dataset": {**dataset, "transform_ops": TRAIN_OPS},
                      "sampler": {"batch_size": args.batch_size, "shuffle": True, "drop_last": True},
                      "loader": {"num_workers": workers}},
            "Eval": {"dataset": {**dataset, "transform_ops": EVAL_OPS}, "sampler": {"batch_size": args.batch_size}},
        },
    }
    return Engine(validate(config))


def batches_forever(loader):
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def time_loader(engine, workers, args):
    """Images/s of the Train loader alone."""
    batches = batches_forever(loader_with(engine, workers))
    for _ in range(args.warmup):
        next(batches)
    started = time.perf_counter()
    for _ in range(args.loader_batches):
        next(batches)
    seconds = time.perf_counter() - started
    batches.close()
    return args.loader_batches * args.batch_size / seconds, 0.0


def time_training(trainer, loader, args):
    """Images/s of training steps fed by ``loader`` (None: one batch held in memory), and the share of the time
    spent waiting for batches."""
    batches = batches_forever(loader) if loader is not None else None
    held = next(batches_forever(trainer.train_loader)) if loader is None else None
    waited = 0.0
    for step in range(args.warmup + args.batches):
        if step == args.warmup:
            started, waited = time.perf_counter(), 0.0
        asked = time.perf_counter()
        images, target, _ = next(batches) if batches is not None else held
        waited += time.perf_counter() - asked
        loss, _ = trainer._forward_backward(images, target, step, 10**9)
        float(loss)  # waits for the step to finish
    seconds = time.perf_counter() - started
    if batches is not None:
        batches.close()
    return args.batches * args.batch_size / seconds, waited / seconds


def main():
    args = parse_args()
    import logging
    logging.disable(logging.INFO)  # the engine's own lines; warnings still show
    with tempfile.TemporaryDirectory(prefix="bench_augment_loader_") as scratch:
        count = write_photos(scratch)
        engine = engine_for(scratch, 0, args, os.path.join(scratch, "out"))
        trainer = engine.trainer()
        trainer._train_mode(trainer.net)
        rows = {f"loader, {w} workers": (lambda w=w: time_loader(engine, w, args)) for w in args.workers}
        rows["train step"] = lambda: time_training(trainer, None, args)
        rows.update({f"training, {w} workers": (lambda w=w: time_training(trainer, loader_with(engine, w), args))
                     for w in args.workers})
        measured = {name: [] for name in rows}
        for round_index in range(args.rounds):
            order = list(rows) if round_index % 2 == 0 else list(reversed(rows))
            for name in order:
                measured[name].append(rows[name]())
                print(f"round {round_index + 1}: {name}: {measured[name][-1][0]:.1f} images/s", flush=True)
    tables = report(measured, args, count)
    print(tables)
    if args.write:
        write_markdown(args, tables, count)


def loader_with(engine, workers):
    engine.config["DataLoader"]["Train"]["loader"]["num_workers"] = workers
    return engine.build_loader("Train")


def report(measured, args, count):
    ips = {name: statistics.median(v[0] for v in values) for name, values in measured.items()}
    wait = {name: statistics.median(v[1] for v in values) for name, values in measured.items()}
    step = ips["train step"]
    lines = [f"resnet50 training step at 224 px, batch {args.batch_size}: {step:.1f} images/s "
             f"(median of {args.rounds} rounds of {args.batches} steps)", "",
             "| workers | loader alone, images/s | loader / step | training with the loader, images/s | "
             "vs step alone | time waiting for batches |", "| --- | --- | --- | --- | --- | --- |"]
    for w in args.workers:
        loader, training = ips[f"loader, {w} workers"], ips[f"training, {w} workers"]
        lines.append(f"| {w} | {loader:.1f} | {loader / step:.2f} | {training:.1f} | {training / step:.2f} | "
                     f"{wait[f'training, {w} workers'] * 100:.0f}% |")
    lines += ["", "per round (images/s): " + "; ".join(
        f"{name} " + " ".join(f"{v[0]:.1f}" for v in values) for name, values in measured.items())]
    return "\n".join(lines)


def write_markdown(args, tables, count):
    command = "python " + " ".join(["benchmarks/bench_augment_loader.py"] + sys.argv[1:])
    text = "\n".join([
        "# Train loader with RandAugment + RandomErasing against the resnet50 step (224 px)", "",
        f"- command: `{command}`",
        f"- date: {datetime.date.today().isoformat()}",
        f"- CPU: {cpu_description()} ({os.cpu_count()} cores visible); load average at the end "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (other jobs share the machine)",
        f"- data: {count} JPEGs cut from scikit-image's colour photos (320-512 px); pipeline: DecodeImage, "
        f"RandCropImage 224, RandFlipImage, RandAugment (2, 5), NormalizeImage, RandomErasing (0.5)", "",
        tables, ""])
    with open(args.write, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
