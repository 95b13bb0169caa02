"""Shared pieces of the JSON API."""

import copy
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

NOT_AN_OBJECT = "The request body must be a JSON object, such as {}; got %s."


class ObjectJSONParser(JSONParser):
    """JSON bodies must be objects. DRF reads `[1, 2]`, `null`, `"x"` or `3` as data of
    that type, and an endpoint that tolerates "not a dict" as "no options" turns a malformed
    restore request into "restore everything, over the live files"."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if not isinstance(data, dict):
            raise ParseError(NOT_AN_OBJECT % _json_kind(data))
        return data


def _json_kind(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, list):
        return "an array"
    if isinstance(data, str):
        return "a string"
    return "a number"


class StrictBodyMixin:
    """Every viewset of the API: a body is parsed (and refused when malformed) before the
    action runs, even by actions that take no body, such as run, lock or abort. DRF parses
    lazily, so without this a `[1, 2]` sent to /jobs/1/run/ would queue a run unnoticed."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        _ = request.data  # raises ParseError (400) for a body that is not a JSON object


class ModelCleanSerializer(serializers.ModelSerializer):
    """Runs the model's own validation (field validators, clean(), uniqueness) so the API,
    the forms and the admin share one set of rules; errors come back per field, and values
    that clean() normalises come back normalised."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model: Any = self.Meta.model
        concrete = {field.name for field in model._meta.concrete_fields}
        candidate = copy.copy(self.instance) if self.instance is not None else model()
        for name, value in attrs.items():
            if name in concrete:
                setattr(candidate, name, value)
        self.prepare_candidate(candidate, attrs)
        try:
            candidate.full_clean(exclude=self.clean_exclude())
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        for name in attrs:
            if name in concrete:
                attrs[name] = getattr(candidate, name)
        return attrs

    def clean_exclude(self) -> list[str]:
        return []

    def prepare_candidate(self, candidate: Any, attrs: dict[str, Any]) -> None:
        """Set what is not a concrete field (a write-only password) before the rules run."""
