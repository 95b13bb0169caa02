"""Destinations in the API: the settings (`destinations.api`) and the work on them, reindex and
integrity check, which this app adds."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from destinations import api as destinations_api
from jobs.api.queue import QueueItemSerializer
from jobs.reindex import sync
from jobs.verify import check


class DestinationViewSet(destinations_api.DestinationViewSet):
    """FTP destinations (admins only). Deleting one never touches the files on the server."""

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def reindex(self, request: Request, pk: str | None = None) -> Response:
        """Queue a reindex of this destination (or answer the one already queued); answers the queue item."""
        destination = self.get_object()
        if destination.disabled:
            return Response({"detail": "This destination is disabled."}, status=status.HTTP_409_CONFLICT)
        item = sync.queue_reindex(destination, requested_by=request.user)
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
            percent = check.parse_read_percent(body.get("read_percent", destination.verify_read_percent))
        except check.ReadPercentInvalid as exc:
            return Response({"read_percent": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        item = check.queue_verify(destination, percent, requested_by=request.user)
        return Response(QueueItemSerializer(item).data, status=status.HTTP_202_ACCEPTED)
