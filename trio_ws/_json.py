"""JSON codecs for ``send_json``, ``receive_json`` and ``iter_json``: :class:`JSONCodec`.

A codec is a ``dumps``/``loads`` pair. :meth:`JSONCodec.standard` (the default) is the standard
library's :mod:`json` with Starlette's exact settings, so plain mode sends byte for byte what
Starlette sends. :meth:`JSONCodec.orjson` and :meth:`JSONCodec.msgspec` use those libraries
(installed separately); any other pair works too.

Where a codec is chosen, the most specific wins: the session's ``json_codec`` option
(``WebSocket(..., json_codec=)``, ``trio_ws.session(websocket, json_codec=)``, a
``WebSocketRoute``'s or ``websocket_app``'s session options), then the ``json_codec`` of the
innermost :class:`~trio_ws.Router` (stored in the scope under :data:`JSON_CODEC_SCOPE_KEY`),
then :meth:`JSONCodec.standard`.

Typed receives (``receive_json(type=Model)``) parse and validate in one pass, whatever the codec:
with pydantic when ``Model`` is a pydantic model, else with msgspec (dataclasses,
``TypedDict``, ``msgspec.Struct``, ``list[int]`` ...), else with pydantic's ``TypeAdapter``; one
of the two must be installed.

Stdlib only (the optional libraries are imported when first used).
"""

from __future__ import annotations

import importlib
import json
import types
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["JSON_CODEC_SCOPE_KEY", "JSONCodec", "JSONValidationError"]

#: The scope key under which a :class:`~trio_ws.Router` with a ``json_codec`` passes it to the
#: sessions below it.
JSON_CODEC_SCOPE_KEY = "trio_ws.json_codec"

_PREVIEW = 40
_MAX_REASON = 123  # bytes of UTF-8 in a close frame's reason (RFC 6455 section 5.5)


def preview(data: str | bytes) -> str:
    """The start of a message, for error messages."""
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return repr(text if len(text) <= _PREVIEW else text[:_PREVIEW] + "...")


class JSONValidationError(ValueError):
    """A JSON message does not match the type ``receive_json(type=...)`` asked for.

    The validating library's own error is the ``__cause__``.

    Attributes:
        type: The type asked for.
        detail: The validating library's description of what did not match.
    """

    def __init__(self, expected: Any, detail: str, data: str | bytes) -> None:
        self.type: Any = expected
        self.detail: str = detail
        super().__init__(
            f"the message does not match {_type_name(expected)} ({detail}; "
            f"message: {preview(data)})"
        )

    @property
    def close_reason(self) -> str:
        """The close reason sent with 1007 under ``close_on_invalid_json``."""
        reason = f"JSON does not match {_type_name(self.type)}"
        return reason.encode()[:_MAX_REASON].decode("utf-8", "ignore")


def _type_name(expected: Any) -> str:
    """``Chat``, ``Join | Say``, ``list[int]``: the type as the application wrote it."""
    if isinstance(expected, types.UnionType) or typing.get_origin(expected) is typing.Union:
        return " | ".join(_type_name(member) for member in typing.get_args(expected))
    if typing.get_origin(expected) is not None:
        return repr(expected).replace("typing.", "")
    return getattr(expected, "__name__", None) or repr(expected)


