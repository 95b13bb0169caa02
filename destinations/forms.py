from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Div, Fieldset, Layout
from django import forms

from backupsite.forms import ModelLimitsMixin

from .models import Destination, Engine


class PasswordEntry(forms.ModelForm):
    """A password typed into the form counts before the model's rules run, so that
    Destination.clean() knows it was entered again with a new host, port or user."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or self.cleaned_data
        if cleaned.get("password"):
            self.instance.set_password(cleaned["password"])
        return cleaned


class DestinationForm(ModelLimitsMixin, PasswordEntry):
    """The destination page. The password is write-only: never rendered back, blank = unchanged."""

    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        strip=False,
        help_text="The FTP user's password. Stored encrypted and never shown again; "
        "leave blank to keep the saved one.",
    )

    class Meta:
        model = Destination
        fields = list(Destination.SETTINGS)  # the page lays them out in its own order
        widgets = {
            "engine": forms.RadioSelect,
            "tls_fingerprint": forms.TextInput(attrs={"class": "font-monospace", "spellcheck": "false"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        creating = self.instance.pk is None or not self.instance.has_password
        self.fields["password"].required = creating
        if not creating:
            self.fields["password"].widget.attrs["placeholder"] = "unchanged"
        self.fields["directory"].widget.attrs["placeholder"] = "backups"
        self.fields["reindex_schedule"].widget.attrs["placeholder"] = "30 5 * * *"
        self.fields["verify_read_percent"].required = False  # blank: the default share
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset(
                "General",
                "name",
                "engine",
                "directory",
                Div("reindex_schedule", css_id="reindex-schedule-group"),
                Div(
                    Div("verify_schedule", css_class="col-md-8"),
                    Div("verify_read_percent", css_class="col-md-4"),
                    css_class="row",
                ),
                Div("read_only", "disabled", css_class="d-flex gap-4"),
            ),
            Fieldset(
                "Server",
                Div(Div("host", css_class="col-md-8"), Div("port", css_class="col-md-4"), css_class="row"),
                "username",
                HTML(
                    '<div id="root-warning" class="alert alert-warning py-2 {% if not form.username_is_root %}'
                    'd-none{% endif %}" role="alert">Logging in as <b>root</b> gives backups full control of '
                    "the server. Create a dedicated FTP user for backups instead.</div>"
                ),
                "password",
            ),
            Fieldset(
                "Connection",
                Div(
                    Div("timeout", css_class="col-md-4"),
                    Div("retries", css_class="col-md-4"),
                    Div("concurrency", css_class="col-md-4"),
                    css_class="row",
                ),
                Div("ssl", "passive", css_class="d-flex gap-4"),
                "tls_fingerprint",
            ),
        )

    def clean_verify_read_percent(self) -> int:
        value = self.cleaned_data.get("verify_read_percent")
        default: int = Destination._meta.get_field("verify_read_percent").get_default()
        return default if value is None else int(value)

    @property
    def username_is_root(self) -> bool:
        value = self["username"].value() or ""
        return str(value).strip().lower() == "root"

    def save(self, commit: bool = True) -> Destination:
        destination: Destination = super().save(commit=False)
        password = self.cleaned_data.get("password") or ""
        if password:
            destination.set_password(password)
        if commit:
            destination.save()
        return destination

    @property
    def is_cpanel(self) -> bool:
        return (self["engine"].value() or "") == Engine.CPANEL
