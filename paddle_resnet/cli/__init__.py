"""``paddle-resnet <command> [options]``: every tool as one command (``python tools/<tool>.py`` runs the same).

    paddle-resnet train -c configs/resnet50.yaml -o Global.epochs=10
    paddle-resnet predict --model-dir inference/resnet50 --input photos/
    paddle-resnet <command> --help
"""
import importlib
import sys
from pathlib import Path

from ..allocator import run_with_tcmalloc
from ..verbosity import quiet_paddle

quiet_paddle(sys.argv[1:])  # before any command imports Paddle
from ..errors import did_you_mean  # noqa: E402

COMMANDS = {  # command -> (module of paddle_resnet.cli, what it does)
    "train": ("train", "train a model from a config"),
    "eval": ("eval", "evaluate weights on a config's Eval set (--report DIR: per-class figures, report.html)"),
    "report": ("report", "the evaluation report of predictions made by predict.py --output, against a label list"),
    "explain": ("explain", "Grad-CAM overlays: where in an image the model found its class"),
    "avg-checkpoints": ("avg_checkpoints", "average the last N epoch checkpoints of a run, then evaluate it"),
    "export": ("export_model", "export weights for Paddle Inference (and ONNX)"),
    "predict": ("predict", "classify images with an exported model (ours or PaddleClas's)"),
    "serve": ("serve", "serve an exported model over HTTP: batching, limits, metrics, a demo page"),
    "infer": ("infer", "classify images with trained weights and a config (PaddleClas's tools/infer.py)"),
    "summary": ("summary", "a model's layer table, parameter count and FLOPs"),
    "models": (None, "list the registered model names and the PaddleClas names they answer to"),
    "configs": (None, "list the shipped configs (configs/*.yaml) with their first comment line"),
    "weights": (None, "list the pretrained weights known by name (Global.pretrained_model: imgsim:resnet50)"),
    "convert-weights": ("convert_weights", "convert a Paddle/PaddleClas/torchvision/timm checkpoint (--to paddleclas)"),
    "prepare-data": ("prepare_data", "write a data set (MNIST) as image files and lists"),
    "split-dataset": ("split_dataset", "stratified train/val lists for a folder of class folders"),
    "launch": ("launch", "run a tool in several processes (paddle.distributed.launch, Paddle's messages quiet)"),
}


def list_models():
    from ..models import list_models as registered
    from ..models.aliases import PADDLECLAS_ALIASES, describe_alias
    aliases = "\n".join(f"{name:<22} {describe_alias(name)}" for name in PADDLECLAS_ALIASES)
    return "\n".join(registered()) + "\n\nPaddleClas names (Arch.name) and what they build:\n" + aliases


def list_configs():
    """configs/*.yaml of the current folder, else of the source checkout this package runs from."""
    folders = [Path.cwd() / "configs", Path(__file__).resolve().parents[2] / "configs"]
    folder = next((f for f in folders if f.is_dir()), None)
    if folder is None:
        return "no configs/ folder here or beside the package; the shipped configs are in the source checkout"
    rows = [(str(path.relative_to(folder.parent)) if folder.parent == Path.cwd() else str(path), _first_comment(path))
            for path in sorted(folder.glob("*.yaml"))]
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join(f"{name:<{width}}  {about}" for name, about in rows)


def _first_comment(path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def list_weights():
    from ..weights.named import describe_named_weights
    return describe_named_weights()


LISTINGS = {"models": list_models, "configs": list_configs, "weights": list_weights}


def usage():
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return f"usage: paddle-resnet <command> [options]\n\ncommands:\n{rows}\n\n'paddle-resnet <command> --help' for its options"


def main(argv=None):
    if argv is None and sys.argv[1:2] in (["train"], ["eval"]):
        run_with_tcmalloc()  # this process's own command line: running it again is safe
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"paddle-resnet: error: unknown command {command!r}{did_you_mean(command, COMMANDS)}\n\n{usage()}",
              file=sys.stderr)
        return 2
    module_name = COMMANDS[command][0]
    if module_name is None:
        print(LISTINGS[command]())
        return 0
    module = importlib.import_module(f"{__name__}.{module_name}")
    return module.main(rest, prog=f"paddle-resnet {command}")
