"""Write stratified train/val lists for a folder of class subfolders (e.g. flower_photos/): the same as ``paddle-
resnet split-dataset`` (``--help`` lists the options).
"""
import sys

from paddle_resnet.cli.split_dataset import main

if __name__ == "__main__":
    sys.exit(main())
