"""CPU training throughput: the engine against a bare Paddle loop, and real PNG files against in-memory batches;
with ``--paths``, the engine's training step against bare dygraph, the other Paddle paths and PyTorch eager.

    python benchmarks/bench_train.py [--data /tmp/mnist_bench] [--batch-size 64] [--steps 15] [--warmup 2]
        [--rounds 2] [--threads N] [--workers 0 1 2]
    python benchmarks/bench_train.py --paths [--cases resnet18:28:32 resnet18:96:32 resnet50:224:8]
        [--steps 5] [--warmup 2] [--rounds 2] [--threads N]

``--paths`` (bench_train_paths.py): one training step (forward, cross-entropy, backward, SGD
momentum step, clear_grad) of the same model, batch and threads on the same in-memory random batch, for
each row, interleaved (every row runs its steps once per round, in reversed order every other round):
the engine's CPU default (``Global.to_static`` auto), bare Paddle dygraph, the other Paddle candidates, and
PyTorch eager (a torchvision resnet written out there; the row is skipped with a message when torch is
not installed; it is a benchmark-only extra, never a dependency).

Model: resnet18 on MNIST (28x28 PNG files written by tools/prepare_data.py, prepared here when missing),
10 classes, fp32 on the CPU, the same number of threads everywhere (the engine's ``Global.num_threads``).

Rows:
* ``engine, in-memory batches``: ``Engine(config).train()``, the tools/train.py code path, on
  configs/quickstart.yaml (its transforms; optimizer pinned to the bare loop's Momentum) for one epoch
  over the first ``(--warmup + --steps) * --batch-size`` training images, ``Global.eval_during_train=false``
  (the config dump before the epoch and the ``latest`` checkpoint after it fall outside the timed steps).
  Its Train loader (``Engine.build_loader``, patched in this script only) yields batches decoded once.
* ``engine, PNG files, N workers``: the same through the real loader (FileList: decode, normalize).
* ``bare loop``: ``paddle.vision.models.resnet18``, Momentum (lr 0.1, momentum 0.9, L2 1e-4), cross-entropy,
  ``backward()``, ``step()``, ``clear_grad()`` and nothing else. One bare step runs after every engine
  step, on the batch the engine just used, outside the engine's timing: the pair sees the same background
  load, so "vs bare" (median over pairs of bare seconds / engine seconds) holds however the load moves.

An engine step is timed from the request of its batch to the request of the next, so it includes waiting
for the batch ("data wait"); the first ``--warmup`` steps of every run are left out (workers start there).
Every configuration runs once per round (``--rounds``), in reversed order every other round.
images/s = batch size / median step time over all rounds; the per-round column is images / seconds of each
round's timed steps. Ratios: engine in-memory vs the bare loop; PNG files vs in-memory ("vs bare" of one
over "vs bare" of the other). Absolute numbers move with the machine's load; the ratios are the result.
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from unittest import mock


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BARE, MEMORY = "bare loop (paddle.vision resnet18)", "engine, in-memory batches"
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-4  # the bare loop's Momentum; the engine's config is pinned to it


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/tmp/mnist_bench", help="prepared MNIST folder (made when missing)")
    parser.add_argument("--limit-train", type=int, default=4000, help="training images when preparing --data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per configuration and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of every run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores, as the engine does")
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2],
                        help="DataLoader.Train.loader.num_workers values to time on PNG files")
    return parser.parse_args()


class TimedLoader:
    """Batches of ``inner`` (None: the engine's own loader, set by ``run_paired``).

    Records each step's seconds (from the request of its batch to the request of the next) and the part
    spent waiting for the batch; then calls ``between(batch)``, untimed.
    """

    def __init__(self, inner, between):
        self.inner, self.between = inner, between
        self.seconds, self.wait = [], []

    def set_epoch(self, epoch):
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __len__(self):
        return len(self.inner)

    def __iter__(self):
        batches = iter(self.inner)
        while True:
            start = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                return
            self.wait.append(time.perf_counter() - start)
            yield batch
            self.seconds.append(time.perf_counter() - start)
            self.between(batch)


class BareStep:
    """One training step per call, timed: forward, cross-entropy, backward, Momentum step, clear_grad."""

    def __init__(self, threads, seed=0):
        import paddle

        paddle.base.core.set_num_threads(threads)
        paddle.seed(seed)
        self.model = paddle.vision.models.resnet18(num_classes=10)
        self.model.train()
        self.optimizer = paddle.optimizer.Momentum(LR, momentum=MOMENTUM, parameters=self.model.parameters(),
                                                   weight_decay=WEIGHT_DECAY)
        self.seconds = []

    def __call__(self, batch):
        import paddle.nn.functional as F

        images, labels, _ = batch
        start = time.perf_counter()
        F.cross_entropy(self.model(images), labels).backward()
        self.optimizer.step()
        self.optimizer.clear_grad()
        self.seconds.append(time.perf_counter() - start)


def engine_config(args, threads, output_dir, file_list, num_workers=0):
    from paddle_resnet.config import load_config

    overrides = {
        "Global.device": "cpu", "Global.num_threads": threads, "Global.output_dir": output_dir, "Global.epochs": 1,
        "Global.eval_during_train": False, "Global.use_visualdl": False, "Global.save_interval": 0,
        "Global.speed_warmup_steps": args.warmup, "DataLoader.Train.sampler.batch_size": args.batch_size,
        "DataLoader.Train.dataset.image_root": os.path.abspath(args.data),
        "DataLoader.Train.dataset.cls_label_path": file_list,
        "DataLoader.Train.loader.num_workers": num_workers,
        "Optimizer.name": "Momentum", "Optimizer.momentum": MOMENTUM, "Optimizer.lr.learning_rate": LR,
        "Optimizer.regularizer.coeff": WEIGHT_DECAY, "Optimizer.no_weight_decay_on_bn_bias": False,
    }
    return load_config(os.path.join(REPO, "configs", "quickstart.yaml"), [f"{k}={v}" for k, v in overrides.items()])


def run_paired(config, batches, threads):
    """``Engine(config).train()`` on ``batches`` (None: its real loader), a bare step after each engine step.
    -> (engine TimedLoader, BareStep)."""
    from paddle_resnet.engine.engine import Engine

    real_build_loader = Engine.build_loader
    bare = BareStep(threads)
    timed = TimedLoader(batches, between=bare)

    def build_loader(engine, mode, distributed=None):
        if timed.inner is None:
            timed.inner = real_build_loader(engine, mode, distributed)
        return timed

    with open(os.path.join(config["Global"]["output_dir"], "stdout.log"), "a") as log, \
            contextlib.redirect_stdout(log), mock.patch.object(Engine, "build_loader", build_loader):
        Engine(config).train()
    return timed, bare


def configurations(args, threads, workdir):
    """name -> (engine config, in-memory batches or None for the real loader)."""
    from paddle_resnet.data import build_dataloader

    images = (args.warmup + args.steps) * args.batch_size
    with open(os.path.join(args.data, "train_list.txt")) as f:
        lines = f.readlines()[:images]
    if len(lines) < images:
        sys.exit(f"{args.data} holds {len(lines)} training images; {images} are needed "
                 f"(raise --limit-train and use a new --data folder)")
    file_list = os.path.join(workdir, "train_list.txt")  # an epoch is exactly the timed run
    with open(file_list, "w") as f:
        f.writelines(lines)
    config = engine_config(args, threads, workdir, file_list)
    batches = list(build_dataloader(dict(config["DataLoader"]["Train"], loader={"num_workers": 0}), "Train"))
    rows = {MEMORY: (config, batches)}
    for workers in args.workers:
        rows[f"engine, PNG files, {workers} worker(s)"] = (
            engine_config(args, threads, workdir, file_list, workers), None)
    return rows


class Row:
    """Timed steps of one configuration over all rounds."""

    def __init__(self):
        self.seconds, self.wait, self.vs_bare, self.per_round = [], [], [], []

    def add(self, seconds, wait=None, vs_bare=()):
        self.seconds += seconds
        self.wait += wait or [0.0] * len(seconds)
        self.vs_bare += vs_bare
        self.per_round.append(len(seconds) / sum(seconds))  # steps/s; times batch size when printed


def markdown_table(rows, batch_size):
    lines = ["| configuration | images/s (median step) | images/s per round | data wait ms/step | "
             "vs bare, paired steps: median (IQR) | ratio |", "|---|---|---|---|---|---|"]
    vs_bare = {name: statistics.median(row.vs_bare) if row.vs_bare else 1.0 for name, row in rows.items()}
    for name, row in rows.items():
        spread = "" if len(row.vs_bare) < 2 else " ({:.2f}-{:.2f})".format(*statistics.quantiles(row.vs_bare)[::2])
        if name == BARE:
            ratio = "reference"
        elif name == MEMORY:
            ratio = f"**{vs_bare[name]:.3f}x** bare loop (target >= 0.95)"
        else:
            ratio = f"**{vs_bare[name] / vs_bare[MEMORY]:.3f}x** in-memory (target >= 0.9)"
        per_round = ", ".join(f"{batch_size * x:.1f}" for x in row.per_round)
        lines.append(f"| {name} | {batch_size / statistics.median(row.seconds):.1f} | {per_round} | "
                     f"{1000 * statistics.median(row.wait):.1f} | {vs_bare[name]:.3f}{spread} | {ratio} |")
    return "\n".join(lines)


def main():
    if "--paths" in sys.argv[1:]:
        from bench_train_paths import main as compare_paths
        return compare_paths([a for a in sys.argv[1:] if a != "--paths"])
    args = parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    if not os.path.isfile(os.path.join(args.data, "train_list.txt")):
        from paddle_resnet.data.prepare import prepare_mnist
        prepare_mnist(args.data, limit_train=args.limit_train, limit_eval=args.batch_size)
    import paddle

    load_before = os.getloadavg()
    rows = {BARE: Row()}
    with tempfile.TemporaryDirectory(prefix="bench_train-") as workdir:
        configs = configurations(args, threads, workdir)
        rows.update({name: Row() for name in configs})
        for round_index in range(args.rounds):
            bare_seconds = []
            for name in list(configs)[::-1] if round_index % 2 else configs:
                timed, bare = run_paired(*configs[name], threads)
                engine_s, bare_s = timed.seconds[args.warmup:], bare.seconds[args.warmup:]
                rows[name].add(engine_s, timed.wait[args.warmup:], [b / e for b, e in zip(bare_s, engine_s)])
                bare_seconds += bare_s
                ips = [args.batch_size / statistics.median(s) for s in (engine_s, bare_s)]
                print(f"round {round_index + 1}/{args.rounds}: {name}: {ips[0]:.1f} img/s, bare loop {ips[1]:.1f}",
                      file=sys.stderr, flush=True)
            rows[BARE].add(bare_seconds)
    print(f"\nresnet18, 28x28 MNIST, batch {args.batch_size}, {threads} threads, {args.steps} timed steps "
          f"(+{args.warmup} warm-up) per configuration and round, {args.rounds} rounds; Paddle {paddle.__version__}; "
          f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(markdown_table(rows, args.batch_size))
    print("\ncommand: python benchmarks/bench_train.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
