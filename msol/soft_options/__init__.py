"""MSOL's learner (docs/spec/msol.md): the hierarchical policy with per-task posteriors and shared priors, acting,
rollout storage, the A2C/PPO losses and the trainer. The same learner runs MSOL, MSOL(frozen), DISTRAL,
DISTRAL(+action), hard options and flat A2C/PPO (``trainer`` registers them). Read msol/reference.py first: the
same MSOL-A2C update in one file."""
