"""Monitoring assets Vigil ships: Prometheus deploy-health rules with their promtool unit
tests, and an Alertmanager route that sends those alerts to Vigil's webhook.

The files live next to this module; README.md here lists the metrics the rules expect."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from tools.monitoring.rules import AlertRule, RecordingRule, RuleFile, RuleGroup, load_rule_file

__all__ = [
    "AlertRule",
    "MonitoringAssets",
    "RecordingRule",
    "RuleFile",
    "RuleGroup",
    "load_rule_file",
    "monitoring_assets",
]

_HERE = Path(__file__).resolve().parent


class MonitoringAssets(NamedTuple):
    rules: Path  # Prometheus rule file (recording + alerting rules)
    rules_tests: Path  # its `promtool test rules` unit tests
    alertmanager: Path  # Alertmanager configuration routing the alerts to Vigil
    readme: Path  # the metrics the rules expect, thresholds, how to adapt them


def monitoring_assets() -> MonitoringAssets:
    """The paths of the shipped monitoring files."""
    return MonitoringAssets(
        rules=_HERE / "prometheus" / "vigil-deploy-rules.yml",
        rules_tests=_HERE / "prometheus" / "vigil-deploy-rules.test.yml",
        alertmanager=_HERE / "alertmanager" / "alertmanager.yml",
        readme=_HERE / "README.md",
    )
