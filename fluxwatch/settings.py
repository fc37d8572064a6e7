"""fluxwatch's settings: one validated tree, from flags, environment, a YAML file and defaults.

Sources, highest first: command-line flags, environment variables
``FLUXWATCH_*`` (nested with ``__``, e.g. ``FLUXWATCH_GUARDRAIL__MAX_BATCH=5``),
the YAML file named by ``--config`` or ``FLUXWATCH_CONFIG``, the defaults
below. Durations are Go-style strings (``90s``, ``5m``, ``1h30m``, ``250ms``)
or plain numbers of seconds. YAML keys may be camelCase (as in Flux) or
snake_case.

Invalid settings raise :class:`SettingsError`, whose lines each name the field
path, the value and what was expected.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from fluxwatch.durations import Duration, format_duration, parse_duration
from fluxwatch.engine.config import (
    EngineSettings,
    GuardrailSettings,
    LabelSelector,
    LeaseSettings,
    VerifyStorage,
)
from fluxwatch.notify.config import NotifySettings
from fluxwatch.telemetry.listen import parse_listen_addr

if TYPE_CHECKING:
    from fluxwatch.engine.recovery import RecoveryOptions


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Group(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class WatchSettings(_Group):
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty means all."
    )
    exclude_namespaces: list[str] = Field(default_factory=list)
    label_selector: str | None = Field(
        default=None, description="Flux-style sharding: only HelmReleases matching it."
    )
    threshold: Duration = Field(
        default=300.0, gt=0, description="How long Ready=Unknown lasts before a release is stuck."
    )
    verify_storage: Literal["auto", "always", "never"] = "auto"
    page_size: int = Field(default=500, ge=1, le=10_000)
    watch_timeout: Duration = Field(default=300.0, gt=0)
    inactivity_timeout: Duration = Field(default=120.0, gt=0)

    @field_validator("namespaces", "exclude_namespaces", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


Strategy = Literal["force-reconcile", "suspend-toggle", "status-correct"]


class RecoverySettings(_Group):
    strategies: list[Strategy] = Field(
        default=["force-reconcile", "suspend-toggle", "status-correct"],
        description="The ladder, in order. status-correct runs only when enabled.",
    )
    status_correct: bool = Field(
        default=False, description="Allow writing Ready=True through /status (needs RBAC)."
    )
    verify_timeout: Duration = Field(default=120.0, gt=0)
    suspend_pause: Duration = Field(
        default=5.0, ge=0, description="Pause between suspend and resume."
    )

    @field_validator("strategies")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"each strategy may appear once, got {value}")
        if not value:
            raise ValueError("at least one strategy is needed")
        return value


def _pod_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    try:
        return path.read_text().strip() or "fluxwatch-system"
    except OSError:
        return os.environ.get("POD_NAMESPACE", "fluxwatch-system")


class LeaderSettings(_Group):
    enabled: bool = True
    namespace: str = Field(default_factory=_pod_namespace)
    name: str = "fluxwatch-leader-election"
    identity: str = Field(
        default_factory=lambda: os.environ.get("POD_NAME") or socket.gethostname()
    )
    lease_duration: Duration = 15.0
    renew_deadline: Duration = 10.0
    retry_period: Duration = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> LeaderSettings:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                "need leaseDuration > renewDeadline > retryPeriod > 0, got "
                f"{self.lease_duration}/{self.renew_deadline}/{self.retry_period}"
            )
        return self


class TelemetrySettings(_Group):
    metrics_addr: str = ":8080"
    health_addr: str = ":9440"
    log_level: Literal["debug", "info", "error"] = "info"
    log_encoding: Literal["json", "console"] = "json"

    @field_validator("metrics_addr", "health_addr")
    @classmethod
    def _addr(cls, value: str) -> str:
        parse_listen_addr(value)  # the daemon binds what parses; check-config says why not
        return value


class EventsSettings(_Group):
    record: bool = Field(
        default=True,
        description=(
            "Record every event as a core/v1 Event on the object it concerns, as Flux's "
            "controllers do (kubectl describe, flux events); a kubernetes-event provider "
            "in notify.providers takes its place."
        ),
    )


class SettingsError(ValueError):
    """Settings that cannot be used; ``problems`` holds one line per error."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise SettingsError([f"config file {self.path}: cannot read: {exc.strerror}"]) from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise SettingsError([f"config file {self.path}: not valid YAML: {exc}"]) from exc
        if not isinstance(data, dict):
            kind = type(data).__name__
            raise SettingsError([f"config file {self.path}: expected a mapping, got {kind}"])
        # Flux writes camelCase; env and flags arrive in snake_case. One spelling per key
        # keeps pydantic-settings' per-field merge of the sources exact. Provider and
        # alert entries keep their Flux spelling: their own models read it.
        return {
            _snake(key): (
                {_snake(k): v for k, v in value.items()} if isinstance(value, dict) else value
            )
            for key, value in data.items()
        }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLUXWATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        # Provider entries may carry addresses with credentials: never echo inputs.
        hide_input_in_errors=True,
    )

    kubeconfig: str | None = Field(
        default=None, validation_alias=AliasChoices("kubeconfig", "KUBECONFIG_PATH")
    )
    context: str | None = None
    shutdown_timeout: Duration = Field(default=30.0, gt=0)
    watch: WatchSettings = Field(default_factory=WatchSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    guardrail: GuardrailSettings = GuardrailSettings()
    leases: LeaseSettings = LeaseSettings()
    leader: LeaderSettings = Field(default_factory=LeaderSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)

    # The YAML source needs the path before validation starts; set only inside load_settings.
    _config_path: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls, cls._config_path)


