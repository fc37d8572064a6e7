"""fluxwatch's settings: one validated tree, from flags, environment, a YAML file and defaults.

Sources, highest first: command-line flags, environment variables
``FLUXWATCH_*`` (nested with ``__``, e.g. ``FLUXWATCH_GUARDRAIL__MAX_BATCH=5``),
the YAML file named by ``--config`` or ``FLUXWATCH_CONFIG``, the defaults
below. Durations are Go-style strings (``90s``, ``5m``, ``1h30m``, ``250ms``)
or plain numbers of seconds. YAML keys may be camelCase (as in Flux) or
snake_case.

Invalid settings raise :class:`SettingsError`, whose lines each name the field
as the user wrote it (``guardrail.maxBatch`` from YAML,
``FLUXWATCH_GUARDRAIL__MAX_BATCH`` from the environment), what was expected,
and the value given unless it could be a secret: nothing under ``notify``
(provider addresses, tokens, headers), no unknown key's value (a mistyped
``adress`` holds a webhook URL), no value of a field named like a credential.
Whatever ``run`` would refuse later (a label selector, a listen address, a
duration past Go's range, a boolean where a number belongs) is refused here,
so ``check-config`` catches it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import socket
import typing
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
from pydantic_settings import SettingsError as SourceError

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
    # The watch's timeoutSeconds: whole seconds, and 0 would be the server's default of
    # 30 to 60 minutes, so less than a second cannot be asked for.
    watch_timeout: Duration = Field(default=300.0, ge=1)
    inactivity_timeout: Duration = Field(default=120.0, gt=0)

    @field_validator("namespaces", "exclude_namespaces", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("label_selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value:
            LabelSelector.parse(value)  # the engine parses it at start: fail here instead
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
    reset: bool = Field(
        default=False,
        description="Reset releases that failed inside an incident window, as "
        "`flux reconcile hr --reset` does.",
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
        host = parse_listen_addr(value).host  # the daemon binds what parses
        if host and not _bindable(host):
            raise ValueError(
                f"expected [host]:port with a host that is an IP address or a name that "
                f"resolves, like ':8080' or '127.0.0.1:8080', got {value!r}"
            )
        return value


def _bindable(host: str) -> bool:
    """Whether the telemetry server could listen on ``host``: an IP address, or a name
    that resolves (it binds every address a name resolves to)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return True
    try:
        return bool(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))
    except (OSError, UnicodeError):
        return False


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


# Keys of the YAML file as written, by their snake_case path (filled while loading).
_YamlKeys = dict[tuple[str, ...], str]


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
        # alert entries keep their Flux spelling: their own models read it. Errors name
        # keys as written, so the spelling is remembered.
        keys = Settings._yaml_keys
        for key, value in data.items():
            keys[(_snake(str(key)),)] = str(key)
            if isinstance(value, dict):
                for k in value:
                    keys[(_snake(str(key)), _snake(str(k)))] = str(k)
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
    _yaml_keys: ClassVar[_YamlKeys] = {}

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """pydantic reads ``maxBatch: true`` as 1 (lax mode, which the environment's
        strings need): a boolean where a number belongs is refused instead."""
        if isinstance(data, dict):
            for group, values in data.items():
                if not isinstance(values, dict) or group not in cls.model_fields:
                    continue
                numeric = _numeric_fields(cls.model_fields[group].annotation)
                for key, value in values.items():
                    if isinstance(value, bool) and _snake(str(key)) in numeric:
                        spelled = str(value).lower()
                        field = f"{group}.{_snake(str(key))}"
                        raise ValueError(f"{field}: expected a number, got {spelled}")
        return data

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


def _numeric_fields(annotation: Any) -> frozenset[str]:
    """Names of a settings group's int, float and duration fields."""
    names: list[str] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if info.annotation in (int, float):
                names.append(name)
    elif isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation, include_extras=True)
        for f in dataclasses.fields(annotation):
            hint = hints.get(f.name)
            if hint in (int, float) or typing.get_origin(hint) is typing.Annotated:
                names.append(f.name)  # Annotated: Duration, a float
    return frozenset(names)


