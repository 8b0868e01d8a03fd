"""Configuration: the loader (`load_config`) and the global settings schema."""

from connector.config.loader import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "load_config"]
