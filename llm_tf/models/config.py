"""The one base class of the model configs: JSON round trip, presets with overrides, unknown-field checks."""

import dataclasses
import json


class ModelConfig:
    """Mixin for a ``@dataclasses.dataclass`` model config.

    A subclass sets ``PRESETS`` (name → dict of fields), ``PRESET_KIND`` (a word for error messages) and,
    optionally, ``REQUIRED_OVERRIDES`` (fields every preset needs from the caller, e.g. the vocabulary).
    """

    PRESETS: dict = {}
    PRESET_KIND = "model"
    REQUIRED_OVERRIDES: tuple = ()

    def to_dict(self):
        """The fields as a plain (JSON-serializable) dict."""
        return dataclasses.asdict(self)

    def to_json(self):
        """The config as a JSON string (:meth:`from_json` reads it back)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        """Rebuild from :meth:`to_dict` output (an instance passes through); unknown or missing fields raise."""
        if isinstance(values, cls):
            return values
        if not isinstance(values, dict):
            raise ValueError(f"`values` must be a dict of config fields; got {type(values).__name__}: {values!r}.")
        fields = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; valid fields are {sorted(fields)}.")
        missing = [
            field.name
            for field in dataclasses.fields(cls)
            if field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING
            and field.name not in values
        ]
        if missing:
            raise ValueError(f"{cls.__name__} is missing required field(s) {missing}.")
        return cls(**values)

    @classmethod
    def from_json(cls, text):
        """Rebuild from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_preset(cls, name, **overrides):
        """The preset ``name`` (one of ``PRESETS``) with ``overrides`` replacing some fields."""
        if name not in cls.PRESETS:
            raise ValueError(
                f"unknown {cls.PRESET_KIND} preset {name!r}; valid presets are {sorted(cls.PRESETS)}."
            )
        missing = [field for field in cls.REQUIRED_OVERRIDES if field not in overrides]
        if missing:
            raise ValueError(
                f"{cls.__name__}.from_preset({name!r}) needs {', '.join(f'`{f}=`' for f in missing)} "
                f"(it comes from the tokenizer)."
            )
        return cls.from_dict({**cls.PRESETS[name], **overrides})
