from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backupsite import access
from backupsite.api import ModelCleanSerializer
from destinations.api import IsStaff
from destinations.models import Destination, Snapshot

from . import backup, queue, snapshots
from .models import Account, BackupJob, QueueItem


class AccountSerializer(ModelCleanSerializer):
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_staff=False),
        allow_null=True,
        required=False,
        help_text="Username of the client who owns this account, or null.",
    )

    class Meta:
        model = Account
        fields = ["id", "username", "home", "databases", "owner"]


class StaffWritePermission(IsStaff):
    """Clients may read what is theirs; only admins write."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


class AccountViewSet(viewsets.ModelViewSet):
    serializer_class = AccountSerializer
    permission_classes = [StaffWritePermission]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return access.visible_accounts(self.request.user).select_related("owner")


class BackupJobSerializer(ModelCleanSerializer):
    destination = serializers.PrimaryKeyRelatedField(queryset=Destination.objects.all())
    accounts = serializers.PrimaryKeyRelatedField(queryset=Account.objects.all(), many=True)

    class Meta:
        model = BackupJob
        fields = [
            "id",
            "name",
            "destination",
            "accounts",
            "type",
            "retention",
            "compression",
            "include_home",
            "include_databases",
            "excludes",
            "schedule",
            "enabled",
        ]

    def validate_accounts(self, value: list[Account]) -> list[Account]:
        if not value:
            raise serializers.ValidationError("Choose at least one account.")
        homeless = [a.username for a in value if not a.home]
        if homeless:
            raise serializers.ValidationError(
                f"These accounts have no home folder on this server: {', '.join(homeless)}."
            )
        return value


class QueueItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = QueueItem
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "bytes_done",
            "bytes_total",
            "files_done",
            "files_total",
            "log",
            "error",
            "result",
            "created",
            "started",
            "finished",
        ]
        read_only_fields = fields


class BackupJobViewSet(viewsets.ModelViewSet):
    queryset = BackupJob.objects.prefetch_related("accounts")
    serializer_class = BackupJobSerializer
    permission_classes = [IsStaff]

    @extend_schema(request=None, responses={202: QueueItemSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        """Queue a run of this job now; answers the queue item."""
        item = backup.queue_run(self.get_object(), requested_by=request.user)
        return Response(QueueItemSerializer(item).data, status=status.HTTP_202_ACCEPTED)


class QueueItemViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = QueueItemSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return access.visible_queue_items(self.request.user)

    @extend_schema(request=None, responses={200: QueueItemSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    def abort(self, request: Request, pk: str | None = None) -> Response:
        item = self.get_object()
        if not queue.request_abort(item):
            return Response({"detail": "This item has already finished."}, status=status.HTTP_409_CONFLICT)
        item.refresh_from_db()
        return Response(QueueItemSerializer(item).data)


class SnapshotPartSerializer(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    size = serializers.IntegerField()


class SnapshotSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account_name", read_only=True)
    complete = serializers.BooleanField(read_only=True)
    parts = serializers.SerializerMethodField()

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "destination",
            "account",
            "engine",
            "type",
            "path",
            "created",
            "size",
            "complete",
            "locked",
            "flags",
            "parts",
        ]
        read_only_fields = fields

    @extend_schema_field(SnapshotPartSerializer(many=True))
    def get_parts(self, snapshot: Snapshot) -> list[dict[str, Any]]:
        return [
            {"kind": p["kind"], "name": p.get("name", ""), "size": p.get("size", 0)} for p in snapshot.parts
        ]


class SnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = SnapshotSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        rows = access.visible_snapshots(self.request.user)
        account = self.request.query_params.get("account")
        if account:
            rows = rows.filter(account_name=account)
        destination = self.request.query_params.get("destination")
        if destination:
            if not destination.isdigit():
                return rows.none()
            rows = rows.filter(destination_id=int(destination))
        return rows

    @extend_schema(
        parameters=[
            OpenApiParameter("account", str, description="Username of the account"),
            OpenApiParameter("destination", int, description="Destination id"),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses={200: SnapshotSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    def lock(self, request: Request, pk: str | None = None) -> Response:
        snapshot = snapshots.set_locked(self.get_object(), True)
        return Response(SnapshotSerializer(snapshot).data)

    @extend_schema(request=None, responses={200: SnapshotSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    def unlock(self, request: Request, pk: str | None = None) -> Response:
        snapshot = snapshots.set_locked(self.get_object(), False)
        return Response(SnapshotSerializer(snapshot).data)
