from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, Throttled, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from backupsite import access
from backupsite.api import ModelCleanSerializer, StrictBodyMixin
from destinations import names
from destinations.api import IsStaff
from destinations.models import Destination, Snapshot

from . import backup, queue, snapshots
from .models import Account, BackupJob, NotificationEvent, NotificationTarget, QueueItem
from .validators import home_warnings

# --- browsing, restore and download ------------------------------------------------------------


class FileEntrySerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The name as shown: bytes that are not UTF-8 as \\xNN.")
    path = serializers.CharField(
        help_text="The path as text; for a name that is not UTF-8 its display form (never read back as that name)."
    )
    path_b64 = serializers.CharField(
        required=False,
        help_text="Only for a path that is not UTF-8: the base64url (RFC 4648 section 5, no padding) of "
        "its bytes, to send back as path_b64 or paths_b64. Absent when `path` is the name itself.",
    )
    type = serializers.CharField()
    size = serializers.IntegerField()
    mtime = serializers.DateTimeField(allow_null=True)


class RestoreRequestSerializer(serializers.Serializer):
    parts = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    paths = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False, default=list)
    paths_b64 = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="Paths given as the base64url of their bytes (for names that are not UTF-8).",
    )
    target = serializers.ChoiceField(
        choices=["new_folder", "overwrite"], required=False, default="new_folder"
    )
    database_name = serializers.CharField(required=False, allow_blank=True, default="")
    whole_account = serializers.BooleanField(
        required=False, default=False, help_text="Required (true) to restore or download everything."
    )
    confirm_overwrite = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Required (true) for target overwrite or a database restored under its live name.",
    )


class VersionSerializer(serializers.Serializer):
    snapshot = serializers.IntegerField()
    created = serializers.DateTimeField()
    engine = serializers.CharField()
    type = serializers.CharField()
    size = serializers.IntegerField()
    mtime = serializers.DateTimeField(allow_null=True)
    entry_type = serializers.CharField()
    group = serializers.IntegerField(
        help_text="Rows with the same group hold the same version (type, size, modification time), "
        "in consecutive backups; 1 is the newest version."
    )


