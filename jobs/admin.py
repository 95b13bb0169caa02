from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .models import Account, BackupJob


@admin.register(BackupJob)
class BackupJobAdmin(admin.ModelAdmin):
    fields = list(BackupJob.SETTINGS)
    list_display = ["name", "destination", "accounts_mode", "type", "retention", "parallel", "enabled"]
    filter_horizontal = ["accounts"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["username", "source", "reseller", "home", "suspended", "removed_at", "owner"]
    list_filter = ["source", "suspended"]
    search_fields = ["username", "reseller"]
    readonly_fields = ["source", "removed_at", "created"]

    def save_model(self, request: HttpRequest, obj: Account, form: forms.ModelForm, change: bool) -> None:
        obj.mark_set_by_admin(list(form.changed_data))  # discovery leaves these fields alone
        super().save_model(request, obj, form, change)
