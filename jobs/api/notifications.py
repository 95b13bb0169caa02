"""Notification targets in the API, and sending a test."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from backupsite.access import IsStaff
from backupsite.api import StrictBodyMixin
from jobs.models import NotificationEvent, NotificationTarget
from jobs.notify import events as notifications
from jobs.notify.events import save_target
from jobs.notify.senders import parse_target


class NotificationTargetSerializer(serializers.ModelSerializer):
    url = serializers.CharField(
        max_length=2000,
        help_text="An email address (or mailto:) or an Apprise URL. Answered redacted; sending the "
        "redacted form back (or leaving it out) keeps the stored URL.",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=NotificationEvent.choices), required=False, default=list
    )

    class Meta:
        model = NotificationTarget
        fields = ["id", "name", "url", "events", "enabled"]

    def to_representation(self, instance: NotificationTarget) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["url"] = instance.url_display
        return data

    def validate_url(self, value: str) -> Any:
        value = value.strip()
        if self.instance is not None and value == self.instance.url_display:
            return None  # unchanged: keep the stored URL
        try:
            return parse_target(value)
        except DjangoValidationError as exc:
            raise ValidationError(exc.messages) from None

    def validate_events(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def create(self, validated_data: dict[str, Any]) -> NotificationTarget:
        parsed = validated_data.pop("url")
        return save_target(NotificationTarget(**validated_data), parsed)

    def update(self, instance: NotificationTarget, validated_data: dict[str, Any]) -> NotificationTarget:
        parsed = validated_data.pop("url", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return save_target(instance, parsed)


class NotificationTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class NotificationTargetViewSet(StrictBodyMixin, viewsets.ModelViewSet):
    """Where notifications go (admins only)."""

    queryset = NotificationTarget.objects.all()
    serializer_class = NotificationTargetSerializer
    permission_classes = [IsStaff]

    @extend_schema(request=None, responses={200: NotificationTestSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a test message now; answers whether it got through and, if not, why."""
        error = notifications.send_test(self.get_object())
        return Response({"ok": not error, "detail": error or "sent"})
