"""Configuration: the environment (and `.env`), and an optional YAML file, into one immutable
Settings object. No other package reads the environment."""

from llmgw.config.errors import ConfigError
from llmgw.config.settings import (
    PROVIDER_VARIABLES,
    PROVIDERS,
    ProviderVariable,
    Settings,
    Variable,
    is_loopback,
    load_settings,
    settings_from_environment,
    variables,
)

__all__ = [
    "PROVIDERS",
    "PROVIDER_VARIABLES",
    "ConfigError",
    "ProviderVariable",
    "Settings",
    "Variable",
    "is_loopback",
    "load_settings",
    "settings_from_environment",
    "variables",
]
