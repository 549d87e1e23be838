"""Configuration: one YAML file, overridable from the environment (`TCE_` prefix, `__` nesting).

Everything is validated here, once, before anything starts; `load_config` turns any problem
into a `ConfigError` whose message names the offending key (`tenants[0].ping.interval: ...`),
which the command line prints before exiting with code 2.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import ssl
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

DEFAULT_PORT = 10437
DEFAULT_LISTEN_ADDRESS = f"0.0.0.0:{DEFAULT_PORT}"
ENV_PREFIX = "TCE_"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    None: 1.0,
}
"""The one duration grammar: the configuration's and the mixin's."""


class ConfigError(Exception):
    """Configuration that cannot be used; the message names the key."""


def parse_duration(value: object) -> float:
    """`15s`, `2m`, `1h`, `1d`, `500ms` or a number of seconds -> seconds (must be positive)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15s, 2m, 1h or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(
            f"invalid duration {value!r}: expected e.g. 15s, 2m, 1h or a number of seconds"
        )
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _no_nul(value: Path) -> Path:
    # The OS cannot take such a path; caught here it names the key instead of failing later.
    if "\x00" in str(value):
        raise ValueError("path contains a NUL byte")
    return value


SafePath = Annotated[Path, AfterValidator(_no_nul)]


def _ca_bundle(value: Path) -> Path:
    # Loaded once here so a missing or malformed bundle stops the start naming its key, rather
    # than failing a source's first refresh with a traceback.
    if not os.access(value, os.R_OK):
        raise ValueError(f"cannot read CA bundle {str(value)!r}")
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(value))
    except (ssl.SSLError, OSError, ValueError):
        raise ValueError(f"{str(value)!r} holds no PEM certificate") from None
    return value


CaBundle = Annotated[SafePath, AfterValidator(_ca_bundle)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PingConfig(_Strict):
    interval: Duration = 15.0
    timeout: Duration = 5.0


class InventoryConfig(_Strict):
    enabled: bool = True
    tctl: str = Field(default="tctl", pattern=r"^[^\x00]+$")
    identity_file: SafePath = Path("/opt/machine-id/identity")
    interval: Duration = 60.0
    timeout: Duration = 60.0
    per_agent_metrics: bool = True
    # ~630 bytes per agent as tctl prints it: 64 MiB holds 100,000 agents, and parsing that much
    # still fits the shipped 512 MiB memory limit (256 MiB of JSON would need over 1 GiB).
    max_output_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # `tctl inventory ls` scans the tenant's backend on every call: at large fleets the interval
    # stretches so the inventory pulls at most this many bytes an hour (0: always `interval`).
    max_bytes_per_hour: int = Field(default=40_000_000, ge=0)
    max_interval: Duration = 3600.0


class VersionChannelConfig(_Strict):
    """The v1 version channel, polled only while ping carries no `auto_update`."""

    enabled: bool = True
    interval: Duration = 300.0
    timeout: Duration = 10.0


class RolloutConfig(_Strict):
    enabled: bool = True
    interval: Duration = 300.0


class AgentReportConfig(_Strict):
    """Teleport 18's `autoupdate_agent_report` (served from Auth's cache, written every minute)."""

    enabled: bool = True
    interval: Duration = 60.0


class MaintenanceConfigConfig(_Strict):
    """`cluster_maintenance_config`: the agent upgrade window (rarely changes; a few hundred
    bytes from Auth's cache, re-read so the published next start moves on after a window)."""

    enabled: bool = True
    interval: Duration = 600.0


class SlaConfig(_Strict):
    objective: float = Field(default=0.999, gt=0.0, lt=1.0)
    exclude_maintenance: bool = True


class TenantConfig(_Strict):
    proxy: str
    name: str = ""
    ca_file: CaBundle | None = None
    ping: PingConfig = PingConfig()
    version_channel: VersionChannelConfig = VersionChannelConfig()
    inventory: InventoryConfig = InventoryConfig()
    rollout: RolloutConfig = RolloutConfig()
    agent_report: AgentReportConfig = AgentReportConfig()
    maintenance_config: MaintenanceConfigConfig = MaintenanceConfigConfig()
    sla: SlaConfig = SlaConfig()

    @field_validator("proxy")
    @classmethod
    def _proxy_is_host_port(cls, value: str) -> str:
        value = value.strip()
        if "://" in value or "/" in value:
            raise ValueError(f"expected host[:port] without scheme or path, got {value!r}")
        host, port = split_host_port(value)
        if not host:
            raise ValueError(f"missing host in {value!r}")
        if not 0 < port < 65536:
            raise ValueError(f"port out of range in {value!r}")
        return value

    @model_validator(mode="after")
    def _defaults_and_paths(self) -> TenantConfig:
        if not self.name:
            object.__setattr__(self, "name", self.host)
        identity = self.inventory.identity_file
        if self.uses_tctl:
            # tbot may write the file after we start (sidecar), so a missing file in an existing
            # directory is tolerated; a missing directory or an unreadable file is a mistake.
            if not identity.parent.is_dir():
                raise ValueError(
                    f"inventory.identity_file: directory {str(identity.parent)!r} does not exist"
                )
            if identity.exists() and not os.access(identity, os.R_OK):
                raise ValueError(f"inventory.identity_file: cannot read {str(identity)!r}")
        return self

    @property
    def uses_tctl(self) -> bool:
        """Whether the exporter runs tctl against this tenant. The agent report and the
        maintenance config share the inventory's tctl setup, so they run only with it (or the
        rollout) enabled."""
        return self.inventory.enabled or self.rollout.enabled

    @property
    def host(self) -> str:
        return split_host_port(self.proxy)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.proxy)[1]


