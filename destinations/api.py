from typing import Any

from django.db.models import ProtectedError
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backupsite.access import IsStaff
from backupsite.api import ModelCleanSerializer, StrictBodyMixin

from . import validated
from .models import Destination


class DestinationSerializer(ModelCleanSerializer):
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only. Omit or leave blank on update to keep the saved password.",
    )

    class Meta:
        model = Destination
        # The last integrity check: when, and its summary (ok, backups, damaged, orphans, ...).
        fields = ["id", *Destination.SETTINGS, "verified_at", "verify_result"]
        read_only_fields = ["verified_at", "verify_result"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        creating = self.instance is None
        if creating and not attrs.get("password"):
            raise serializers.ValidationError({"password": ["This field is required."]})
        if not attrs.get("password"):
            attrs.pop("password", None)
        return super().validate(attrs)

    def prepare_candidate(self, candidate: Any, attrs: dict[str, Any]) -> None:
        if attrs.get("password"):
            candidate.set_password(attrs["password"])  # entered again: host, port, user may change

    def create(self, validated_data: dict[str, Any]) -> Destination:
        password = validated_data.pop("password")
        destination = Destination(**validated_data)
        destination.set_password(password)
        destination.save()
        return destination

    def update(self, instance: Destination, validated_data: dict[str, Any]) -> Destination:
        password = validated_data.pop("password", "")
        before = validated.digest(instance)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        if password:
            instance.set_password(password)
        instance.save()
        validated.after_save({}, instance, before=before)
        return instance


class ValidationCheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    hint = serializers.CharField()
    warning = serializers.BooleanField()


class DestinationViewSet(StrictBodyMixin, viewsets.ModelViewSet):
    """FTP destinations (admins only). Deleting one never touches the files on the server.

    The work on a destination (reindex, verify) is added by `jobs.api`, which registers the
    extended view set."""

    queryset = Destination.objects.all()
    serializer_class = DestinationSerializer
    permission_classes = [IsStaff]

    def perform_destroy(self, instance: Destination) -> None:
        try:
            instance.delete()
        except ProtectedError:
            raise serializers.ValidationError({"non_field_errors": [instance.in_use_message()]}) from None

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ValidationReport",
            {
                "ok": serializers.BooleanField(),
                "checks": ValidationCheckSerializer(many=True),
                "fingerprint": serializers.CharField(allow_null=True),
            },
        ),
    )
    @action(detail=True, methods=["post"])
    def validate(self, request: Request, pk: str | None = None) -> Response:
        """Run the checks now (not queued, one attempt per step) against the saved settings."""
        from .sessions import validate_destination

        destination = self.get_object()
        report = validate_destination(destination, holder=f"Validate by {request.user.get_username()}")
        validated.record(destination.pk, timezone.now(), report.ok)
        return Response(report.as_dict())
