"""Write stratified train/val lists for a folder of class subfolders (e.g. flower_photos/).

    python tools/split_dataset.py --src data/flower_photos --val-ratio 0.1 --seed 0
"""
import os
import sys


from ..errors import UserError, short_repr
from ..data.prepare import split_image_folder
from .common import fail, program_name, tool_parser


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
    print(f"{summary['classes']} classes: {summary['train']} train, {summary['val']} val images; "
          f"skipped {summary['skipped_non_image']} non-image files. "
          f"Wrote train_list.txt, val_list.txt, class_indices.json to {summary['out']} (image_root: {args.src})")
