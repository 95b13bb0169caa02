"""Backups in the API: their files, versions of a file, restore and download requests, locks."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from backupsite import access
from backupsite.access import IsStaff
from backupsite.api import StrictBodyMixin
from destinations import listing, names
from jobs.api.queue import QueueItemSerializer
from jobs.backup import snapshots
from jobs.browse import requested_path
from jobs.limits import QueueFull
from jobs.models import Snapshot
from jobs.restore import request as restore


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


def entry_json(entry: Any) -> dict[str, Any]:
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


def query_path(request: Request) -> str:
    """The path of `?path=` or `?path_b64=`, or a 400 that says what is wrong with it."""
    params = request.query_params
    try:
        return requested_path(params)
    except ValueError as exc:
        key = "path_b64" if "path_b64" in params else "path"
        message = str(exc)
        raise ValidationError({key: [f"{message[:1].upper()}{message[1:]}."]}) from None


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
        snapshot = self.get_object()
        path = query_path(request)
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
        return self.get_paginated_response([entry_json(e) for e in page or []])

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
