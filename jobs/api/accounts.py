"""Accounts and backup jobs in the API."""

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from backupsite import access
from backupsite.access import IsStaff, StaffWritePermission
from backupsite.api import ModelCleanSerializer, StrictBodyMixin
from destinations.models import Destination
from jobs.api.backups import PATH_B64_HELP, VersionSerializer, query_path
from jobs.api.queue import QueueItemSerializer
from jobs.backup import cycle as backup
from jobs.browse import versions
from jobs.discovery import accounts as discovery
from jobs.models import Account, BackupJob
from jobs.validators import home_warnings


class AccountSerializer(ModelCleanSerializer):
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_staff=False),
        allow_null=True,
        required=False,
        help_text="Username of the client who owns this account, or null.",
    )

    warnings = serializers.SerializerMethodField(
        help_text="What is odd but allowed, e.g. a home folder that does not exist on this server."
    )

    class Meta:
        model = Account
        fields = [
            "id",
            "username",
            "home",
            "databases",
            "owner",
            "source",
            "reseller",
            "domains",
            "suspended",
            "plan",
            "database_users",
            "removed_at",
            "admin_fields",
            "warnings",
        ]
        read_only_fields = ["source", "domains", "plan", "database_users", "removed_at", "admin_fields"]

    def get_warnings(self, account: Account) -> list[str]:
        return home_warnings(account.home)

    def save(self, **kwargs: Any) -> Account:
        # What an admin sets through the API wins over later discoveries, as on the pages.
        account: Account = super().save(**kwargs)
        before = list(account.admin_fields or [])
        account.mark_set_by_admin(list(self.validated_data))
        if account.admin_fields != before:
            Account.objects.filter(pk=account.pk).update(admin_fields=account.admin_fields)
        return account


class AccountViewSet(StrictBodyMixin, viewsets.ModelViewSet):
    serializer_class = AccountSerializer
    permission_classes = [StaffWritePermission]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return access.visible_accounts(self.request.user).select_related("owner")

    @extend_schema(request=None, responses={202: QueueItemSerializer})
    @action(detail=False, methods=["post"], permission_classes=[IsStaff])
    def discover(self, request: Request) -> Response:
        """Find the accounts of this server (cPanel's users, or system users); answers the
        queue item (the one already pending or running, if any)."""
        item = discovery.queue_discovery(requested_by=request.user)
        return Response(QueueItemSerializer(item).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[
            OpenApiParameter("path", str, description="File path, relative to the home folder"),
            OpenApiParameter("path_b64", str, description=PATH_B64_HELP),
        ],
        responses={200: VersionSerializer(many=True)},
    )
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        """The file at `path` in every backup of this account, newest first (paginated)."""
        account = self.get_object()
        path = query_path(request)
        if not path:
            raise ValidationError({"path": ["Give the path of a file, relative to the home folder."]})
        rows = [
            {
                "snapshot": row["snapshot"].pk,
                "created": row["snapshot"].created,
                "engine": row["snapshot"].engine,
                "type": row["snapshot"].type,
                "size": row["entry"].size,
                "mtime": datetime.fromtimestamp(row["entry"].mtime, tz=UTC) if row["entry"].mtime else None,
                "entry_type": row["entry"].type,
                "group": row["group"],
            }
            for row in versions(request.user, account, path)
        ]
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(page or [])


class BackupJobSerializer(ModelCleanSerializer):
    destination = serializers.PrimaryKeyRelatedField(queryset=Destination.objects.all())
    accounts = serializers.PrimaryKeyRelatedField(queryset=Account.objects.all(), many=True, required=False)

    class Meta:
        model = BackupJob
        fields = ["id", *BackupJob.SETTINGS]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is None and "accounts_mode" not in attrs and "accounts" in attrs:
            # A new job that lists accounts without a mode backs up those accounts, not all.
            attrs["accounts_mode"] = BackupJob.AccountsMode.SELECTED
        attrs = super().validate(attrs)
        mode = attrs.get("accounts_mode", getattr(self.instance, "accounts_mode", BackupJob.AccountsMode.ALL))
        if "accounts" in attrs:
            chosen = attrs["accounts"]
        elif self.instance is not None:
            chosen = list(self.instance.accounts.all())
        else:
            chosen = []
        if mode == BackupJob.AccountsMode.SELECTED and not chosen:
            raise serializers.ValidationError({"accounts": ["Choose at least one account."]})
        return attrs

    def validate_accounts(self, value: list[Account]) -> list[Account]:
        homeless = [a.username for a in value if not a.home]
        if homeless:
            raise serializers.ValidationError(
                f"These accounts have no home folder on this server: {', '.join(homeless)}."
            )
        return value


class BackupJobViewSet(StrictBodyMixin, viewsets.ModelViewSet):
    queryset = BackupJob.objects.prefetch_related("accounts")
    serializer_class = BackupJobSerializer
    permission_classes = [IsStaff]

    @extend_schema(request=None, responses={202: QueueItemSerializer})
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        """Queue a run of this job now; answers the queue item."""
        item = backup.queue_run(self.get_object(), requested_by=request.user)
        return Response(QueueItemSerializer(item).data, status=status.HTTP_202_ACCEPTED)
