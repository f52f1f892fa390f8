from .engine import Engine
from .trainer import Trainer, TrainingDiverged
