"""Class imbalance, measured: macro-F1 of a plain run against balanced runs on data made imbalanced on purpose.

    python benchmarks/bench_imbalance.py [--seeds 0 1 2] [--epochs 12] [--rare 2 5 8] [--keep 0.05]
        [--out output/bench_imbalance]

scikit-learn's 1,797 handwritten digits (8x8, ``sklearn.datasets.load_digits``) are written as 16x16 PNG files;
a stratified 30% of each class is the test set (balanced, untouched). The training set keeps every image of
seven classes and ``--keep`` (5%) of the ``--rare`` classes' images. ResNet-18 is trained on it, per seed, with:

* ``plain``: CELoss, the usual sampler;
* ``class_weights``: ``CELoss: {class_weights: auto}`` (inverse class frequency);
* ``balanced_sampler``: ``sampler.name: ClassBalancedSampler, power: 1``;
* ``focal``: ``FocalLoss: {gamma: 2, class_weights: auto}``.

Each final model is evaluated on the test set through ``Engine.predictions`` and the report's metrics
(engine/report.py); the table gives the macro-F1 and the recall of the rare classes per run, and the mean.
"""
import argparse
import datetime
import os
import statistics
import sys
import time

import numpy as np
from PIL import Image

from paddle_resnet.cpu import cpu_description
from paddle_resnet.config import validate
from paddle_resnet.engine import Engine
from paddle_resnet.engine.report import summarize

VARIANTS = {
    "plain": ({"CELoss": {}}, {}),
    "class_weights": ({"CELoss": {"class_weights": "auto"}}, {}),
    "balanced_sampler": ({"CELoss": {}}, {"name": "ClassBalancedSampler", "power": 1.0}),
    "focal": ({"FocalLoss": {"gamma": 2.0, "class_weights": "auto"}}, {}),
}
OPS = [{"DecodeImage": {"to_rgb": True, "channels": 1}},
       {"NormalizeImage": {"scale": 1.0 / 255, "mean": [0.5], "std": [0.5], "order": ""}}, {"ToCHWImage": None}]


def write_data(root, rare, keep, seed=0):
    """PNG files and train/test lists of the digits; returns the train count per class."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(seed)
    lines = {"train": [], "test": []}
    for digit in range(10):
        index = rng.permutation(np.flatnonzero(digits.target == digit))
        n_test = round(0.3 * len(index))
        train = index[n_test:]
        if digit in rare:
            train = train[:max(1, round(keep * len(train)))]
        for split, chosen in (("test", index[:n_test]), ("train", train)):
            for i in chosen:
                path = f"{digit}/{i:04d}.png"
                lines[split].append(f"{path} {digit}\n")
    for digit in range(10):
        os.makedirs(os.path.join(root, str(digit)), exist_ok=True)
    for i, (image, digit) in enumerate(zip(digits.images, digits.target)):
        pixels = np.kron(image * 255 / 16, np.ones((2, 2))).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(root, str(digit), f"{i:04d}.png"))
    for split, split_lines in lines.items():
        with open(os.path.join(root, f"{split}_list.txt"), "w") as f:
            f.writelines(split_lines)
    return np.bincount([int(line.split()[1]) for line in lines["train"]], minlength=10)


def config_for(root, out, seed, epochs, loss, sampler):
    dataset = lambda split: {"name": "FileList", "image_root": root, "cls_label_path": f"{root}/{split}_list.txt",
                             "transform_ops": OPS}
    return {
        "Global": {"output_dir": out, "epochs": epochs, "seed": seed, "device": "cpu", "image_shape": [1, 16, 16],
                   "eval_during_train": False, "save_interval": 0, "print_batch_step": 1000, "use_visualdl": False},
        "Arch": {"name": "resnet18", "class_num": 10, "in_channels": 1},
        "Loss": {"Train": [loss]},
        "Optimizer": {"name": "AdamW", "lr": {"name": "Cosine", "learning_rate": 0.002, "warmup_epoch": 0},
                      "regularizer": {"name": "L2", "coeff": 1e-4}},
        "DataLoader": {"Train": {"dataset": dataset("train"), "sampler": {"batch_size": 32, **sampler},
                                 "loader": {"num_workers": 0}},
                       "Eval": {"dataset": dataset("test"), "sampler": {"batch_size": 128, "shuffle": False},
                                "loader": {"num_workers": 0}}},
    }


def run(root, out, seed, epochs, variant, rare):
    loss, sampler = VARIANTS[variant]
    config = config_for(root, out, seed, epochs, loss, sampler)
    Engine(validate(config)).train()
    config["Global"]["pretrained_model"] = os.path.join(out, "latest")
    predictions, _ = Engine(validate(config), "eval").predictions()
    summary, _ = summarize(predictions)
    rare_recall = statistics.mean(summary["per_class"][d]["recall"] for d in rare)
    return summary["macro_f1"], rare_recall, summary["top1"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rare", type=int, nargs="+", default=[2, 5, 8])
    parser.add_argument("--keep", type=float, default=0.05)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="output/bench_imbalance")
    args = parser.parse_args()
    root = os.path.join(args.out, "digits")
    counts = write_data(root, args.rare, args.keep)
    print(f"train images per class: {counts.tolist()}; test: 30% of each class (balanced)", flush=True)
    results = {variant: [] for variant in args.variants}
    started = time.time()
    for seed in args.seeds:
        for variant in args.variants:
            tic = time.time()
            figures = run(root, os.path.join(args.out, f"{variant}_seed{seed}"), seed, args.epochs, variant, args.rare)
            results[variant].append(figures)
            print(f"seed {seed} {variant:<17} macro-F1 {figures[0]:.4f}  rare-class recall {figures[1]:.4f}  "
                  f"top-1 {figures[2]:.4f}  ({time.time() - tic:.0f} s)", flush=True)
    cpu = cpu_description()
    print(f"\n{datetime.date.today()}, {cpu}, {os.cpu_count()} cores, {time.time() - started:.0f} s in all; "
          f"command: python {' '.join(sys.argv)}")
    print("| run | macro-F1 per seed | mean macro-F1 | mean rare-class recall | mean top-1 |")
    print("| --- | --- | --- | --- | --- |")
    for variant, rows in results.items():
        per_seed = ", ".join(f"{f:.4f}" for f, _, _ in rows)
        print(f"| {variant} | {per_seed} | {statistics.mean(r[0] for r in rows):.4f} | "
              f"{statistics.mean(r[1] for r in rows):.4f} | {statistics.mean(r[2] for r in rows):.4f} |")


if __name__ == "__main__":
    main()
