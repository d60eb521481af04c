"""The chat panel's generation controls, generated from the one options definition
(:func:`gpt4all_magic.options.option_specs`): a new option there gets a control here by itself."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..errors import InvalidOptionError
from ..options import GenerationOptions, OptionSpec, option_specs

__all__ = ["OptionControls"]

_STYLE = {"description_width": "110px"}
_WIDE = w.Layout(width="100%")


def _decimals(step: float) -> int:
    text = f"{step:g}"
    return len(text.split(".")[1]) if "." in text else 0


def control_for(spec: OptionSpec) -> w.Widget:
    """One widget for one option, chosen by its kind and range."""
    common: dict[str, Any] = {"description": spec.name, "tooltip": spec.help, "style": _STYLE,
                              "layout": w.Layout(width="100%")}
    if spec.kind is str:
        return w.Textarea(value=spec.default or "", placeholder="(none)", rows=2, **common)
    if spec.kind is list:
        return w.TagsInput(value=list(spec.default), allow_duplicates=False, **common)
    if spec.optional:  # e.g. seed: empty means "draw one"
        return w.Text(value="" if spec.default is None else str(spec.default), placeholder="random",
                      continuous_update=False, **common)
    if spec.kind is float and spec.minimum is not None and spec.maximum is not None:
        step = spec.step or 0.01
        low = spec.minimum + step if spec.exclusive_minimum else spec.minimum
        return w.FloatSlider(value=spec.default, min=low, max=spec.maximum, step=step,
                             readout_format=f".{_decimals(step)}f", continuous_update=False, **common)
    if spec.kind is int:
        return w.BoundedIntText(value=spec.default, min=int(spec.minimum if spec.minimum is not None else -2**31),
                                max=int(spec.maximum if spec.maximum is not None else 2**31), **common)
    return w.FloatText(value=spec.default, **common)


class OptionControls:
    """A widget per generation option; :meth:`options` validates them into GenerationOptions."""

    def __init__(self, options: GenerationOptions, *, exclude: tuple[str, ...] = ()):
        self.specs = [s for s in option_specs() if s.name not in exclude]
        self.widgets: dict[str, w.Widget] = {s.name: control_for(s) for s in self.specs}
        self.reset_button = w.Button(description="Defaults", icon="undo", tooltip="Reset the options below to "
                                     "their defaults", layout=w.Layout(width="auto"))
        self.reset_button.on_click(lambda _: self.set(GenerationOptions()))
        self.box = w.VBox([*self.widgets.values(), self.reset_button], layout=_WIDE)
        self.set(options)

    def values(self) -> dict[str, Any]:
        """The controls' raw values by option name (seed converted from text)."""
        values: dict[str, Any] = {}
        for spec in self.specs:
            value = self.widgets[spec.name].value
            if spec.optional and spec.kind is int:
                text = str(value).strip()
                if not text:
                    value = None
                else:
                    try:
                        value = int(text)
                    except ValueError:
                        raise InvalidOptionError(
                            f"{spec.name} must be a whole number or empty (random), got {text!r}; "
                            f"fix it under Settings.") from None
            elif spec.kind is str:
                value = value if value.strip() else None
            elif spec.kind is list:
                value = list(value)
            values[spec.name] = value
        return values

    def options(self, base: GenerationOptions | None = None) -> GenerationOptions:
        """The options the controls show, validated (one-line InvalidOptionError otherwise)."""
        return GenerationOptions.from_mapping(self.values(), base=base)

    def set(self, options: GenerationOptions) -> None:
        """Show ``options`` in the controls."""
        data = options.to_dict()
        for spec in self.specs:
            value = data[spec.name]
            widget = self.widgets[spec.name]
            if spec.kind is str:
                widget.value = value or ""
            elif spec.kind is list:
                widget.value = list(value)
            elif spec.optional and spec.kind is int:
                widget.value = "" if value is None else str(value)
            else:
                widget.value = value
