"""Simulated deploys with known truth, for evaluating judges."""

from evals.sim.generate import FAMILIES, generate_bundle, generate_suite

__all__ = ["FAMILIES", "generate_bundle", "generate_suite"]
