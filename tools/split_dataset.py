"""Write stratified train/val lists for a folder of class subfolders (e.g. flower_photos/).

    python tools/split_dataset.py --src data/flower_photos --val-ratio 0.1 --seed 0
"""
import sys

from paddle_resnet.cli.split_dataset import main

if __name__ == "__main__":
    sys.exit(main())
