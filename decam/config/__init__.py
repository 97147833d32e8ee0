"""Configuration: YAML in ``configs/`` → typed OmegaConf schema → plain constructor arguments.

Base layer: imports only the registry and errors. Defaults live in one place each
(``configs/default.yaml`` for the run, a plugin's constructor for its section), and every value is
checked here, before any model work, by one path for top-level keys and plugin sections alike.
"""

from __future__ import annotations

from decam.config.checks import check_values, plugin_kwargs, validate, validate_section
from decam.config.loading import config_dir, config_from_kwargs, load_config, parse_overrides
from decam.config.schema import SECTIONS, RunConfig

__all__ = ["SECTIONS", "RunConfig", "check_values", "config_dir", "config_from_kwargs", "load_config",
           "parse_overrides", "plugin_kwargs", "validate", "validate_section"]
