"""Does PaddleClas's augmentation help where a small training set overfits? Baseline against augmented recipes
on scikit-learn's digits, trained with this suite's own Engine from configs built here.

    python benchmarks/bench_augment.py [--seeds 0 1 2] [--per-class 20] [--passes 20] [--recipes ...]
        [--write benchmarks/results/augment.md]

Data: scikit-learn's ``load_digits`` (1,797 8x8 images, 16 grey levels, 10 classes), upscaled to 32x32
(bilinear) and written as RGB PNG files with PaddleClas lists (``ImageNetDataset``). The training set is the
first ``--per-class`` images of each digit in a fixed shuffle (seed 0), the held-out set the next
``--heldout-per-class``: the same for every run. train_list.txt lists each training image ``--repeats`` times
(each listing draws its own augmentation), so that an epoch is that many passes and the per-epoch work
(checkpoint, curves) does not dominate. With 20 images per digit, a resnet18 ends near 100% training
accuracy while the held-out top-1 stays lower: it overfits.

Every recipe trains the same model (resnet18, random init), optimizer (PaddleClas's DataAugment recipe:
Momentum 0.9, L2 1e-4, Cosine from lr 0.1 for a batch of 256, no warmup; scaled linearly to the batch here,
``Optimizer.lr.base_batch_size: 256``), batch size, passes and base pipeline, and differs only by the
augmentation a PaddleClas DataAugment config adds, with that config's arguments:

* ``baseline``: DecodeImage, NormalizeImage. No flip or random crop, which PaddleClas's ImageNet baseline
  has: a mirrored digit is another digit, and a crop of 8% of a digit is no digit.
* ``randaugment``: + ``RandAugment {num_layers: 2, magnitude: 5}`` before NormalizeImage (ResNet50_RandAugment).
* ``random_erasing``: + ``RandomErasing {EPSILON: 0.5, sl: 0.02, sh: 0.4, r1: 0.3, mean: [0, 0, 0]}`` after
  NormalizeImage (ResNet50_RandomErasing).
* ``mixup``: + batch op ``MixupOperator {alpha: 0.2}`` (ResNet50_Mixup), scored with ``CELoss`` as PaddleClas
  2.6 scores it: the soft target goes through a softmax first (PaddleClas's bug, matched by default here).
* ``mixup_fixed_loss``: the same with ``CELoss {softmax_soft_target: false}``, the mixup target as it is.

Each recipe runs once per seed (``Global.seed``: weights, sampling order and augmentation draws), seed by seed
so that the machine's load falls on every recipe alike; the held-out top-1 is measured once, after the last
epoch (no best-epoch selection). The table gives the mean, the spread (min..max) over seeds, the mean
difference from the baseline, and the last epoch's training loss and top-1 (against the first labels of a
mixed batch). A recipe whose mean lies inside the baseline's min..max is reported as no measurable effect.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from paddle_resnet.cpu import cpu_description  # noqa: E402  (after the path)

SIZE = 32
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}}
DECODE = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
RECIPES = {
    "baseline": {"ops": [DECODE, NORMALIZE]},
    "randaugment": {"ops": [DECODE, {"RandAugment": {"num_layers": 2, "magnitude": 5}}, NORMALIZE]},
    "random_erasing": {"ops": [DECODE, NORMALIZE, {"RandomErasing": {"EPSILON": 0.5, "sl": 0.02, "sh": 0.4,
                                                                      "r1": 0.3, "mean": [0.0, 0.0, 0.0]}}]},
    "mixup": {"ops": [DECODE, NORMALIZE], "batch_ops": [{"MixupOperator": {"alpha": 0.2}}]},
    "mixup_fixed_loss": {"ops": [DECODE, NORMALIZE], "batch_ops": [{"MixupOperator": {"alpha": 0.2}}],
                         "loss": [{"CELoss": {"weight": 1.0, "softmax_soft_target": False}}]},
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, default=20, help="training images per class")
    parser.add_argument("--passes", type=int, default=20, help="passes over the training images")
    parser.add_argument("--repeats", type=int, default=5,
                        help="times train_list.txt lists each image: an epoch is that many passes")
    parser.add_argument("--heldout-per-class", type=int, default=50, help="held-out images per class")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--write", default=None, help="also write the table as markdown to this file")
    return parser.parse_args()


def write_digits(root, per_class, heldout_per_class, repeats):
    """PNG files of the first ``per_class`` (training) and next ``heldout_per_class`` (held-out) images of each
    digit in a fixed shuffle, and their PaddleClas lists: train_list.txt names every training image ``repeats``
    times (each listing draws its own augmentation), heldout_list.txt each held-out image once."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from paddle_resnet.data.datasets import CLASS_INDICES_FILE, write_class_indices
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    lists, taken = {"train": [], "heldout": []}, {label: 0 for label in range(10)}
    os.makedirs(root, exist_ok=True)
    for index in order:
        label = int(digits.target[index])
        taken[label] += 1
        if taken[label] > per_class + heldout_per_class:
            continue
        pixels = (digits.images[index] * (255.0 / 16.0)).round().astype(np.uint8)
        file_name = f"{index:04d}.png"
        Image.fromarray(pixels).resize((SIZE, SIZE), Image.BILINEAR).convert("RGB").save(os.path.join(root, file_name))
        lists["train" if taken[label] <= per_class else "heldout"].append(f"{file_name} {label}")
    for split, lines in lists.items():
        with open(os.path.join(root, f"{split}_list.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines * (repeats if split == "train" else 1)) + "\n")
    write_class_indices(os.path.join(root, CLASS_INDICES_FILE), [str(label) for label in range(10)])
    return {split: len(lines) for split, lines in lists.items()}


def recipe_config(recipe, data, output_dir, seed, args):
    spec = RECIPES[recipe]
    epochs = max(args.passes // args.repeats, 1)
    loss = spec.get("loss", [{"CELoss": {"weight": 1.0}}])
    train_dataset = {"name": "ImageNetDataset", "image_root": data, "cls_label_path": os.path.join(data, "train_list.txt"),
                     "transform_ops": spec["ops"]}
    if "batch_ops" in spec:
        train_dataset["batch_transform_ops"] = spec["batch_ops"]
    return {
        "Global": {"output_dir": output_dir, "epochs": epochs, "eval_interval": epochs, "device": "cpu",
                   "seed": seed, "image_shape": [3, SIZE, SIZE], "use_visualdl": False, "save_interval": 0,
                   "print_batch_step": 1000},
        "Arch": {"name": args.model, "class_num": 10},
        "Loss": {"Train": loss, "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": 0.1, "base_batch_size": 256},
                      "regularizer": {"name": "L2", "coeff": 1e-4}},
        "DataLoader": {
            "Train": {"dataset": train_dataset, "sampler": {"batch_size": args.batch_size, "shuffle": True},
                      "loader": {"num_workers": 0}},
            "Eval": {"dataset": {"name": "ImageNetDataset", "image_root": data,
                                 "cls_label_path": os.path.join(data, "heldout_list.txt"),
                                 "transform_ops": [DECODE, NORMALIZE]},
                     "sampler": {"batch_size": 128, "shuffle": False}, "loader": {"num_workers": 0}},
        },
        "Metric": {"Train": [{"TopkAcc": {"topk": [1]}}], "Eval": [{"TopkAcc": {"topk": [1]}}]},
    }


def run_one(recipe, data, seed, args, scratch):
    """Trains one recipe with one seed; -> held-out top-1, last epoch's train loss and top-1, seconds."""
    from paddle_resnet.config import validate
    from paddle_resnet.engine import Engine
    output_dir = os.path.join(scratch, f"{recipe}_seed{seed}")
    started = time.perf_counter()
    Engine(validate(recipe_config(recipe, data, output_dir, seed, args))).train()
    seconds = time.perf_counter() - started
    with open(os.path.join(output_dir, "training_curves.json"), encoding="utf-8") as f:
        curves = json.load(f)
    return {"heldout_top1": curves["eval_top1"][-1], "train_loss": curves["train_loss"][-1],
            "train_top1": curves["train_top1"][-1], "seconds": seconds}


def summary_rows(results, recipes):
    base = statistics.mean(r["heldout_top1"] for r in results["baseline"]) if "baseline" in results else None
    base_range = ((min(r["heldout_top1"] for r in results["baseline"]),
                   max(r["heldout_top1"] for r in results["baseline"])) if base is not None else None)
    rows = []
    for recipe in recipes:
        runs = results[recipe]
        top1 = [r["heldout_top1"] for r in runs]
        mean = statistics.mean(top1)
        delta = None if base is None or recipe == "baseline" else mean - base
        verdict = ""
        if delta is not None:
            inside = base_range[0] <= mean <= base_range[1]
            verdict = "no measurable effect" if inside else ("helps" if delta > 0 else "hurts")
        rows.append({"recipe": recipe, "mean": mean, "low": min(top1), "high": max(top1), "delta": delta,
                     "verdict": verdict, "seeds": " ".join(f"{t * 100:.1f}" for t in top1),
                     "train_loss": statistics.mean(r["train_loss"] for r in runs),
                     "train_top1": statistics.mean(r["train_top1"] for r in runs),
                     "seconds": statistics.mean(r["seconds"] for r in runs)})
    return rows


def markdown_table(rows):
    lines = ["| recipe | held-out top-1, mean | min..max | per seed | vs baseline | verdict | "
             "last-epoch train loss | train top-1 | s/run |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        delta = "" if r["delta"] is None else f"{r['delta'] * 100:+.1f}"
        lines.append(f"| {r['recipe']} | {r['mean'] * 100:.1f}% | {r['low'] * 100:.1f}..{r['high'] * 100:.1f} | "
                     f"{r['seeds']} | {delta} | {r['verdict']} | {r['train_loss']:.3f} | "
                     f"{r['train_top1'] * 100:.1f}% | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main():
    args = parse_args()
    import logging
    logging.disable(logging.INFO)  # the engine's per-epoch lines; warnings still show
    with tempfile.TemporaryDirectory(prefix="bench_augment_") as scratch:
        data = os.path.join(scratch, "digits")
        counts = write_digits(data, args.per_class, args.heldout_per_class, args.repeats)
        print(f"digits: {counts['train']} training images, {counts['heldout']} held out, {SIZE}x{SIZE}")
        results = {recipe: [] for recipe in args.recipes}
        started = time.perf_counter()
        for seed in args.seeds:  # seed-major: load from other processes falls on every recipe alike
            for recipe in args.recipes:
                result = run_one(recipe, data, seed, args, scratch)
                results[recipe].append(result)
                print(f"{recipe:18s} seed {seed}: held-out top-1 {result['heldout_top1'] * 100:.1f}%  "
                      f"train loss {result['train_loss']:.3f} top-1 {result['train_top1'] * 100:.1f}%  "
                      f"{result['seconds']:.0f} s", flush=True)
        total = time.perf_counter() - started
    table = markdown_table(summary_rows(results, args.recipes))
    print(table)
    print(f"total {total:.0f} s")
    if args.write:
        write_markdown(args, table, counts, total)


def write_markdown(args, table, counts, total):
    command = "python " + " ".join(["benchmarks/bench_augment.py"] + sys.argv[1:])
    setup = (f"{args.model}, {args.passes} passes ({args.passes // args.repeats} epochs of {args.repeats}), batch "
             f"{args.batch_size}, lr 0.1 x {args.batch_size}/256; {counts['train']} training images "
             f"({args.per_class} per digit), {counts['heldout']} held out")
    text = "\n".join([
        "# Augmentation on a small training set (scikit-learn digits)", "",
        f"- command: `{command}`",
        f"- date: {datetime.date.today().isoformat()}",
        f"- CPU: {cpu_description()} ({os.cpu_count()} cores visible); load average at the end "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (other jobs share the machine)",
        f"- setup: {setup}; seeds {' '.join(map(str, args.seeds))}; total {total / 60:.1f} min", "",
        table, ""])
    with open(args.write, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
