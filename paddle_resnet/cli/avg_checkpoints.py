"""Average the weights of a run's last epoch checkpoints, then evaluate the average (and the last epoch):

    python tools/avg_checkpoints.py -c CONFIG [--last 3] [--dir OUTPUT_DIR] [--out PREFIX] [--no-eval]

Reads <dir>/epoch_<N>.pdparams (kept every Global.save_interval epochs; --dir defaults to the config's
Global.output_dir) with the readers that run no code from a file, writes their mean as the checkpoint --out
(default <dir>/avg_last<N>: .pdparams and .run.json, for eval, export and Global.pretrained_model), and
evaluates it and the last of them on the config's Eval set.
"""
import os

from ..config import load_config
from ..errors import UserError
from .common import config_tool_parser, fail, positive_int, sigterm_as_exit


def evaluate(config_path, overrides, weights):
    from ..engine import Engine
    return Engine(load_config(config_path, [*overrides, f"Global.pretrained_model={weights}"]), "eval").evaluate()


def main(argv=None, prog=None):
    parser = config_tool_parser(__doc__, prog)
    parser.add_argument("--last", type=positive_int, default=3, help="how many of the last epochs (default 3)")
    parser.add_argument("--dir", help="the run's output folder (default: the config's Global.output_dir)")
    parser.add_argument("--out", help="the averaged checkpoint's prefix (default: <dir>/avg_last<N>)")
    parser.add_argument("--no-eval", action="store_true", help="write the average without evaluating it")
    args = parser.parse_args(argv)
    from ..engine.averaging import average_checkpoints
    try:
        with sigterm_as_exit():
            config = load_config(args.config, args.override)
            folder = args.dir or config["Global"]["output_dir"]
            out = args.out or os.path.join(folder, f"avg_last{args.last}")
            epochs = average_checkpoints(folder, args.last, out)
            print(f"averaged epochs {', '.join(map(str, epochs))} of {folder} into {out}.pdparams")
            if args.no_eval:
                return 0
            for name, weights in (("average", out), (f"epoch {epochs[-1]}", os.path.join(folder, f"epoch_{epochs[-1]}"))):
                result = evaluate(args.config, args.override, weights)
                print(f"eval {name}: top1 {result['top1']:.4f} loss {result['loss']:.4f} macro_f1 "
                      f"{result['macro_f1']:.4f} over {result['samples']} images")
    except UserError as error:
        return fail(prog, error)
    return 0
