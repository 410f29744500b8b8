"""The configuration file (YAML, at CONFIG_PATH) and the built-in free tiers, into providers
and groups.

The file declares providers (the built-in ones and any OpenAI-compatible or Gemini-compatible
other), their keys as `${VARIABLE}` references to the environment (never the keys themselves),
their models with limits, and groups: public model names standing for several provider/model
pairs. Without a file, providers come from the `<PROVIDER>_*` variables; either way, the
built-in providers' free-tier limits (free_tiers.yaml, shipped with the gateway) apply to
their models unless the file says otherwise, field by field.

Everything is checked here, and a problem stops start-up with one line naming the file, the
key and the problem.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from llmgw.config.errors import ConfigError
from llmgw.config.groups import Group, Member, Strategy
from llmgw.config.parsers import http_url, key_list
from llmgw.providers.catalog import CATALOG, ProviderConfig, ProviderInfo
from llmgw.providers.limits import UTC, ModelLimits
from llmgw.providers.profiles import Prefill
from llmgw.providers.profiles import gemini as gemini_profile
from llmgw.providers.profiles import openai as openai_profile

# A provider's name goes in `<provider>/<model>`: letters, digits, `-` and `_`, no `/`.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
T = TypeVar("T")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ProviderEntry(msgspec.Struct, forbid_unknown_fields=True):
    wire: Literal["openai", "gemini"] | None = None
    base_url: str | None = None
    keys: list[str] | None = None
    model: str | None = None
    # Each model's limits, as the limits themselves (providers.limits.ModelLimits): see
    # _provider_entry.
    models: dict[str, ModelLimits] = msgspec.field(default_factory=dict)
    free: bool | None = None
    counts_max_tokens: bool | None = None
    shared_quota: bool | None = None
    day_resets_in: str | None = None
    free_tier: bool | None = None  # the built-in free-tier table applies (FREE_TIER_LIMITS)
    # It continues a last assistant message (a broken stream is continued there with the text
    # sent so far); unset: what llmgw knows of the provider (a provider of your own: no).
    prefill: bool | None = None
    # Its embedding models (POST /v1/embeddings), the first for a request that names none;
    # unset: what llmgw knows of the provider (a provider of your own: none).
    embeddings: list[str] | None = None


class MemberEntry(msgspec.Struct, forbid_unknown_fields=True):
    use: str
    weight: int = 1


class GroupEntry(msgspec.Struct, forbid_unknown_fields=True):
    members: list[str | MemberEntry]
    strategy: Literal["fallback", "round_robin", "weighted", "most_quota_left"] = "fallback"
    free_only: bool = False


class FileEntry(msgspec.Struct):
    providers: dict[str, ProviderEntry] = msgspec.field(default_factory=dict)
    groups: dict[str, GroupEntry] = msgspec.field(default_factory=dict)


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    """The file's top level. The entries under it are checked one by one, so that a problem
    is reported at its key (msgspec would say `providers[...]` for any key of a mapping)."""

    providers: dict[str, Any] | None = None
    groups: dict[str, Any] | None = None


@dataclass(frozen=True)
class Declared:
    providers: tuple[ProviderConfig, ...]
    groups: tuple[Group, ...]


def read_file(path: str) -> FileEntry:
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError.in_file(path, "(file)", f"cannot be read: {error.strerror}") from None
    return decode(raw, path)


def decode(raw: bytes, path: str) -> FileEntry:
    try:
        document = msgspec.yaml.decode(raw)
    except msgspec.DecodeError as error:
        raise ConfigError.in_file(path, "(file)", _yaml_problem(str(error))) from None
    top = _convert({} if document is None else document, _Document, path, "")
    return FileEntry(
        providers={
            name: _provider_entry(value, path, f"providers.{name}")
            for name, value in (top.providers or {}).items()
        },
        groups={
            name: _convert(value, GroupEntry, path, f"groups.{name}")
            for name, value in (top.groups or {}).items()
        },
    )


def _provider_entry(value: Any, path: str, where: str) -> ProviderEntry:
    if value is None:  # `gemini:` alone: the provider with every default
        return ProviderEntry()
    models = value.pop("models", None) if isinstance(value, dict) else None
    entry = _convert(value, ProviderEntry, path, where)
    if models is not None:
        if not isinstance(models, dict):
            raise ConfigError.in_file(path, f"{where}.models", "must be a mapping of model ids")
        entry.models = {
            str(model): _model_limits(limits, path, f"{where}.models.{model}")
            for model, limits in models.items()
        }
    return entry


_LIMIT_FIELDS = frozenset(field.name for field in dataclasses.fields(ModelLimits))


def _model_limits(value: Any, path: str, where: str) -> ModelLimits:
    # msgspec checks a dataclass's fields but lets unknown ones through: a misspelt `rpd`
    # must not pass for no limit at all.
    if isinstance(value, dict):
        unknown = sorted(str(name) for name in value if name not in _LIMIT_FIELDS)
        if unknown:
            raise ConfigError.in_file(path, where, f"unknown field `{unknown[0]}`")
    return _convert(value or {}, ModelLimits, path, where)


def _convert(value: Any, kind: type[T], path: str, where: str) -> T:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        problem, _, at = str(error).partition(" - at `$")
        location = (where + at.removesuffix("`")).lstrip(".") or "(top level)"
        raise ConfigError.in_file(path, location, problem) from None


_YAML_MARK = re.compile(r'in "[^"]*", (line \d+, column \d+)')


def _yaml_problem(text: str) -> str:
    """PyYAML's several lines, as one: what it found, and where."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    marks = [m.group(1) for line in lines if (m := _YAML_MARK.search(line))]
    words = [line for line in lines if not _YAML_MARK.search(line)]
    where = f" ({marks[-1]})" if marks else ""
    return f"is not valid YAML{where}: {words[-1] if words else text}"