_SECRET_FIELDS = frozenset(
    {"address", "proxy", "token", "password", "headers", "secret_ref", "secretRef", "username"}
)
_UNKNOWN = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")
_PATH_IN_MESSAGE = re.compile(r"^([a-z_]+(?:\.[a-z_]+)+): ")


def _spelled(loc: tuple[str | int, ...], keys: _YamlKeys) -> str:
    """The field as the user wrote it: an environment variable's name (and the path
    inside its JSON), else the YAML key, else the documented camelCase."""
    parts = [str(p) for p in loc]
    environ = {name.upper() for name in os.environ}
    for n in range(len(parts), 0, -1):
        name = "FLUXWATCH_" + "__".join(p.upper() for p in parts[:n])
        if name in environ:
            rest = parts[n:]
            return name + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rest)
    out = []
    for i, part in enumerate(parts):
        if i < 2 and not part.isdigit():
            part = keys.get(tuple(parts[: i + 1]), to_camel(part))
        out.append(part)
    return ".".join(out) or "(top)"


def _expected_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The keys a group takes, for an unknown key at ``loc`` (camelCase, as documented)."""
    annotation: Any = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if args else None
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part) or next(
                (f for f in annotation.model_fields.values() if f.alias == part), None
            )
            annotation = info.annotation if info is not None else None
        else:
            return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [info.alias or to_camel(name) for name, info in annotation.model_fields.items()]
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return [to_camel(f.name) for f in dataclasses.fields(annotation)]
    return []


def _problem(error: Any, keys: _YamlKeys) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    # Validators of a group name the field themselves: "guardrail.max_batch: ...".
    named = _PATH_IN_MESSAGE.match(message)
    if named is not None:
        inner = tuple(named.group(1).split("."))
        if inner[: len(loc)] == tuple(str(p) for p in loc):
            loc, message = inner, message[named.end() :]
    value = error.get("input")
    if error["type"] in ("bool_parsing", "bool_type"):
        message = "expected true or false"  # pydantic's "Input should be a valid boolean, ..."
    unknown = error["type"] in _UNKNOWN
    secret = (
        unknown
        or bool(_SECRET_FIELDS & {str(p) for p in loc})
        or (isinstance(value, str) and "://" in value)
    )
    if loc and loc[0] == "notify":
        # A provider's own checks may quote its address: no URL leaves this function.
        message = _URL.sub("<hidden URL>", message)
    if unknown:
        expected = _expected_keys(loc)
        message = "unknown field" + (f"; expected one of {', '.join(expected)}" if expected else "")
    if secret:
        # A credential must not reach a terminal or a log, even inside a message.
        for shown in {repr(value), str(value)} if isinstance(value, str) and value else ():
            message = message.replace(shown, "<hidden>")
        return f"{_spelled(loc, keys)}: {message}"
    if isinstance(value, dict | list) or repr(value) in message:
        return f"{_spelled(loc, keys)}: {message}"
    return f"{_spelled(loc, keys)}: {message} (got {value!r})"


def _source_problems(exc: SourceError) -> list[str]:
    """An environment variable pydantic-settings could not parse (JSON for a list or a
    group): its name and where its JSON breaks, never its value."""
    problems = []
    for name, text in sorted(os.environ.items()):
        if not name.upper().startswith("FLUXWATCH_") or text.lstrip()[:1] not in ("[", "{"):
            continue
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            problems.append(
                f"{name}: expected JSON (a list or an object), {err.msg} at line {err.lineno} "
                f"column {err.colno}"
            )
    field = re.search(r'field "([^"]+)"', str(exc))
    return problems or [
        f"FLUXWATCH_{(field.group(1) if field else '').upper()}*: cannot be parsed; "
        "a list or a group is given as JSON"
    ]


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
        reset=r.reset,
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
    keys: _YamlKeys = {}
    Settings._yaml_keys = keys
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise SettingsError([_problem(e, keys) for e in exc.errors()]) from None
    except SourceError as exc:
        raise SettingsError(_source_problems(exc)) from None
    finally:
        Settings._config_path = None
        Settings._yaml_keys = {}
    # What run derives from the tree at start is derived here too, so that check-config
    # fails where run would.
    engine_settings(settings)
    recovery_options(settings)
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