def _entry_json(entry: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    row: dict[str, Any] = {
        "name": names.display(entry.name),
        "path": names.display(entry.path),
        "type": entry.type,
        "size": entry.size,
        "mtime": datetime.fromtimestamp(entry.mtime, tz=UTC) if entry.mtime else None,
    }
    raw = names.b64_if_needed(entry.path)
    if raw is not None:  # the name is not UTF-8: `path` is only its display form
        row["path_b64"] = raw
    return row


PATH_B64_HELP = (
    "Instead of path: the base64url (RFC 4648 section 5, padding optional) of the path's bytes, "
    "for names that are not UTF-8 (as path_b64 of the files listing gives it)"
)


def _requested_path(request: Request) -> str:
    """The path of `?path=` or `?path_b64=`, or a 400 that says what is wrong with it."""
    from .browse import requested_path

    params = request.query_params
    try:
        return requested_path(params)
    except ValueError as exc:
        key = "path_b64" if "path_b64" in params else "path"
        message = str(exc)
        raise ValidationError({key: [f"{message[:1].upper()}{message[1:]}."]}) from None


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


class StaffWritePermission(IsStaff):
    """Clients may read what is theirs; only admins write."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


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
        from . import discovery

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
        from datetime import UTC, datetime

        from .browse import versions

        account = self.get_object()
        path = _requested_path(request)
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


class QueueItemViewSet(StrictBodyMixin, viewsets.ReadOnlyModelViewSet):
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
    damaged = serializers.BooleanField(read_only=True)
    # What the last integrity check found: [{"path", "problem"}] (orphans included, not damage).
    problems = serializers.JSONField(source="verify_problems", read_only=True)

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
            "verified_at",
            "damaged",
            "problems",
        ]
        read_only_fields = fields

    @extend_schema_field(SnapshotPartSerializer(many=True))
    def get_parts(self, snapshot: Snapshot) -> list[dict[str, Any]]:
        return [
            {"kind": p["kind"], "name": p.get("name", ""), "size": p.get("size", 0)} for p in snapshot.parts
        ]


class SnapshotViewSet(
    StrictBodyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
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

    @extend_schema(
        parameters=[
            OpenApiParameter("path", str, description="Folder, relative to the home folder"),
            OpenApiParameter("path_b64", str, description=PATH_B64_HELP),
            OpenApiParameter("q", str, description="Search names under the folder (glob or text)"),
        ],
        responses={200: FileEntrySerializer(many=True)},
    )
    @action(detail=True, methods=["get"])
    def files(self, request: Request, pk: str | None = None) -> Response:
        """The entries of one folder of the backup's home directory (paginated)."""
        from destinations import listing

        snapshot = self.get_object()
        path = _requested_path(request)
        query = request.query_params.get("q", "").strip()
        if not snapshot.listing_root:
            entries: Sequence[Any] = []
        elif query:
            entries = listing.search(snapshot.listing_root, path, query, limit=1000)
        else:
            found = listing.list_folder_ordered(snapshot.listing_root, path)
            if found is None:
                raise NotFound("No such folder in this backup.")
            entries = found
        page = self.paginate_queryset(entries)
        return self.get_paginated_response([_entry_json(e) for e in page or []])

    @extend_schema(request=RestoreRequestSerializer, responses={202: QueueItemSerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        """Queue a restore into the backup's own account; answers the queue item."""
        return self._queue(request, download=False)

    @extend_schema(request=RestoreRequestSerializer, responses={202: QueueItemSerializer})
    @action(detail=True, methods=["post"])
    def download(self, request: Request, pk: str | None = None) -> Response:
        """Queue the preparation of a .tar.gz; the finished item's result holds its url."""
        return self._queue(request, download=True)

    def _queue(self, request: Request, *, download: bool) -> Response:
        from django.core.exceptions import ValidationError as DjangoValidationError

        from .limits import QueueFull
        from .restore import request as restore

        snapshot = self.get_object()
        data = request.data
        if not isinstance(data, dict):  # the parsers give maps only; never read anything else as {}
            raise ValidationError({"non_field_errors": ["The request body must be a JSON object."]})
        try:
            item = restore.submit(snapshot, data, request.user, download=download)
        except QueueFull as exc:
            raise Throttled(detail=exc.messages[0]) from None
        except DjangoValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            raise ValidationError(detail) from None
        return Response(QueueItemSerializer(item).data, status=status.HTTP_202_ACCEPTED)

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


class InvitationSerializer(serializers.Serializer):
    sent_to = serializers.EmailField()


class MailNotSent(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "mail_not_sent"


class ClientSerializer(serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
    )
    invite = serializers.BooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="Mail the client a link to choose their password (needs `email`).",
    )
    has_password = serializers.SerializerMethodField(help_text="Whether the client has chosen a password.")
    accounts = serializers.PrimaryKeyRelatedField(queryset=Account.objects.all(), many=True, required=False)

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "password", "email", "accounts", "invite", "has_password"]

    def get_has_password(self, instance: Any) -> bool:
        from .clients import has_password

        return has_password(instance)

    def validate_password(self, value: str) -> str:
        from django.contrib.auth.password_validation import validate_password

        if value:
            validate_password(value, self.instance)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        email = attrs.get("email", getattr(self.instance, "email", ""))
        if attrs.get("invite") and not email:
            raise ValidationError({"email": ["An invitation needs the client's email address."]})
        if self.instance is None and not attrs.get("password") and not attrs.get("invite"):
            raise ValidationError(
                {"password": ["Choose a password for the new client, or set invite to send them a link."]}
            )
        return attrs

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["accounts"] = sorted(account.pk for account in instance.accounts.all())
        return data

    def create(self, validated_data: dict[str, Any]) -> Any:
        from .clients import save_client

        accounts = validated_data.pop("accounts", [])
        password = validated_data.pop("password", "")
        validated_data.pop("invite", None)
        user = get_user_model()(**validated_data)
        return save_client(user, password=password, accounts=accounts)

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        from .clients import save_client

        accounts = validated_data.pop("accounts", None)
        password = validated_data.pop("password", "")
        validated_data.pop("invite", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return save_client(instance, password=password, accounts=accounts)


class ClientViewSet(StrictBodyMixin, viewsets.ModelViewSet):
    """Client users (admins only): they log in to browse and restore their accounts' backups."""

    serializer_class = ClientSerializer
    permission_classes = [IsStaff]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        from .clients import clients

        return clients().prefetch_related("accounts")

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        user = serializer.save()
        if serializer.validated_data.get("invite"):
            self._send_invitation(user)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        user = serializer.save()
        if serializer.validated_data.get("invite"):
            self._send_invitation(user)

    def _send_invitation(self, user: Any) -> str:
        from .clients import InvitationError, send_invitation

        try:
            return send_invitation(user, base_url=self.request.build_absolute_uri("/"))
        except InvitationError as exc:
            # The client is saved; say why no mail went out (503: the mail server, not the request).
            again = reverse("client-invite", kwargs={"pk": user.pk})
            raise MailNotSent(f"{exc} The client is saved: POST {again} to send it again.") from None

    @extend_schema(request=None, responses={200: InvitationSerializer})
    @action(detail=True, methods=["post"])
    def invite(self, request: Request, pk: str | None = None) -> Response:
        """Mail the client a link to choose their password (again, if they lost the first)."""
        user = self.get_object()
        if not user.email:
            raise ValidationError({"email": ["An invitation needs the client's email address."]})
        return Response({"sent_to": self._send_invitation(user)})


# --- notification targets ------------------------------------------------------------------------


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
        from django.core.exceptions import ValidationError as DjangoValidationError

        from .senders import parse_target

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
        from .notifications import save_target

        parsed = validated_data.pop("url")
        return save_target(NotificationTarget(**validated_data), parsed)

    def update(self, instance: NotificationTarget, validated_data: dict[str, Any]) -> NotificationTarget:
        from .notifications import save_target

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
        from . import notifications

        error = notifications.send_test(self.get_object())
        return Response({"ok": not error, "detail": error or "sent"})
