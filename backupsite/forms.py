"""Forms of the login's second step, the two-factor page and the preferences, and the HTML
limits every ModelForm of the panel takes from its model."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordChangeForm
from django.core import validators
from django.core.exceptions import FieldDoesNotExist
from django.http import HttpRequest

from . import throttle, twofactor
from .models import Preferences, time_zone_names


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        min_length=6,
        max_length=8,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "pattern": "[0-9 ]*",
            }
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not code.isdigit():
            raise forms.ValidationError("The code is 6 digits.")
        return code


class TurnOffForm(forms.Form):
    """Turning two-factor off asks again for the password or a code: a session left open is
    not enough. Wrong answers count toward the login throttling like wrong logins."""

    password = forms.CharField(
        required=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    code = forms.CharField(
        label="or a code from your app",
        required=False,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        user: Any = self.request.user
        password, code = data.get("password"), "".join((data.get("code") or "").split())
        if not password and not code:
            raise forms.ValidationError("Enter your password or a code from your app.")
        if password:
            # Through authenticate(), so that django-axes counts and locks it like a login.
            ok = authenticate(self.request, username=user.get_username(), password=password) is not None
        else:
            ok = twofactor.check_code(user, code) is not None
            if not ok:
                throttle.count_failure(self.request, user.get_username())
        if not ok:
            raise forms.ValidationError("That password or code is not right.")
        return data


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's password change, with the old password checked through authenticate(): a
    session left open must not become an unthrottled way to guess the password."""

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password: str = self.cleaned_data["old_password"]
        if authenticate(self.request, username=self.user.get_username(), password=old_password) is None:
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


# Model validators whose limit the browser can show and enforce, and the attribute for it.
_HTML_LIMITS: tuple[tuple[type[validators.BaseValidator], str], ...] = (
    (validators.MinValueValidator, "min"),
    (validators.MaxValueValidator, "max"),
    (validators.MinLengthValidator, "minlength"),
    (validators.MaxLengthValidator, "maxlength"),
)


def apply_model_limits(form: forms.ModelForm) -> None:
    """Give each field the HTML limits of its model field's validators, so the page and the
    server apply one rule (a PositiveIntegerField alone renders min=0 even when the model
    requires at least 1)."""
    options = form._meta.model._meta
    for name, field in form.fields.items():
        if name in form.declared_fields:  # the form's own field (e.g. a raw password), own rules
            continue
        try:
            model_field = options.get_field(name)
        except FieldDoesNotExist:
            continue
        for validator in getattr(model_field, "validators", ()):
            for kind, attribute in _HTML_LIMITS:
                if isinstance(validator, kind):
                    limit = (
                        validator.limit_value() if callable(validator.limit_value) else validator.limit_value
                    )
                    field.widget.attrs[attribute] = str(limit)
                    if attribute in ("min", "max") and isinstance(field, forms.IntegerField):
                        setattr(field, f"{attribute}_value", limit)


class ModelLimitsMixin:
    """For every ModelForm of the panel: see apply_model_limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert isinstance(self, forms.ModelForm)
        apply_model_limits(self)


class PreferencesForm(ModelLimitsMixin, forms.ModelForm):
    class Meta:
        model = Preferences
        fields = ["time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default = f"The server's ({settings.TIME_ZONE})"
        self.fields["time_zone"] = forms.ChoiceField(
            label="Time zone",
            choices=[("", default), *((name, name) for name in time_zone_names())],
            required=False,
            help_text=Preferences._meta.get_field("time_zone").help_text,
        )
