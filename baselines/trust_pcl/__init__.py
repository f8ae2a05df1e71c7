"""Trust-PCL (Nachum et al. 2018): off-policy trust-region RL by multi-step path consistency.

Modules, in the order the algorithm reads: ``networks`` (π_θ, V_φ), ``replay`` (recency-sampled sub-episodes),
``consistency`` (the consistency error C), ``lagrange`` (λ from ε by bisection), ``algorithm`` (loss, gradient
step, lagged prior/target), ``collector`` (sub-episodes), ``trainer`` (Algorithm 1), ``entry`` (``algo=trust_pcl`` in
``python -m msol.train``; the env, rows and evaluation are msol/common/single_env.py's, shared with TRPO). Documentation: docs/trust_pcl.md.
"""

from msol.baselines.trust_pcl.algorithm import TrustPCL, TrustPCLConfig
from msol.baselines.trust_pcl.trainer import TrustPCLTrainer

__all__ = ["TrustPCL", "TrustPCLConfig", "TrustPCLTrainer"]

from msol.baselines.trust_pcl import entry as _entry  # noqa: F401  (registers algo=trust_pcl)
