"""Simulated deploys with known ground truth, for evaluating judges and the triage agent."""

from evals.sim.families import FAMILIES, FAULTY, HEALTHY, FamilySpec
from evals.sim.generate import generate_bundle, simulate
from evals.sim.suite import generate_suite, suite_plan

__all__ = [
    "FAMILIES",
    "FAULTY",
    "HEALTHY",
    "FamilySpec",
    "generate_bundle",
    "generate_suite",
    "simulate",
    "suite_plan",
]
