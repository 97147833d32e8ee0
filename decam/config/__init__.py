"""Configuration: YAML in ``configs/`` → typed OmegaConf schema → plain constructor arguments.

Base layer: imports only the registry and errors. Every value is checked here, before any model
work, by one path for top-level keys and plugin sections alike.
"""

from decam.config.loading import (SECTIONS, RunConfig, config_dir, load_config, parse_overrides, plugin_kwargs,
                                  validate, validate_section)

__all__ = ["SECTIONS", "RunConfig", "config_dir", "load_config", "parse_overrides", "plugin_kwargs", "validate",
           "validate_section"]
