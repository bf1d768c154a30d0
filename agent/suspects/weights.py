"""The ranking's weights, and (4) the priors: what role a changed file plays (application
code, configuration, migration, tests, docs ...) and how much its evidence counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.suspects.change import ChangedFile

# --------------------------------------------------------------------------- weights

# (1) mentions
MENTION_PATH = 3.0  # the file's path, or a path ending with it (/app/src/x.py)
MENTION_MODULE = 2.5  # a dotted module name ending with the file's (payments.validation)
MENTION_BASENAME = 1.5  # only the file name (validation.py)
OUTER_FRAME = 0.5  # factor for a stack frame that is not the innermost one
LINE_IN_HUNK = 1.5  # a mentioned line number falls inside a changed hunk
# (2) shared text, saturating at TEXT_MAX
IDENTIFIER = 1.0  # a compound identifier (snake_case, CamelCase) on a changed line
WORD = 0.3  # a plain word of 4+ letters on a changed line
LITERAL = 1.5  # a string literal's fixed text found in the error text
NEARBY = 0.5  # factor for context lines and the hunk's section header
TERMS = 0.5  # factor for a match with the free terms only
TEXT_MAX = 3.5
# (3) kind hints, saturating at HINT_MAX
HINT_MAX = 2.0
# (4) priors, and the damping of evidence for files that rarely break production
DAMPED = 0.25
# (5) size tie-breaker
SIZE_MAX = 0.05
SCALE = 3.0  # score = 1 - exp(-raw / SCALE)


# --------------------------------------------------------------------------- (4) priors


@dataclass(frozen=True)
class Role:
    name: str
    prior: float
    damped: bool


_SOURCE = Role("application code", 0.30, False)
CONFIG = Role("configuration", 0.25, False)
_MIGRATION = Role("database migration", 0.25, False)
_MANIFEST = Role("dependency manifest", 0.10, False)
_BINARY = Role("binary file", 0.05, False)
_TEST = Role("test code", 0.03, True)
_LOCK = Role("lock file", 0.02, True)
_DOCS = Role("documentation", 0.02, True)
_CI = Role("CI configuration", 0.02, True)

_CI_PATH = re.compile(
    r"^(?:\.github/|\.gitlab/|\.circleci/|\.buildkite/)|(?:^|/)(?:\.gitlab-ci\.ya?ml|"
    r"Jenkinsfile|\.travis\.ya?ml|azure-pipelines\.ya?ml|\.pre-commit-config\.yaml)$"
)
_TEST_PATH = re.compile(
    r"(?:^|/)(?:tests?|__tests__|spec|testdata|fixtures)/|(?:^|/)test_[^/]*$|"
    r"_test\.[a-z]+$|\.(?:test|spec)\.[a-z]+$|(?:^|/)conftest\.py$|Test\.(?:java|kt)$"
)
_DOCS_PATH = re.compile(
    r"(?:^|/)docs?/|\.(?:md|rst|adoc|txt)$|(?:^|/)(?:LICENSE|NOTICE|AUTHORS|CHANGELOG|"
    r"CHANGES|HISTORY|README|CODEOWNERS)(?:\.[^/]*)?$",
    re.IGNORECASE,
)
_LOCK_PATH = re.compile(
    r"(?:\.lock|-lock\.json|-lock\.ya?ml|(?:^|/)go\.sum|(?:^|/)npm-shrinkwrap\.json)$"
)
_MANIFEST_PATH = re.compile(
    r"(?:^|/)(?:requirements[^/]*\.(?:txt|in)|pyproject\.toml|setup\.(?:py|cfg)|"
    r"package\.json|go\.mod|Cargo\.toml|Gemfile|pom\.xml|build\.gradle(?:\.kts)?)$"
)
MIGRATION_PATH = re.compile(r"(?:^|/)(?:migrations?|alembic|flyway|liquibase)/|\.sql$")
_CONFIG_PATH = re.compile(
    r"(?:^|/)(?:config|configs|conf|settings|deploy|helm|k8s|charts)/|"
    r"\.(?:ya?ml|toml|ini|cfg|conf|env|properties|json)$"
)


def role_of(changed: ChangedFile) -> Role:
    path = changed.path
    if _CI_PATH.search(path):
        return _CI
    if _LOCK_PATH.search(path):
        return _LOCK
    if _MANIFEST_PATH.search(path):
        return _MANIFEST
    if _TEST_PATH.search(path):
        return _TEST
    if _DOCS_PATH.search(path):
        return _DOCS
    if changed.binary:
        return _BINARY
    if MIGRATION_PATH.search(path):
        return _MIGRATION
    if _CONFIG_PATH.search(path):
        return CONFIG
    return _SOURCE