def built_in_free_tiers() -> FileEntry:
    source = files("llmgw").joinpath("free_tiers.yaml")
    return decode(source.read_bytes(), "free_tiers.yaml")


def declare(
    entry: FileEntry | None,
    env: Mapping[str, str],
    from_environment: tuple[ProviderConfig, ...],
    path: str = "",
    free_tiers: bool = True,
) -> Declared:
    """Providers and groups: the file's when there is one, else the environment's, with the
    built-in free tiers under either (unless `free_tiers` is off: paid keys; a provider of the
    file can say otherwise with `free_tier`)."""
    defaults = built_in_free_tiers().providers
    if entry is None:
        providers = tuple(
            _with_defaults(p, defaults.get(p.name) if free_tiers else None)
            for p in from_environment
        )
        return Declared(providers, ())
    providers = tuple(
        provider
        for name, spec in entry.providers.items()
        if (
            provider := _provider(
                name,
                spec,
                defaults.get(name) if _first(spec.free_tier, free_tiers) else None,
                env,
                path,
            )
        )
        is not None
    )
    groups = tuple(
        _group(name, spec, providers, entry, path) for name, spec in entry.groups.items()
    )
    return Declared(providers, tuple(group for group in groups if group.members))


def _with_defaults(provider: ProviderConfig, default: ProviderEntry | None) -> ProviderConfig:
    if default is None:
        return provider
    return ProviderConfig(
        info=provider.info,
        base_url=provider.base_url,
        model=provider.model,
        keys=provider.keys,
        models=tuple(default.models.items()),
        free=bool(default.free),
        counts_max_tokens=bool(default.counts_max_tokens),
        shared_quota=bool(default.shared_quota),
        day_zone=default.day_resets_in or UTC,
    )


