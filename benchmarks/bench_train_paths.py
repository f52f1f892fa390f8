"""CPU training step, side by side: the engine's default, bare Paddle dygraph, other Paddle paths, PyTorch eager.

    python benchmarks/bench_train.py --paths [--cases resnet18:28:32 resnet18:96:32 resnet50:224:8]
        [--steps 5] [--warmup 2] [--rounds 2] [--threads N] [--rows ...]

Each case is ``arch:size:batch`` (10 classes, 3 channels, fp32). Every row trains its own copy of the model
(same seed) on one in-memory random batch with the same step: forward, cross-entropy, backward, Momentum
(lr 0.01, momentum 0.9, weight decay 1e-4) step, clear_grad; the step ends with the loss read as a float.
Rows run interleaved: per round, ``--warmup`` untimed then ``--steps`` timed steps each, in reversed order
every other round, so background load affects them alike. images/s = batch / median timed step.

Rows:
* ``engine default``: what ``Trainer`` runs on the CPU: ``static_forward`` with
  ``Global.to_static`` left at its default (auto: a static program with oneDNN convolutions).
* ``paddle dygraph``: the model's forward in dygraph (the reference of the ratios).
* ``to_static, Paddle kernels``: the same static program without oneDNN (``Global.to_static`` on a GPU).
* ``to_static, oneDNN conv+bn+relu+pool``: oneDNN for every op whose backward works there (slower: reorders).
* ``pytorch eager``: a torchvision-equivalent resnet (below), ``torch.set_num_threads`` as Paddle's.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LR, MOMENTUM, WEIGHT_DECAY, CLASSES = 0.01, 0.9, 1e-4, 10
ENGINE, DYGRAPH, STATIC_PLAIN, STATIC_ALL, TORCH = (
    "engine default (Global.to_static auto)", "paddle dygraph", "to_static, Paddle kernels",
    "to_static, oneDNN conv+bn+relu+pool", "pytorch eager")
ROWS = (ENGINE, DYGRAPH, STATIC_PLAIN, STATIC_ALL, TORCH)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["resnet18:28:32", "resnet18:96:32", "resnet50:224:8"],
                        help="arch:image size:batch size")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per row and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per row and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores, as the engine does")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS, metavar="ROW",
                        help=f"rows to run (default all): {', '.join(ROWS)}")
    parser.add_argument("--profile", action="store_true",
                        help="instead of timing: paddle.profiler's operator summary (kernel names and times) of "
                             "--steps steps of each Paddle row of the first case")
    return parser.parse_args(argv)


class PaddleRow:
    def __init__(self, arch, net_for, images, labels, seed=0):
        import paddle
        from paddle_resnet.models import build_model

        paddle.seed(seed)
        self.model = build_model(arch, num_classes=CLASSES)
        self.model.train()
        self.net = net_for(self.model)
        self.optimizer = paddle.optimizer.Momentum(LR, momentum=MOMENTUM, parameters=self.model.parameters(),
                                                   weight_decay=WEIGHT_DECAY)
        self.images, self.labels = paddle.to_tensor(images), paddle.to_tensor(labels)

    def step(self):
        import paddle.nn.functional as F

        loss = F.cross_entropy(self.net(self.images), self.labels)
        loss.backward()
        self.optimizer.step()
        self.optimizer.clear_grad()
        return float(loss)


def paddle_rows(arch, images, labels, wanted):
    from paddle_resnet.config import load_config
    from paddle_resnet.engine.static_step import OneDNNPlacement, StaticForward, static_forward

    default_config = load_config(os.path.join(REPO, "configs", "quickstart.yaml"))  # Global.to_static: default

    def all_onednn(model):
        net = StaticForward(model, in_channels=3)
        net.placement = OneDNNPlacement({"conv2d", "batch_norm", "relu", "pool2d"})
        return net

    makers = {
        ENGINE: lambda model: static_forward(model, default_config.Global.to_static, 3, "cpu", log=False),
        DYGRAPH: lambda model: model,
        STATIC_PLAIN: lambda model: StaticForward(model, in_channels=3, onednn=False),
        STATIC_ALL: all_onednn,
    }
    return {name: PaddleRow(arch, make, images, labels).step for name, make in makers.items() if name in wanted}


# ---------------------------------------------------------------- PyTorch: torchvision's resnet, written out
def torch_resnet(arch):
    import torch.nn as nn

    class Basic(nn.Module):
        expansion = 1

        def __init__(self, cin, width, stride):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = _downsample(cin, width, stride)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (self.downsample(x) if self.downsample else x))

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, width, stride):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, width * 4, 1, bias=False), nn.BatchNorm2d(width * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = _downsample(cin, width * 4, stride)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + (self.downsample(x) if self.downsample else x))

    def _downsample(cin, cout, stride):
        if stride == 1 and cin == cout:
            return None
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    block, depths = {"resnet18": (Basic, [2, 2, 2, 2]), "resnet34": (Basic, [3, 4, 6, 3]),
                     "resnet50": (Bottleneck, [3, 4, 6, 3])}[arch]
    layers, cin = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                   nn.MaxPool2d(3, 2, 1)], 64
    for stage, depth in enumerate(depths):
        width = 64 * 2 ** stage
        for i in range(depth):
            layers.append(block(cin, width, 2 if stage and i == 0 else 1))
            cin = width * block.expansion
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, CLASSES)]
    return nn.Sequential(*layers)


def torch_row(arch, images, labels, threads):
    try:
        import torch
    except ImportError:
        print(f"{TORCH}: skipped, torch is not installed (benchmark-only: "
              "pip install torch --index-url https://download.pytorch.org/whl/cpu)", file=sys.stderr)
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_resnet(arch).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return float(loss.detach())
    return step


# ---------------------------------------------------------------- timing
def run_case(arch, size, batch, args, threads):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 3, size, size)).astype("float32")
    labels = rng.integers(0, CLASSES, batch).astype("int64")
    steps = paddle_rows(arch, images, labels, args.rows)
    if TORCH in args.rows:
        step = torch_row(arch, images, labels, threads)
        if step:
            steps[TORCH] = step
    seconds = {name: [] for name in steps}
    for round_index in range(args.rounds):
        for name in list(steps)[::-1] if round_index % 2 else steps:
            for i in range(args.warmup + args.steps):
                start = time.perf_counter()
                steps[name]()
                if i >= args.warmup:
                    seconds[name].append(time.perf_counter() - start)
            print(f"{arch} {size}x{size} batch {batch}, round {round_index + 1}/{args.rounds}: {name}: "
                  f"{batch / statistics.median(seconds[name][-args.steps:]):.1f} img/s", file=sys.stderr, flush=True)
    return {name: batch / statistics.median(s) for name, s in seconds.items()}


def markdown_table(results, threads):
    names = [name for name in ROWS if any(name in r for r in results.values())]
    lines = ["| model | size | batch | threads | " + " | ".join(names) + " | engine / dygraph | engine / PyTorch |",
             "|---|---|---|---|" + "---|" * len(names) + "---|---|"]
    for (arch, size, batch), ips in results.items():
        cells = [f"{ips[n]:.1f}" if n in ips else "-" for n in names]
        ratio = lambda a, b: f"**{ips[a] / ips[b]:.2f}x**" if a in ips and b in ips else "-"
        lines.append(f"| {arch} | {size}x{size} | {batch} | {threads} | " + " | ".join(cells)
                     + f" | {ratio(ENGINE, DYGRAPH)} | {ratio(ENGINE, TORCH)} |")
    return "\n".join(lines)


def profile(args, argv):
    """paddle.profiler's operator table for --steps steps of every Paddle row (after --warmup steps); one
    process per row, as paddle.profiler starts once per process."""
    import subprocess

    import paddle.profiler as profiler

    rows = [name for name in args.rows if name != TORCH]
    if len(rows) > 1:
        script = os.path.join(REPO, "benchmarks", "bench_train.py")
        others = [a for a in argv[:argv.index("--rows")] + _after_rows(argv)] if "--rows" in argv else argv
        for name in rows:
            subprocess.run([sys.executable, script, "--paths", *others, "--rows", name], check=True)
        return
    arch, size, batch = args.cases[0].split(":")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((int(batch), 3, int(size), int(size))).astype("float32")
    labels = rng.integers(0, CLASSES, int(batch)).astype("int64")
    for name, step in paddle_rows(arch, images, labels, rows).items():
        for _ in range(args.warmup):
            step()
        prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU])
        prof.start()
        for _ in range(args.steps):
            step()
            prof.step()
        prof.stop()
        print(f"\n## {name}: {arch} {size}x{size} batch {batch}, {args.steps} steps\n", flush=True)
        prof.summary(sorted_by=profiler.SortedKeys.CPUTotal, op_detail=False, thread_sep=False, time_unit="ms")


def _after_rows(argv):
    """argv after the values of --rows."""
    rest = argv[argv.index("--rows") + 1:]
    while rest and not rest[0].startswith("--"):
        rest = rest[1:]
    return rest


def main(argv):
    args = parse_args(argv)
    threads = args.threads or len(os.sched_getaffinity(0))
    import paddle

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(threads)
    if args.profile:
        return profile(args, argv)
    load_before = os.getloadavg()
    results = {}
    for case in args.cases:
        arch, size, batch = case.split(":")
        results[(arch, int(size), int(batch))] = run_case(arch, int(size), int(batch), args, threads)
    torch_version = ""
    try:
        import torch
        torch_version = f", PyTorch {torch.__version__}"
    except ImportError:
        pass
    print(f"\nimages/s (median step), {args.steps} timed steps (+{args.warmup} warm-up) per row and round, "
          f"{args.rounds} rounds, interleaved; Paddle {paddle.__version__}{torch_version}; load average "
          f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(markdown_table(results, threads))
    print("\ncommand: python benchmarks/bench_train.py --paths " + " ".join(argv))
