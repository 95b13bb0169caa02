from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .forms import PasswordEntry
from .models import Destination


class DestinationAdminForm(PasswordEntry):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave blank to keep the saved password.",
    )

    class Meta:
        model = Destination
        fields = list(Destination.SETTINGS)


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    form = DestinationAdminForm
    list_display = ["name", "engine", "host", "port", "username", "ssl", "passive", "read_only", "disabled"]

    def save_model(self, request: HttpRequest, obj: Destination, form: forms.ModelForm, change: bool) -> None:
        password = form.cleaned_data.get("password")
        if password:
            obj.set_password(password)
        super().save_model(request, obj, form, change)
