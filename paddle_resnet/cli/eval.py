"""Evaluate weights on the Eval set:  python tools/eval.py -c CONFIG -o Global.pretrained_model=output/best

    python tools/eval.py -c CONFIG -o Global.pretrained_model=output/best --report output/report [--explain]

--report DIR writes DIR/report.html (one page to open in a browser: per-class precision, recall and F1, the
confusion matrix, the most confused pairs, calibration and the misclassified images), with metrics.json,
per_class.csv, confusion_matrix.csv and the figures as PNG files beside it. --explain adds a Grad-CAM overlay
to each image of the gallery.
"""
from ..engine.report import DEFAULT_GALLERY, MAX_GALLERY
from .common import int_at_least, run_engine


def add_arguments(parser):
    parser.add_argument("--report", metavar="DIR", help="write the evaluation report (report.html) into DIR")
    parser.add_argument("--gallery", type=int_at_least(0, MAX_GALLERY), default=DEFAULT_GALLERY,
                        help=f"misclassified images the report shows (default {DEFAULT_GALLERY})")
    parser.add_argument("--explain", action="store_true", help="Grad-CAM overlays in the report's gallery")


def main(argv=None, prog=None):
    def evaluate(engine, args):
        if args.explain and not args.report:
            from ..errors import InputError
            raise InputError("--explain draws Grad-CAM overlays into the report's gallery: add --report DIR")
        return engine.evaluate(report=args.report, gallery=args.gallery, explain=args.explain)

    result = run_engine(__doc__, "eval", argv, evaluate, add_arguments, prog=prog)
    topk = " ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("top"))
    print(f"eval: {topk} loss {result['loss']:.4f} over {result['samples']} images "
          f"({result['skipped']} skipped)")
    if "report" in result:
        print(f"report: {result['report']}")