_SECRET_FIELDS = frozenset({"address", "proxy", "token", "password", "headers", "secret_ref"})


def _problem(error: Any) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(top)"
    value = error.get("input")
    if _SECRET_FIELDS & {str(p) for p in error["loc"]}:
        value = {}  # shown as nothing: it may be a credential
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith(f"{path}."):
        path, _, message = message.partition(": ")
    if isinstance(value, dict | list) or repr(value) in message:
        return f"{path}: {message}"
    return f"{path}: {message} (got {value!r})"


def engine_settings(settings: Settings) -> EngineSettings:
    """The engine's view of the settings tree."""
    watch = settings.watch
    return EngineSettings(
        threshold=watch.threshold,
        verify_storage=VerifyStorage(watch.verify_storage),
        watch_namespaces=frozenset(watch.namespaces),
        exclude_namespaces=frozenset(watch.exclude_namespaces),
        label_selector=LabelSelector.parse(watch.label_selector or ""),
        guardrail=settings.guardrail,
        leases=settings.leases,
    )


def leader_lease_name(settings: Settings) -> str:
    """fluxwatch's own leader Lease; a shard (``--watch-label-selector``) gets Flux's suffix,
    ``-<first 8 hex of sha256(selector)>``, so each shard elects its own leader."""
    selector = settings.watch.label_selector
    if not selector:
        return settings.leader.name
    return f"{settings.leader.name}-{hashlib.sha256(selector.encode()).hexdigest()[:8]}"


def recovery_options(settings: Settings) -> RecoveryOptions:
    """The recovery ladder's view of the settings tree."""
    from fluxwatch.engine.recovery import RecoveryOptions

    r = settings.recovery
    return RecoveryOptions(
        strategies=tuple(r.strategies),
        status_correct=r.status_correct,
        verify_timeout=r.verify_timeout,
        suspend_pause=r.suspend_pause,
    )


def load_settings(
    config: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the settings tree; ``overrides`` are the command-line flags (nested dicts)."""
    path_text = config if config is not None else os.environ.get("FLUXWATCH_CONFIG")
    path = Path(path_text) if path_text else None
    Settings._config_path = path
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise SettingsError([_problem(e) for e in exc.errors()]) from None
    finally:
        Settings._config_path = None
    return settings


__all__ = [
    "Duration",
    "EventsSettings",
    "GuardrailSettings",
    "LeaderSettings",
    "LeaseSettings",
    "NotifySettings",
    "RecoverySettings",
    "Settings",
    "SettingsError",
    "TelemetrySettings",
    "WatchSettings",
    "engine_settings",
    "format_duration",
    "leader_lease_name",
    "load_settings",
    "parse_duration",
    "recovery_options",
]
