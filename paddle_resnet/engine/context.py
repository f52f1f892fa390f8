"""Where a run happens, as the engine hands it to the trainer: its output folder and its place among processes."""
from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    output_dir: str
    device: str  # "cpu" or "gpu" (engine/device.py)
    rank: int = 0
    world_size: int = 1
    overrides: tuple = ()  # the -o Section.key=value strings the config was loaded with

    @property
    def is_main(self):
        return self.rank == 0
