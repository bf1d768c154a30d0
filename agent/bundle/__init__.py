"""Deploy bundles: the on-disk record of one deploy (format version 1)."""

from agent.bundle.model import (
    Bundle,
    BundleManifest,
    Cohort,
    DeployInfo,
    Expectation,
    LogLine,
    SignalKind,
    SignalSpec,
    SignalUnit,
    Strategy,
)
from agent.bundle.reader import iter_bundles, read_bundle, read_manifest
from agent.bundle.series import Series, SignalData
from agent.bundle.writer import write_bundle

__all__ = [
    "Bundle",
    "BundleManifest",
    "Cohort",
    "DeployInfo",
    "Expectation",
    "LogLine",
    "Series",
    "SignalData",
    "SignalKind",
    "SignalSpec",
    "SignalUnit",
    "Strategy",
    "iter_bundles",
    "read_bundle",
    "read_manifest",
    "write_bundle",
]
