"""The queue in the API: items, their progress and log, and abort."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backupsite import access
from backupsite.access import IsStaff
from backupsite.api import StrictBodyMixin
from jobs import queue
from jobs.models import QueueItem


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
