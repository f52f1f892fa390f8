from .engine import Engine, TrainingDiverged
