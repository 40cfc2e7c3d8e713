"""Declarative configuration (``contacthub apply``): load and validate a YAML file, then apply it.

Usage from the CLI::

    config = load_config(path)                      # raises ConfigError (every issue, with lines)
    report = await apply_config(sessions, config, env=environ, prune=False)
    print(report.summary())
"""

from hub.config.apply import ApplyReport, KindCounts, apply_config
from hub.config.errors import ConfigError, ConfigIssue
from hub.config.load import LoadedConfig, load_config, parse_config

__all__ = [
    "ApplyReport",
    "ConfigError",
    "ConfigIssue",
    "KindCounts",
    "LoadedConfig",
    "apply_config",
    "load_config",
    "parse_config",
]
