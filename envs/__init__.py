"""msol's multitask environments; importing this package registers them under ``msol/`` (see ``list_envs()``).

Every env takes ``task`` (None: drawn at each reset) and ``mode`` ("train"/"test"), lists its tasks in
``env.unwrapped.tasks`` and switches with ``env.unwrapped.set_task(name)`` at the next reset. Many envs of many tasks
at once: ``make_multitask_vector_env``. Optimal returns: ``msol.envs.optimal``.
"""

from msol.envs.directional_taxi import DirectionalTaxiEnv
from msol.envs.moving_bandits import MovingBanditsEnv
from msol.envs.registry import list_envs, register_env
from msol.envs.taxi import TAXI_MAPS, TaxiEnv, TaxiMap
from msol.envs.vector import MultitaskVectorEnv, make_multitask_vector_env

__all__ = [
    "TAXI_MAPS",
    "DirectionalTaxiEnv",
    "MovingBanditsEnv",
    "MultitaskVectorEnv",
    "TaxiEnv",
    "TaxiMap",
    "list_envs",
    "make_multitask_vector_env",
    "register_env",
]