class StatusPageConfig(_Strict):
    url: str = "https://status.teleport.sh"
    interval: Duration = 60.0
    timeout: Duration = 10.0
    components: list[str] = []
    ca_file: CaBundle | None = None

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"expected an http(s) URL or an empty string, got {value!r}")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


class Settings(BaseSettings):
    """The whole configuration. Sources by priority: flags, environment, file, defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    listen_address: str = DEFAULT_LISTEN_ADDRESS
    state_dir: SafePath = Path("/var/lib/teleport-cloud-exporter")
    status_page: StatusPageConfig = StatusPageConfig()
    tenants: list[TenantConfig] = Field(default_factory=list)

    @field_validator("listen_address")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        _, port = split_host_port(value, default_port=-1)
        if port < 0 or not 0 <= port < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @field_validator("tenants")
    @classmethod
    def _unique_names(cls, tenants: list[TenantConfig]) -> list[TenantConfig]:
        seen: set[str] = set()
        for tenant in tenants:
            if tenant.name in seen:
                raise ValueError(f"tenant name {tenant.name!r} is used twice")
            seen.add(tenant.name)
        return tenants

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init_settings carries flags (highest) merged over the file by load_config; env sits
        # between them, so the file source is added last with the lowest priority.
        return (
            init_settings,
            env_settings,
            InitSettingsSource(settings_cls, init_kwargs=_file_values.get() or {}),
        )


# The parsed file for the Settings() call under way in load_config (a context variable, so
# concurrent loads in tests cannot see each other's file).
_file_values: ContextVar[dict[str, Any] | None] = ContextVar("file_values", default=None)


def split_host_port(value: str, default_port: int = 443) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` -> (host, port)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    if not port_text:
        return host, default_port
    if not port_text.isdigit():
        raise ValueError(f"invalid port in {value!r}")
    return host, int(port_text)


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-") or part in ("list", "dict"):
            continue
        else:
            path += f".{part}" if path else part
    return path or "(top level)"


_SUBKEY = re.compile(r"^([a-z_]+(?:\.[a-z_]+)+): ")


def describe_validation_error(error: ValidationError, flags: frozenset[str] = frozenset()) -> str:
    lines = []
    for item in error.errors():
        key = _key_path(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key" + _did_you_mean(item["loc"])
        elif item["type"] == "missing":
            message = "required key is missing"
        elif sub := _SUBKEY.match(message):
            # model-level checks name the nested key in their message: fold it into the path
            key, message = f"{key}.{sub.group(1)}", message[sub.end() :]
        origin = _environment_origin(item["loc"], flags)
        lines.append(f"{key} (from {origin}): {message}" if origin else f"{key}: {message}")
    return "; ".join(lines)


def _model_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at `loc` accepts (empty when the path leaves the models)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int) or part.startswith("function-") or part in ("list", "dict"):
            continue
        if model is None or part not in model.model_fields:
            return []
        model = _nested_model(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if found := _nested_model(arg):
            return found
    return None


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    unknown = loc[-1]
    if not isinstance(unknown, str):
        return ""
    close = difflib.get_close_matches(unknown, _model_keys(loc[:-1]), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _environment_origin(loc: tuple[int | str, ...], flags: frozenset[str]) -> str | None:
    """The `TCE_*` variable a bad value came from: the longest key prefix set in the
    environment (lists come whole, as JSON: `TCE_TENANTS`), unless a flag overrode it."""
    names = [part for part in loc if isinstance(part, str) and not part.startswith("function-")]
    names = [part for part in names if part not in ("list", "dict")]
    if not names or names[0] in flags:
        return None
    environment = {name.upper(): name for name in os.environ}
    for end in range(len(names), 0, -1):
        variable = ENV_PREFIX + "__".join(names[:end]).upper()
        if variable in environment:
            return environment[variable]
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {str(path)!r} is not UTF-8 (invalid byte at offset {exc.start})"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
    return data


_FIELD = re.compile(r'field "([^"]+)"')


def _describe_settings_error(error: SettingsError) -> str:
    match = _FIELD.search(str(error))
    if match is None:
        return f"environment: {error}"
    key = match.group(1)
    variable = ENV_PREFIX + key.upper()
    for name, value in sorted(os.environ.items()):
        if name.upper().startswith(variable) and not _is_json(value):
            variable = name
            key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
            if value.lstrip()[:1] in ("[", "{") or name.upper() == ENV_PREFIX + "TENANTS":
                break
    return f"{key}: environment variable {variable} is not valid JSON"


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def load_config(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings from a file (optional), the environment and flag overrides."""
    file_values = read_config_file(Path(path)) if path is not None else {}
    flags = {key: value for key, value in overrides.items() if value is not None}
    token = _file_values.set(file_values)
    try:
        return Settings(**flags)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, frozenset(flags))) from None
    except SettingsError as exc:  # an environment value that is not the JSON it must be
        raise ConfigError(_describe_settings_error(exc)) from None
    finally:
        _file_values.reset(token)
