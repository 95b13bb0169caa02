"""Shared pieces of the JSON API."""

import copy
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers


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
