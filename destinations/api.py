from typing import Any

from django.db.models import ProtectedError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

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


class IsStaff(permissions.BasePermission):
    """Admins only. A logged-in client gets 404, as for anything else that is not theirs."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if not request.user.is_staff:
            raise NotFound
        return True


class ValidationCheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    hint = serializers.CharField()
    warning = serializers.BooleanField()


class DestinationViewSet(StrictBodyMixin, viewsets.ModelViewSet):
    """FTP destinations (admins only). Deleting one never touches the files on the server."""

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

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def reindex(self, request: Request, pk: str | None = None) -> Response:
        """Queue a reindex of this destination (or answer the one already queued); answers the queue item."""
        from jobs.api import QueueItemSerializer

        from . import reindex

        destination = self.get_object()
        if destination.disabled:
            return Response({"detail": "This destination is disabled."}, status=status.HTTP_409_CONFLICT)
        item = reindex.queue_reindex(destination, requested_by=request.user)
        return Response(QueueItemSerializer(item).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=inline_serializer(
            "VerifyRequest", {"read_percent": serializers.IntegerField(min_value=0, max_value=100)}
        ),
        responses={202: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        """Queue an integrity check reading `read_percent` (0-100, default the destination's
        scheduled share) of the stored bytes, or answer the one already queued."""
        from jobs import verify
        from jobs.api import QueueItemSerializer

        destination = self.get_object()
        if destination.disabled:
            return Response({"detail": "This destination is disabled."}, status=status.HTTP_409_CONFLICT)
        body: dict[str, Any] = request.data if isinstance(request.data, dict) else {}
        unknown = sorted(set(body) - {"read_percent"})
        if unknown:
            return Response(
                {name: ["Unknown field."] for name in unknown}, status=status.HTTP_400_BAD_REQUEST
            )
        try:
            percent = verify.parse_read_percent(body.get("read_percent", destination.verify_read_percent))
        except verify.ReadPercentInvalid as exc:
            return Response({"read_percent": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        item = verify.queue_verify(destination, percent, requested_by=request.user)
        return Response(QueueItemSerializer(item).data, status=status.HTTP_202_ACCEPTED)
