"""Write stratified train/val lists for a folder of class subfolders (e.g. flower_photos/).

    python tools/split_dataset.py --src data/flower_photos --val-ratio 0.1 --seed 0

Prints the images per class (all classes up to 30, else the 5 smallest and 5 largest) and warns when the
classes are imbalanced (the largest has 10 times the images of the smallest or more) and when the val split
has fewer than 10 images in a class (too few to tell epochs apart when choosing best).
"""
import os
import sys


from ..errors import UserError, short_repr
from ..data.prepare import split_image_folder
from ..engine.selection import MIN_EVAL_IMAGES_PER_CLASS
from .common import fail, program_name, tool_parser

SKEW_WARNING_RATIO = 10  # largest class / smallest class
HISTOGRAM_ROWS = 30
BAR_WIDTH = 40


def class_histogram(class_counts):
    """Lines ``name  train  val  bar`` per class; beyond HISTOGRAM_ROWS classes the 5 smallest and 5 largest."""
    rows = sorted(class_counts, key=lambda row: row[1] + row[2]) if len(class_counts) > HISTOGRAM_ROWS else class_counts
    if len(rows) > HISTOGRAM_ROWS:
        rows = rows[:5] + [None] + rows[-5:]
    largest = max(train + val for _, train, val in class_counts)
    width = max(len(str(row[0])) for row in rows if row) if rows else 0
    lines = [f"  {'class':<{width}}  {'train':>6}  {'val':>5}"]
    for row in rows:
        if row is None:
            lines.append(f"  ... {len(class_counts) - 10} classes between ...")
            continue
        name, train, val = row
        bar = "#" * max(1, round(BAR_WIDTH * (train + val) / largest))
        lines.append(f"  {name:<{width}}  {train:>6}  {val:>5}  {bar}")
    return lines


def imbalance_warnings(class_counts):
    totals = [(train + val, name) for name, train, val in class_counts]
    (fewest, small), (most, large) = min(totals), max(totals)
    warnings = []
    if fewest and most / fewest >= SKEW_WARNING_RATIO:
        warnings.append(f"the classes are imbalanced: {large!r} has {most} images, {small!r} {fewest} "
                        f"({most / fewest:.1f}x); consider Loss.Train CELoss class_weights: auto, FocalLoss, or "
                        f"DataLoader.Train.sampler.name: ClassBalancedSampler (docs/training.md, class imbalance)")
    thin = [name for name, _, val in class_counts if val < MIN_EVAL_IMAGES_PER_CLASS]
    if thin:
        warnings.append(f"the val split has fewer than {MIN_EVAL_IMAGES_PER_CLASS} images in {len(thin)} of "
                        f"{len(class_counts)} classes: too few to tell epochs apart when choosing best; a larger "
                        f"--val-ratio separates them")
    return warnings


def main(argv=None, prog=None):
    parser = tool_parser(__doc__, prog)
    parser.add_argument("--src", required=True, help="folder with one subfolder of images per class")
    parser.add_argument("--val-ratio", type=float, default=0.1,
                        help="fraction of each class for val, between 0 and 1 exclusive (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="where the lists go (default: --src)")
    args = parser.parse_args(argv)
    try:
        summary = split_image_folder(args.src, args.val_ratio, seed=args.seed, out=args.out)
    except UserError as err:
        sys.exit(fail(prog, err))
    if summary["skipped_not_utf8"]:
        example = short_repr(os.fsencode(summary["not_utf8_example"]))  # the bytes on disk
        print(f"{program_name(prog)}: warning: skipped {summary['skipped_not_utf8']} files whose names are not UTF-8, "
              f"which list files cannot hold, e.g. {example}: rename them to list them", file=sys.stderr)
    print("\n".join(class_histogram(summary["class_counts"])))
    for warning in imbalance_warnings(summary["class_counts"]):
        print(f"{program_name(prog)}: warning: {warning}", file=sys.stderr)
    print(f"{summary['classes']} classes: {summary['train']} train, {summary['val']} val images; "
          f"skipped {summary['skipped_non_image']} non-image files. "
          f"Wrote train_list.txt, val_list.txt, class_indices.json to {summary['out']} (image_root: {args.src})")