def _provider(
    name: str,
    spec: ProviderEntry,
    default: ProviderEntry | None,
    env: Mapping[str, str],
    path: str,
) -> ProviderConfig | None:
    where = f"providers.{name}"
    if not _NAME.fullmatch(name):
        raise ConfigError.in_file(
            path, where, "a provider's name is lower-case letters, digits, - or _"
        )
    built_in = CATALOG.get(name)
    if built_in is not None and spec.wire not in (None, built_in.wire):
        raise ConfigError.in_file(path, f"{where}.wire", f"{name} speaks {built_in.wire}")
    if built_in is None and (spec.wire is None or spec.base_url is None):
        raise ConfigError.in_file(path, where, "a provider of your own needs wire and base_url")
    info = built_in or _custom_info(name, spec)
    if spec.prefill is not None:
        prefill = Prefill.NONE
        if spec.prefill:
            prefill = (
                info.profile.prefill
                if info.profile.prefill is not Prefill.NONE
                else (Prefill.ASSISTANT)
            )
        info = dataclasses.replace(info, profile=dataclasses.replace(info.profile, prefill=prefill))
    base_url = spec.base_url or info.default_base_url
    try:
        base_url = http_url(base_url)
    except ValueError:
        raise ConfigError.in_file(path, f"{where}.base_url", "must be an http(s) URL") from None
    keys = _keys(spec.keys, name, built_in is not None, env, f"{where}.keys", path)
    if keys is None:
        return None  # its keys are not set: not enabled
    fallback = default or ProviderEntry()
    models = {**fallback.models}
    for model, entry in spec.models.items():
        models[model] = _merged(models.get(model), entry)
    embeddings = None
    if spec.embeddings is not None:
        embeddings = tuple(model.strip() for model in spec.embeddings)
        if not all(embeddings):
            raise ConfigError.in_file(path, f"{where}.embeddings", "a model id is not empty")
    zone = spec.day_resets_in or fallback.day_resets_in or UTC
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError.in_file(path, f"{where}.day_resets_in", "an IANA time zone") from None
    return ProviderConfig(
        info=info,
        base_url=base_url,
        model=spec.model or info.default_model,
        keys=keys,
        models=tuple(models.items()),
        free=_first(spec.free, fallback.free, False),
        counts_max_tokens=_first(spec.counts_max_tokens, fallback.counts_max_tokens, False),
        shared_quota=_first(spec.shared_quota, fallback.shared_quota, False),
        day_zone=zone,
        declared_embedding_models=embeddings,
    )


def _custom_info(name: str, spec: ProviderEntry) -> ProviderInfo:
    assert spec.wire is not None
    assert spec.base_url is not None
    model = spec.model or next(iter(spec.models), "")
    profile = gemini_profile.PROFILE if spec.wire == "gemini" else openai_profile.PROFILE
    return ProviderInfo(name, spec.base_url, model, spec.wire, profile)


def _keys(
    references: list[str] | None,
    name: str,
    built_in: bool,
    env: Mapping[str, str],
    where: str,
    path: str,
) -> tuple[str, ...] | None:
    """The keys the references name; None when none is set (the provider is then off). A
    provider of your own without `keys` takes none (a local server, say)."""
    if references is None:
        if not built_in:
            return ("",)
        references = [f"${{{name.upper()}_API_KEY}}"]
    keys: list[str] = []
    for index, reference in enumerate(references):
        found = _REFERENCE.fullmatch(reference.strip())
        if found is None:
            raise ConfigError.in_file(
                path,
                f"{where}[{index}]",
                "write a key as a ${VARIABLE} reference to the environment, never in the file",
            )
        value = env.get(found.group(1), "")
        try:
            keys += key_list(value) if value.strip() else []
        except ValueError:
            raise ConfigError.in_file(
                path, f"{where}[{index}]", f"{found.group(1)} holds something that is not a key"
            ) from None
    return tuple(keys) or None


def _merged(base: ModelLimits | None, entry: ModelLimits) -> ModelLimits:
    """The file's limits over the built-in ones, field by field."""
    if base is None:
        return entry
    given = {name: getattr(entry, name) for name in _LIMIT_FIELDS}
    return dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})


def _first(*values: bool | None) -> bool:
    return next(value for value in values if value is not None)


def _group(
    name: str,
    spec: GroupEntry,
    providers: tuple[ProviderConfig, ...],
    entry: FileEntry,
    path: str,
) -> Group:
    where = f"groups.{name}"
    if "/" in name or not name.strip():
        raise ConfigError.in_file(path, where, "a group's name has no '/' (that names a provider)")
    enabled = {provider.name: provider for provider in providers}
    members = []
    for index, item in enumerate(spec.members):
        use, weight = (item, 1) if isinstance(item, str) else (item.use, item.weight)
        at = f"{where}.members[{index}]"
        provider, slash, model = use.partition("/")
        if not slash or not model:
            raise ConfigError.in_file(path, at, "a member is '<provider>/<model>'")
        if provider not in enabled:
            if provider not in entry.providers and provider not in CATALOG:
                raise ConfigError.in_file(path, at, f"no provider named '{provider}'")
            continue  # declared, but its keys are not set: the group goes without it
        if weight < 1:
            raise ConfigError.in_file(path, at, "a weight is a whole number >= 1")
        if spec.free_only and not enabled[provider].is_free(model):
            raise ConfigError.in_file(
                path, at, f"'{use}' is not declared free, and this group is free_only"
            )
        members.append(Member(provider, model, weight))
    return Group(name, tuple(members), Strategy(spec.strategy), spec.free_only)
