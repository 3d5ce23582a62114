"""``Config`` -> plain YAML-shaped data, walking the same specs the loader reads.

Every value goes through its type's ``dump``, so the output loads back into an equal
``Config``; secrets are masked on the way unless asked not to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from covetd.config.fields import MiddlewareList, Section, SectionMap, Setting, Spec, field_specs
from covetd.config.masking import MASK, is_secret_option, mask_url
from covetd.config.middleware import MiddlewareEntry
from covetd.config.types import thaw


def config_to_dict(section: Any, *, mask_secrets: bool) -> dict[str, object]:
    """One section (the whole ``Config`` included) as a dict, in declaration order."""
    return {
        name: _dump_field(spec, getattr(section, name), mask_secrets)
        for name, spec in field_specs(type(section))
    }


def _dump_field(spec: Spec, value: Any, mask_secrets: bool) -> object:
    if isinstance(spec, Setting):
        return _dump_setting(spec, value, mask_secrets)
    if isinstance(spec, Section):
        return config_to_dict(value, mask_secrets=mask_secrets)
    if isinstance(spec, SectionMap):
        return {
            name: config_to_dict(item, mask_secrets=mask_secrets) for name, item in value.items()
        }
    assert isinstance(spec, MiddlewareList)
    return [_dump_middleware(entry, mask_secrets) for entry in value]


def _dump_setting(spec: Setting, value: object, mask_secrets: bool) -> object:
    data = spec.type.dump(value)
    if mask_secrets and spec.secret is not None and isinstance(data, str):
        return spec.secret(data)
    return data


def _dump_middleware(entry: MiddlewareEntry, mask_secrets: bool) -> dict[str, object]:
    options = _mask_options(entry.options) if mask_secrets else entry.options
    return {entry.name: thaw(options)}


def _mask_options(value: object) -> object:
    """Mask secret-looking option names and URL passwords, at any depth."""
    if isinstance(value, Mapping):
        return {
            key: MASK if is_secret_option(str(key)) and item is not None else _mask_options(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask_options(item) for item in value]
    return mask_url(value) if isinstance(value, str) else value
