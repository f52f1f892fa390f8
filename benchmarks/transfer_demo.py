"""Transfer learning demo: ResNet-50 fine-tuned from a trained backbone vs trained from scratch.

    python benchmarks/transfer_demo.py [--data data/mnist_1k] [--epochs 3] [--size 32] [--lr 0.003]
        [--test-images 2000]

Both runs train on the same 1,000 MNIST training digits (``tools/prepare_data.py mnist --limit-train 1000``)
with configs/finetune_imagefolder.yaml and the same overrides; only ``Global.pretrained_model`` differs:
imgsim's trained ResNet-50 (torchvision layout, 768-way head re-initialised to 10 classes) or none.
The final weights of each run are evaluated on the first ``--test-images`` images of the MNIST test set
(``Engine.evaluate``, as tools/eval.py does); the full 10,000 would add ~7 minutes on 2 cores.

Overrides common to both runs: digits resized to ``--size`` pixels, no augmentation (flips and random
crops change digits); ``lr_mult_list`` off, so that the from-scratch backbone learns at the full rate;
lr 0.003 instead of 0.01: at 32 px the last feature map is 1x1 and the pooled features' squared norm is
~3x that of 224-px photos, so the head's steps are ~3x larger, and at lr 0.01 both runs diverged
(epoch-2 loss 4.7) and ended level (0.67 test top-1). Effective configs: output/transfer_demo/*/config.yaml.
"""
import argparse
import os
import sys
import time


from paddle_resnet.config import load_config
from paddle_resnet.data.prepare import prepare_mnist
from paddle_resnet.engine import Engine
from paddle_resnet.errors import MissingFileError
from paddle_resnet.weights.named import named_weights_path

IMGSIM = "imgsim:resnet50"

CONFIG = "configs/finetune_imagefolder.yaml"
TRAIN_IMAGES = 1000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/mnist_1k", help="MNIST folder, written if absent")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=32, help="input size in pixels (MNIST is 28)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.003, help="see above; the config's is 0.01")
    parser.add_argument("--test-images", type=int, default=2000, help="first N of the 10,000 test images")
    parser.add_argument("--output", default="output/transfer_demo")
    return parser.parse_args()


def imgsim_weights():
    """imgsim's trained ResNet-50 by name (paddle_resnet/weights/named.py); exits with the pip command when
    imgsim is not installed."""
    try:
        named_weights_path(IMGSIM)
    except MissingFileError as error:
        sys.exit(f"transfer_demo.py: {error}")
    return IMGSIM


def overrides(args, pretrained, output_dir):
    ops = (f"[DecodeImage: {{to_rgb: true}}, ResizeImage: {{size: {args.size}}}, NormalizeImage: {{scale: 1.0/255.0, "
           f"mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}}, ToCHWImage: null]")
    values = [f"Global.pretrained_model={pretrained}", f"Global.output_dir={output_dir}",
              f"Global.epochs={args.epochs}", f"Global.image_shape=[3, {args.size}, {args.size}]",
              "Global.eval_during_train=false", "Global.use_visualdl=false", "Global.print_batch_step=8",
              f"Optimizer.lr.learning_rate={args.lr}", "Arch.class_num=10", "Arch.lr_mult_list=null"]
    for mode, split in (("Train", "train"), ("Eval", "test")):
        values += [f"DataLoader.{mode}.dataset.image_root={args.data}",
                   f"DataLoader.{mode}.dataset.cls_label_path={os.path.join(args.data, split + '_list.txt')}",
                   f"DataLoader.{mode}.dataset.transform_ops={ops}",
                   f"DataLoader.{mode}.sampler.batch_size={args.batch_size}", f"DataLoader.{mode}.loader.num_workers=0"]
    return values


def train_and_test(args, pretrained, output_dir):
    """-> (test top-1 of the final weights, minutes for training and testing)."""
    start = time.perf_counter()
    engine = Engine(load_config(CONFIG, overrides(args, pretrained, output_dir)), "train")
    engine.train()
    return engine.evaluate()["top1"], (time.perf_counter() - start) / 60


def main():
    args = parse_args()
    counts = prepare_mnist(args.data, limit_train=TRAIN_IMAGES, limit_eval=args.test_images)["counts"]
    setups = [("finetune", "ResNet-50 fine-tuned from imgsim's trained backbone", imgsim_weights()),
              ("scratch", "ResNet-50 from scratch (random init)", "null")]
    rows = []
    for name, setup, pretrained in setups:
        top1, minutes = train_and_test(args, pretrained, os.path.join(args.output, name))
        rows.append(f"| {setup} | {args.epochs} | {counts['train']:,} | {counts['test']:,} | {top1:.4f} "
                    f"| {minutes:.1f} |")
    print("\n| setup | epochs | train images | test images | test top-1 | minutes |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nCommand: python benchmarks/transfer_demo.py --epochs {args.epochs} --size {args.size} "
          f"--batch-size {args.batch_size} --lr {args.lr} --test-images {args.test_images}")


if __name__ == "__main__":
    main()
