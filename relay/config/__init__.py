"""relay.yaml: the settings' models (`models`), their value types (`values`), and loading.

`Config` and the section models are frozen pydantic models, the one schema of
relay.yaml and of the endpoint API; `load_config` / `parse_config` turn YAML
into them, naming every problem by its key path.
"""

from __future__ import annotations

from relay.config.loading import (
    ClientSettings,
    load_client_settings,
    load_config,
    parse_config,
    validate_endpoint,
)
from relay.config.models import (
    DEFAULT_TYPE_FIELDS,
    OPERATIONAL_KINDS,
    AdminConfig,
    Config,
    DeliveryConfig,
    EndpointConfig,
    IngestConfig,
    LimitsConfig,
    LoggingConfig,
    OperationsConfig,
)
from relay.config.storage_url import PostgresConfig, redact_url
from relay.config.values import (
    SCHEMES,
    TENANT_RE,
    TYPE_RE,
    Network,
    Scheme,
    standard_secret_key,
)

__all__ = [
    "DEFAULT_TYPE_FIELDS",
    "OPERATIONAL_KINDS",
    "SCHEMES",
    "TENANT_RE",
    "TYPE_RE",
    "AdminConfig",
    "ClientSettings",
    "Config",
    "DeliveryConfig",
    "EndpointConfig",
    "IngestConfig",
    "LimitsConfig",
    "LoggingConfig",
    "Network",
    "OperationsConfig",
    "PostgresConfig",
    "Scheme",
    "load_client_settings",
    "load_config",
    "parse_config",
    "redact_url",
    "standard_secret_key",
    "validate_endpoint",
]
