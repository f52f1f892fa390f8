from setuptools import find_packages, setup

setup(
    name="paddle_resnet",
    version="0.1.0",
    description="Table-driven ResNet family (v1, D, v2, ResNeXt, wide) for PaddlePaddle: train, export, deploy",
    packages=find_packages(include=["paddle_resnet", "paddle_resnet.*"]),
    package_data={"paddle_resnet.deploy.serving": ["page.html"]},
    python_requires=">=3.9",
    install_requires=[
        # CPU wheel by default; GPU users install paddlepaddle-gpu instead (see README).
        "paddlepaddle>=3.0,<4",
        "numpy>=1.23,<3",
        "pyyaml>=6.0,<7",
        "pillow>=9.0,<14",
        "visualdl>=2.5,<3",
        "tqdm>=4.60,<5",
        "safetensors>=0.4,<1",
        "matplotlib>=3.5,<4",  # the training-curve plot (output_dir/training_curves.png)
    ],
    entry_points={"console_scripts": ["paddle-resnet=paddle_resnet.cli:main"]},
    extras_require={
        # scikit-learn: the test oracle of the evaluation report's metrics (never imported by the package);
        # httpx: the serve tests' HTTP client; playwright drives Debian's chromium (it downloads no browser)
        "test": ["pytest>=7,<10", "pytest-xdist>=3,<4", "scikit-image>=0.21,<1", "opencv-python-headless>=4.8,<6",
                 "scikit-learn>=1.3,<2", "httpx>=0.27,<1", "playwright>=1.40,<2"],
        # the evaluation report's figures (eval.py --report, paddle-resnet report); matplotlib is also a
        # dependency of training (its curves), so this extra only names it for report-only installs
        "report": ["matplotlib>=3.5,<4"],
        # ml_dtypes: onnxruntime.quantization imports it (export_model.py --quantize int8).
        "onnx": ["paddle2onnx>=1.2,<3", "onnxruntime>=1.16,<2", "ml_dtypes>=0.4,<1"],
        # paddle-resnet serve (deploy/serving/); only that package imports them.
        "serve": ["fastapi>=0.110,<1", "uvicorn>=0.37,<1", "python-multipart>=0.0.9,<1", "prometheus-client>=0.20,<1"],
    },
)
