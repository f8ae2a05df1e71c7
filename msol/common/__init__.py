"""The framework every learner runs on, which imports no algorithm: the run directory and its checkpoints
(``run``, ``checkpoint``, ``resume``), the phase loop of the paper's protocol (``protocol``), config checks across
algorithms (``config_check``), the algorithm registry (``algorithms``), environments as task slots
(``envs_adapter``), populations of seeds (``population``, ``member_adam``, ``layers``), generic RL operations
(``returns``, ``schedules``), numerical checks (``numerics``), signals (``interrupt``), W&B (``wandb_sink``) and
the option map of grid envs (``option_map``).

Algorithms live next to it: MSOL's learner in :mod:`msol.soft_options`, the others in :mod:`msol.baselines`; they
import from here, never from each other.
"""
