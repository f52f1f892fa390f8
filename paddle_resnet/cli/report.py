"""The evaluation report of predictions already made by predict.py --output, against a labelled list:

    python tools/predict.py --model-dir inference/x --input data/flowers --output preds.jsonl
    paddle-resnet report --predictions preds.jsonl --labels data/flowers/val_list.txt --out output/report

--labels is PaddleClas's list ('relative/path label' lines, paths under --image-root: by default the list's
folder); class names come from --class-names or the class_indices.json beside the list. Writes
OUT/report.html and its files (see eval.py --report). Exit codes: 0 done; 1 a user error in one line (a record
whose class names differ from the list's, an image the list does not label); 2 a malformed command line.
"""
import sys

from ..engine.report import DEFAULT_GALLERY, MAX_GALLERY
from .common import fail, int_at_least, tool_parser


def main(argv=None, prog=None):
    parser = tool_parser(__doc__, prog)
    parser.add_argument("--predictions", required=True, help="predict.py's --output file (JSON Lines)")
    parser.add_argument("--labels", required=True, help="the list of 'relative/path label' lines")
    parser.add_argument("--image-root", help="the folder the list's paths are relative to (default: its folder)")
    parser.add_argument("--class-names", help="class_indices.json (default: the one beside --labels)")
    parser.add_argument("--out", default="report", help="folder for report.html and its files (default: report)")
    parser.add_argument("--gallery", type=int_at_least(0, MAX_GALLERY), default=DEFAULT_GALLERY,
                        help=f"misclassified images the report shows (default {DEFAULT_GALLERY})")
    args = parser.parse_args(argv)
    from ..engine.report import predictions_from_records, summarize, write_report
    from ..errors import UserError
    try:
        predictions = predictions_from_records(args.predictions, args.labels, args.image_root, args.class_names)
        page = write_report(args.out, predictions, args.gallery)
    except UserError as error:
        return fail(prog, error)
    summary, _ = summarize(predictions)
    print(f"report: top1 {summary['top1']:.4f} macro_f1 {summary['macro_f1']:.4f} over {summary['images']} "
          f"images: {page}", file=sys.stdout)
    return 0
