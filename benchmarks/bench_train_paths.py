"""CPU training step, side by side: the engine's default, bare Paddle dygraph, other Paddle paths, PyTorch eager.

    python benchmarks/bench_train.py --paths [--cases resnet18:28:32 resnet18:96:32 resnet50:224:8]
        [--steps 5] [--warmup 2] [--rounds 2] [--threads N] [--rows ...]

Each case is ``arch:size:batch`` (10 classes, 3 channels, fp32). Every row trains its own copy of the model
(same seed) on one in-memory random batch with the same step: forward, cross-entropy, backward, Momentum
(lr 0.01, momentum 0.9, weight decay 1e-4) step, clear_grad; the step ends with the loss read as a float.
Rows run interleaved: per round, ``--warmup`` untimed then ``--steps`` timed steps each, in reversed order
every other round, so background load affects them alike. images/s = batch / median timed step.

Rows:
* ``engine default``: what ``Trainer`` runs on the CPU with ``Global.to_static`` left at auto for a long run:
  the faster of the next two, as ``engine/step_choice.py`` measures them (here with a fresh cache).
* ``paddle dygraph``: the model's forward in dygraph (the reference of the ratios).
* ``to_static, oneDNN conv``: the static program with oneDNN convolutions (``Global.to_static: true``).
* ``to_static, Paddle kernels``: the same static program without oneDNN (``Global.to_static`` on a GPU).
* ``to_static, oneDNN conv+bn+relu+pool``: oneDNN for every op whose backward works there (slower: reorders).
* ``to_static, bf16 conv``: Paddle's own static bf16 rewrite (``paddle.static.amp.bf16.rewrite_program_bf16``)
  of the convolutions, oneDNN kernels, fp32 master weights; only on CPUs with bf16 (avx512_bf16 / AMX). The
  only CPU bf16 training path Paddle 3.3.1 has: dygraph ``paddle.amp.auto_cast`` is a no-op on the CPU and
  Paddle's CPU conv2d kernel has no bf16 (docs/benchmarks.md, "bf16 training").
* ``pytorch eager`` / ``pytorch bf16 autocast``: a torchvision-equivalent resnet (below), fp32 and under
  ``torch.autocast("cpu", torch.bfloat16)``, ``torch.set_num_threads`` as Paddle's.

The table goes to ``benchmarks/results/bench_train_paths-<cpu>.md`` (``--out``), one file per kind of CPU, with
the CPU model, its ISA flags and the load average, so figures from different machines never mix.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LR, MOMENTUM, WEIGHT_DECAY, CLASSES = 0.01, 0.9, 1e-4, 10
ENGINE, DYGRAPH, STATIC_CONV, STATIC_PLAIN, STATIC_ALL, STATIC_BF16, TORCH, TORCH_BF16 = (
    "engine default (Global.to_static auto)", "paddle dygraph", "to_static, oneDNN conv", "to_static, Paddle kernels",
    "to_static, oneDNN conv+bn+relu+pool", "to_static, bf16 conv", "pytorch eager", "pytorch bf16 autocast")
ROWS = (ENGINE, DYGRAPH, STATIC_CONV, STATIC_PLAIN, STATIC_ALL, STATIC_BF16, TORCH, TORCH_BF16)
LONG_RUN = 10_000  # steps: what auto weighs the static program's trace against


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
    parser.add_argument("--out", default=None,
                        help="markdown file for the table (default benchmarks/results/bench_train_paths-<cpu>.md)")
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


def paddle_rows(arch, images, labels, wanted, threads):
    import paddle
    from paddle_resnet.engine.static_step import OneDNNPlacement, StaticForward
    from paddle_resnet.engine.step_choice import RunShape, training_net

    def engine_default(model):
        shape = RunShape(arch, images.shape[1:], len(images), threads, steps=LONG_RUN)
        return training_net(model, "auto", "cpu", shape)

    def placed(placement):
        def make(model):
            net = StaticForward(model, in_channels=3)
            net.placement = placement
            return net
        return make

    makers = {
        ENGINE: engine_default,
        DYGRAPH: lambda model: model,
        STATIC_CONV: lambda model: StaticForward(model, in_channels=3),
        STATIC_PLAIN: lambda model: StaticForward(model, in_channels=3, onednn=False),
        STATIC_ALL: placed(OneDNNPlacement({"conv2d", "batch_norm", "relu", "pool2d"})),
        STATIC_BF16: lambda model: placed(bf16_conv_placement())(model),
    }
    if STATIC_BF16 in wanted and not paddle.base.core.supports_bfloat16_fast_performance():
        print(f"{STATIC_BF16}: skipped, this CPU has no bf16 instructions (avx512_bf16 / amx_bf16)", file=sys.stderr)
        wanted = [name for name in wanted if name != STATIC_BF16]
    return {name: PaddleRow(arch, make, images, labels).step for name, make in makers.items() if name in wanted}


def bf16_conv_placement():
    """Paddle's static bf16 rewrite of the forward program's convolutions (casts in and out), on oneDNN."""
    from paddle.static.amp.bf16.amp_lists import AutoMixedPrecisionListsBF16
    from paddle.static.amp.bf16.amp_utils import rewrite_program_bf16
    from paddle_resnet.engine.static_step import OneDNNPlacement

    class BF16ConvPlacement(OneDNNPlacement):
        def before_append_backward(self, forward_program):
            lists = AutoMixedPrecisionListsBF16()
            lists.bf16_list, lists.gray_list, lists.fp32_list = {"conv2d"}, set(), set()
            rewrite_program_bf16(forward_program, lists)
            for op in forward_program.global_block().ops:
                if op.type == "conv2d":
                    op._set_attr("mkldnn_data_type", "bfloat16")
            return self._place(forward_program)
    return BF16ConvPlacement()


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


def torch_row(arch, images, labels, threads, bf16=False):
    try:
        import torch
    except ImportError:
        print(f"{TORCH_BF16 if bf16 else TORCH}: skipped, torch is not installed (benchmark-only: "
              "pip install torch==2.13.0, the CPU wheel)", file=sys.stderr)
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_resnet(arch).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
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
    steps = paddle_rows(arch, images, labels, args.rows, threads)
    for name, bf16 in ((TORCH, False), (TORCH_BF16, True)):
        if name in args.rows:
            step = torch_row(arch, images, labels, threads, bf16)
            if step:
                steps[name] = step
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
    lines = ["| model | size | batch | threads | " + " | ".join(names)
             + " | engine / dygraph | engine / PyTorch | engine / PyTorch bf16 |",
             "|---|---|---|---|" + "---|" * len(names) + "---|---|---|"]
    for (arch, size, batch), ips in results.items():
        cells = [f"{ips[n]:.1f}" if n in ips else "-" for n in names]
        ratio = lambda a, b: f"**{ips[a] / ips[b]:.2f}x**" if a in ips and b in ips else "-"
        lines.append(f"| {arch} | {size}x{size} | {batch} | {threads} | " + " | ".join(cells)
                     + f" | {ratio(ENGINE, DYGRAPH)} | {ratio(ENGINE, TORCH)} | {ratio(ENGINE, TORCH_BF16)} |")
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
    for name, step in paddle_rows(arch, images, labels, rows, args.threads or 1).items():
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
    import tempfile
    os.environ["PADDLE_RESNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_train_paths_")  # auto measures afresh
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
    from paddle_resnet.cpu import cpu_description
    report = (f"# bench_train.py --paths on {cpu_description()}\n\n"
              f"`python benchmarks/bench_train.py --paths {' '.join(argv)}`, {time.strftime('%Y-%m-%d')}, "
              f"{len(os.sched_getaffinity(0))} cores, {threads} threads; images/s (median step), {args.steps} timed "
              f"steps (+{args.warmup} warm-up) per row and round, {args.rounds} rounds, interleaved; Paddle "
              f"{paddle.__version__}{torch_version}; load average {load_before[0]:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after.\n\n{markdown_table(results, threads)}\n")
    print("\n" + report)
    out = args.out or os.path.join(REPO, "benchmarks", "results", f"bench_train_paths-{cpu_slug()}.md")
    with open(out, "w", encoding="utf-8") as f:
        f.write(report)
    print(f"written to {out}")


def cpu_slug():
    """``intel-xeon-processor-avx512_bf16`` style: the CPU's name and its widest ISA, for a file name."""
    from paddle_resnet.cpu import cpu_description
    name, _, isa = cpu_description().partition(" (")
    vendor = "".join(ch if ch.isalnum() else "-" for ch in name.lower().replace("(r)", "").replace("(tm)", ""))
    widest = isa.rstrip(")").split("+")[-1].split(",")[0]
    return "-".join(filter(None, vendor.split("-")))[:40] + "-" + widest