def _import(name: str, purpose: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise ModuleNotFoundError(f"{purpose} needs the {name} package", name=name) from None


class JSONCodec:
    """A JSON encoder and decoder for a WebSocket's ``*_json`` methods.

    Args:
        dumps: Encodes a value; returns ``str`` or UTF-8 ``bytes``.
        loads: Decodes a ``str`` (or ``bytes``, with ``loads_bytes``) into a value.
        errors: The exceptions ``loads`` raises for text that is not JSON.
        loads_bytes: Whether ``loads`` takes UTF-8 ``bytes`` as they are (binary-mode
            messages then skip a decode to ``str``); otherwise they are decoded first.
        name: A name for reprs.

    Example (any library's pair plugs in alike; pass the codec as ``json_codec=``, as the
    :doc:`JSON page </json>` shows)::

        import functools, json

        compact = functools.partial(json.dumps, separators=(",", ":"))
        codec = trio_ws.JSONCodec(dumps=compact, loads=json.loads)
        assert codec.encode_text({"a": [1, 2]}) == '{"a":[1,2]}'
    """

    __slots__ = ("_typed", "dumps", "errors", "loads", "loads_bytes", "name")

    def __init__(
        self,
        dumps: Callable[[Any], str | bytes],
        loads: Callable[[Any], Any],
        *,
        errors: tuple[type[Exception], ...] = (ValueError,),
        loads_bytes: bool = False,
        name: str = "custom",
    ) -> None:
        if not (callable(dumps) and callable(loads)):
            raise TypeError("a JSONCodec needs callable dumps and loads")
        self.dumps: Callable[[Any], str | bytes] = dumps
        self.loads: Callable[[Any], Any] = loads
        self.errors: tuple[type[Exception], ...] = errors
        self.loads_bytes: bool = loads_bytes
        self.name: str = name
        self._typed: dict[Any, Callable[[str | bytes], Any]] = {}

    def __repr__(self) -> str:
        return f"JSONCodec({self.name})"

    # ------------------------------------------------------------------ the built-in codecs

    @classmethod
    def standard(cls) -> JSONCodec:
        """The standard library's :mod:`json` as Starlette calls it (the default).

        Encodes compactly (``separators=(",", ":")``) with non-ASCII characters as they are,
        exactly as ``starlette.websockets.WebSocket.send_json``; decodes with
        :func:`json.loads`.
        """
        return _STANDARD

    @classmethod
    def orjson(cls) -> JSONCodec:
        """`orjson <https://github.com/ijl/orjson>`__: ``orjson.dumps`` and ``orjson.loads``.

        Its output differs from the standard library's in places (``NaN`` becomes ``null``,
        floats print in their shortest form, dataclasses and datetimes are encoded).

        Raises:
            ModuleNotFoundError: orjson is not installed.
        """
        orjson = _import("orjson", "JSONCodec.orjson()")
        return cls(
            orjson.dumps,
            orjson.loads,
            errors=(orjson.JSONDecodeError,),
            loads_bytes=True,
            name="orjson",
        )

    @classmethod
    def msgspec(cls) -> JSONCodec:
        """`msgspec <https://jcristharif.com/msgspec/>`__'s JSON encoder and decoder.

        Raises:
            ModuleNotFoundError: msgspec is not installed.
        """
        msgspec = _import("msgspec", "JSONCodec.msgspec()")
        return cls(
            msgspec.json.Encoder().encode,
            msgspec.json.Decoder().decode,
            errors=(msgspec.DecodeError,),
            loads_bytes=True,
            name="msgspec",
        )

    # ------------------------------------------------------------------ what WebSocket uses

    def encode_text(self, data: Any) -> str:
        """Encode ``data`` as a ``str``."""
        out = self.dumps(data)
        return out if isinstance(out, str) else out.decode("utf-8")

    def encode_bytes(self, data: Any) -> bytes:
        """Encode ``data`` as UTF-8 ``bytes``."""
        out = self.dumps(data)
        return out.encode("utf-8") if isinstance(out, str) else bytes(out)

    def decode(self, data: str | bytes, expected: Any = None) -> Any:
        """Decode a message, validated against ``expected`` unless it is ``None``.

        Raises:
            json.JSONDecodeError: ``data`` is not JSON; the message says why and shows its
                start (the codec's own error is the ``__cause__``).
            JSONValidationError: ``data`` is JSON but does not match ``expected``.
            UnicodeDecodeError: binary ``data`` is not UTF-8 (codecs without ``loads_bytes``).
            ModuleNotFoundError: ``expected`` was given and neither pydantic nor msgspec is
                installed.
        """
        if isinstance(data, bytes) and not self.loads_bytes:
            data = data.decode("utf-8")
        if expected is None:
            try:
                return self.loads(data)
            except self.errors as exc:
                raise _syntax_error(exc, data) from exc
        decoder = self._typed.get(expected)
        if decoder is None:
            decoder = self._typed[expected] = _typed_decoder(expected)
        return decoder(data)


def _syntax_error(exc: Exception, data: str | bytes) -> json.JSONDecodeError:
    reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
    doc = data if isinstance(data, str) else data.decode("utf-8", "replace")
    position = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
    return json.JSONDecodeError(
        f"the message is not valid JSON ({reason}; message: {preview(data)})", doc, position
    )


def _standard_dumps() -> Callable[[Any], str]:
    # Starlette calls json.dumps(data, separators=(",", ":"), ensure_ascii=False), which builds
    # this encoder on every call; building it once gives the same output.
    return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


_STANDARD = JSONCodec(
    _standard_dumps(), json.loads, errors=(json.JSONDecodeError,), name="standard"
)


# ------------------------------------------------------------------ typed decoding


def _typed_decoder(expected: Any) -> Callable[[str | bytes], Any]:
    """A function that parses and validates a message as ``expected``.

    The validating library parses the message itself (one pass, and faster than the codec's
    ``loads`` followed by validation of the result).
    """
    if callable(getattr(expected, "model_validate_json", None)):  # a pydantic model
        return _pydantic_decoder(expected.model_validate_json, expected)
    try:
        msgspec = importlib.import_module("msgspec")
    except ModuleNotFoundError:
        pydantic = _import("pydantic", "receive_json(type=...) (msgspec or pydantic)")
        return _pydantic_decoder(pydantic.TypeAdapter(expected).validate_json, expected)
    return _msgspec_decoder(msgspec, expected)


def _pydantic_decoder(
    validate: Callable[[str | bytes], Any], expected: Any
) -> Callable[[str | bytes], Any]:
    pydantic = importlib.import_module("pydantic")

    def decode(data: str | bytes) -> Any:
        try:
            return validate(data)
        except pydantic.ValidationError as exc:
            problems = exc.errors()
            if problems and problems[0].get("type") == "json_invalid":
                raise _syntax_error(ValueError(problems[0].get("msg", "")), data) from exc
            first = problems[0] if problems else {}
            where = ".".join(str(part) for part in first.get("loc", ())) or "value"
            detail = f"{where}: {first.get('msg', exc)}"
            raise JSONValidationError(expected, detail, data) from exc

    return decode


def _msgspec_decoder(msgspec: Any, expected: Any) -> Callable[[str | bytes], Any]:
    parse = msgspec.json.Decoder(expected).decode

    def decode(data: str | bytes) -> Any:
        try:
            return parse(data)
        except msgspec.ValidationError as exc:
            raise JSONValidationError(expected, str(exc), data) from exc
        except msgspec.DecodeError as exc:
            raise _syntax_error(exc, data) from exc

    return decode
