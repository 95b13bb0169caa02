"""Clients (the hosting customers who log in) in the API, and their invitations."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from backupsite.access import IsStaff
from backupsite.api import StrictBodyMixin
from jobs.clients import InvitationError, clients, has_password, save_client, send_invitation
from jobs.models import Account


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
        return has_password(instance)

    def validate_password(self, value: str) -> str:
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
        accounts = validated_data.pop("accounts", [])
        password = validated_data.pop("password", "")
        validated_data.pop("invite", None)
        user = get_user_model()(**validated_data)
        return save_client(user, password=password, accounts=accounts)

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
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
