from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Div, Fieldset, Layout
from django import forms
from django.contrib.auth import get_user_model

from backupsite.forms import ModelLimitsMixin
from destinations.models import Destination, Engine
from destinations.validators import parse_cron
from jobs.notify.senders import ParsedTarget, parse_target

from .models import Account, BackupJob, NotificationEvent, NotificationTarget
from .validators import JUNK_EXCLUDES, home_warnings


class LinesField(forms.CharField):
    """A list of strings edited as one per line."""

    widget = forms.Textarea(attrs={"rows": 4, "class": "font-monospace"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class AccountForm(ModelLimitsMixin, forms.ModelForm):
    databases = LinesField(
        required=False,
        help_text="One database per line. Empty: every database named USERNAME_* (as cPanel names them), "
        "except those of an account with a longer name (USERNAME_x_* belongs to account USERNAME_x).",
    )

    class Meta:
        model = Account
        fields = ["username", "home", "databases", "owner", "reseller", "suspended"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = get_user_model().objects.filter(is_staff=False).order_by("username")
        owner.empty_label = "(no client)"
        self.fields["home"].widget.attrs["placeholder"] = "/home/USERNAME"
        if self.instance.pk and self.instance.source in (Account.Source.CPANEL, Account.Source.SYSTEM):
            note = " Found by discovery; what you change here stays as you set it."
            for name in ("home", "databases", "reseller", "suspended"):
                self.fields[name].help_text = (self.fields[name].help_text or "") + note
        self.helper = FormHelper()
        self.helper.form_tag = False

    @property
    def warnings(self) -> list[str]:
        """Not errors: the form saves anyway (see validators.home_warnings)."""
        home = self.cleaned_data.get("home") if hasattr(self, "cleaned_data") else self.initial.get("home")
        return home_warnings(str(home or ""))

    def save(self, commit: bool = True) -> Account:
        # Discovery keeps its hands off what an admin set (or changed) here.
        self.instance.mark_set_by_admin(list(self.changed_data))
        return super().save(commit)


class DiscoveryScheduleForm(forms.Form):
    schedule = forms.CharField(
        required=False,
        label="Find accounts on a schedule",
        help_text="Cron expression (minute hour day month weekday); empty: only by hand.",
    )

    def clean_schedule(self) -> str:
        expression = " ".join((self.cleaned_data.get("schedule") or "").split())
        if expression:
            parse_cron(expression)
        return expression


SCHEDULE_KINDS = [
    ("manual", "Only when run by hand"),
    ("hourly", "Every hour"),
    ("daily", "Every day"),
    ("weekly", "Every week"),
    ("monthly", "Every month"),
    ("cron", "Cron expression"),
]
WEEKDAYS = [
    (str(i), name)
    for i, name in enumerate(["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"])
]


class BackupJobForm(ModelLimitsMixin, forms.ModelForm):
    """A backup job. The schedule is picked as hourly/daily/weekly/monthly/cron and stored as cron."""

    excludes = LinesField(
        required=False,
        help_text="One glob pattern per line, relative to the home folder; a trailing / matches folders.",
    )
    include = LinesField(
        required=False,
        label="Only accounts named",
        help_text="One shell glob per line on the username (e.g. shop*). Empty: every account.",
    )
    exclude = LinesField(
        required=False, label="Never accounts named", help_text="One shell glob per line on the username."
    )
    resellers = LinesField(
        required=False,
        label="Only accounts of the resellers",
        help_text="One reseller per line (root: the server's own accounts). Empty: any reseller.",
    )
    junk_preset = forms.BooleanField(
        required=False,
        label="Also exclude junk (caches, trash, temporary files)",
        help_text=", ".join(JUNK_EXCLUDES),
    )
    schedule_kind = forms.ChoiceField(choices=SCHEDULE_KINDS, initial="daily", label="Schedule")
    schedule_time = forms.TimeField(
        required=False,
        initial="02:00",
        label="At",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    schedule_minute = forms.IntegerField(
        required=False, min_value=0, max_value=59, initial=0, label="Minute past the hour"
    )
    schedule_weekday = forms.ChoiceField(required=False, choices=WEEKDAYS, initial="0", label="On")
    schedule_day = forms.IntegerField(
        required=False, min_value=1, max_value=28, initial=1, label="Day of the month"
    )
    schedule_cron = forms.CharField(
        required=False, label="Cron expression", help_text="minute hour day month weekday"
    )

    class Meta:
        model = BackupJob
        fields = [
            name for name in BackupJob.SETTINGS if name != "schedule"
        ]  # built from the schedule_* fields
        widgets = {
            "accounts": forms.CheckboxSelectMultiple,
            "type": forms.RadioSelect,
            "accounts_mode": forms.RadioSelect,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        destination = self.fields["destination"]
        assert isinstance(destination, forms.ModelChoiceField)
        destination.queryset = Destination.objects.filter(
            engine=Engine.NATIVE, disabled=False, read_only=False
        )
        accounts = self.fields["accounts"]
        assert isinstance(accounts, forms.ModelMultipleChoiceField)
        accounts.queryset = Account.objects.exclude(home="").filter(removed_at__isnull=True)
        accounts.required = False
        self.fields["accounts_mode"].required = False
        self.fields["parallel"].required = False  # missing: the model's default
        for name in ("include", "exclude", "resellers"):
            self.fields[name].widget.attrs["rows"] = 2
        if self.instance.pk:
            self._load_schedule(self.instance.schedule)
            if all(p in self.instance.excludes for p in JUNK_EXCLUDES):
                self.initial["junk_preset"] = True
                self.initial["excludes"] = [p for p in self.instance.excludes if p not in JUNK_EXCLUDES]
        else:
            self.initial.setdefault("junk_preset", True)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset(
                "Job",
                "name",
                "destination",
                "accounts_mode",
                "accounts",
                # An empty list of choices shows neither the field's error nor a hint: say why.
                HTML(
                    '{% if not form.fields.accounts.queryset.exists %}<div id="no-accounts" '
                    'class="alert alert-warning py-2" role="alert">No account with a home folder yet: '
                    "<a href=\"{% url 'jobs:account-create' %}\">add one</a> first.</div>{% endif %}"
                ),
                "enabled",
            ),
            Fieldset(
                "Which accounts",
                "include",
                "exclude",
                "resellers",
                "skip_suspended",
                "parallel",
            ),
            Fieldset(
                "What",
                Div("include_home", "include_databases", "compression", css_class="d-flex flex-wrap gap-4"),
                "excludes",
                "junk_preset",
            ),
            Fieldset("How", "type", "retention"),
            Fieldset(
                "When",
                "schedule_kind",
                Div(
                    Div(
                        "schedule_time",
                        css_class="col-md-3 schedule-field",
                        data_kinds="daily weekly monthly",
                    ),
                    Div("schedule_minute", css_class="col-md-3 schedule-field", data_kinds="hourly"),
                    Div("schedule_weekday", css_class="col-md-3 schedule-field", data_kinds="weekly"),
                    Div("schedule_day", css_class="col-md-3 schedule-field", data_kinds="monthly"),
                    Div("schedule_cron", css_class="col-md-6 schedule-field", data_kinds="cron"),
                    css_class="row",
                ),
            ),
        )

    def _load_schedule(self, expression: str) -> None:
        fields = expression.split()
        if not fields:
            self.initial["schedule_kind"] = "manual"
            return
        minute, hour, dom, month, dow = fields
        simple = minute.isdigit() and month == "*"
        if simple and hour == "*" and dom == "*" and dow == "*":
            self.initial.update(schedule_kind="hourly", schedule_minute=int(minute))
        elif simple and hour.isdigit() and dom == "*" and dow == "*":
            self.initial.update(schedule_kind="daily", schedule_time=f"{int(hour):02d}:{int(minute):02d}")
        elif simple and hour.isdigit() and dom == "*" and dow.isdigit():
            self.initial.update(
                schedule_kind="weekly",
                schedule_time=f"{int(hour):02d}:{int(minute):02d}",
                schedule_weekday=dow,
            )
        elif simple and hour.isdigit() and dom.isdigit() and dow == "*":
            self.initial.update(
                schedule_kind="monthly",
                schedule_time=f"{int(hour):02d}:{int(minute):02d}",
                schedule_day=int(dom),
            )
        else:
            self.initial.update(schedule_kind="cron", schedule_cron=expression)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("accounts_mode"):
            # A form that names accounts but no mode (older clients) means those accounts.
            data["accounts_mode"] = (
                BackupJob.AccountsMode.SELECTED if data.get("accounts") else BackupJob.AccountsMode.ALL
            )
        if data.get("parallel") is None and "parallel" not in self.errors:
            data["parallel"] = BackupJob._meta.get_field("parallel").get_default()
        if data.get("accounts_mode") == BackupJob.AccountsMode.SELECTED and not data.get("accounts"):
            self.add_error("accounts", "Choose at least one account, or back up all accounts.")
        kind = data.get("schedule_kind")
        at = data.get("schedule_time")
        expression = ""
        if kind in ("daily", "weekly", "monthly") and at is None:
            self.add_error("schedule_time", "Choose the time of day.")
        elif kind == "hourly":
            expression = f"{data.get('schedule_minute') or 0} * * * *"
        elif kind == "daily" and at is not None:
            expression = f"{at.minute} {at.hour} * * *"
        elif kind == "weekly" and at is not None:
            expression = f"{at.minute} {at.hour} * * {data.get('schedule_weekday') or 0}"
        elif kind == "monthly" and at is not None:
            expression = f"{at.minute} {at.hour} {data.get('schedule_day') or 1} * *"
        elif kind == "cron":
            expression = " ".join((data.get("schedule_cron") or "").split())
            if not expression:
                self.add_error("schedule_cron", "Enter a cron expression.")
            else:
                try:
                    parse_cron(expression)
                except forms.ValidationError as exc:
                    self.add_error("schedule_cron", exc)
        self.instance.schedule = expression
        excludes = list(data.get("excludes") or [])
        if data.get("junk_preset"):
            excludes += [p for p in JUNK_EXCLUDES if p not in excludes]
        data["excludes"] = excludes
        return data


class ClientForm(ModelLimitsMixin, forms.ModelForm):
    """An admin creates or edits a client: login, email, password or invitation, and accounts.

    A new client either gets a password from the admin or (the default) an invitation: a mail
    with a link to choose their own. The view sends it after saving; this form only checks
    that it can be sent (an email address)."""

    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        strip=False,
        help_text="Leave blank to keep the current one, or (new client) to let them choose it from the invitation.",
    )
    invite = forms.BooleanField(
        required=False,
        initial=True,
        label="Email an invitation: a link to choose their password",
    )
    accounts = forms.ModelMultipleChoiceField(
        queryset=Account.objects.order_by("username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Accounts whose backups this client may browse and restore (accounts found in "
        "backups are listed too).",
    )

    class Meta:
        model = get_user_model()
        fields = ["username", "email", "password", "invite", "accounts"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The ModelForm copies the typed password over the stored hash while validating; the
        # hash comes back in save(), where save_client() sets a new password only when typed.
        self._stored_hash = self.instance.password
        self.fields["email"].required = False
        self.fields["email"].help_text = "Where invitations and password links go."
        if self.instance.pk:
            self.initial["accounts"] = list(Account.objects.filter(owner=self.instance))
            del self.fields["invite"]  # the client's page has its own "Send invitation" button
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_password(self) -> str:
        from django.contrib.auth.password_validation import validate_password

        password: str = self.cleaned_data.get("password") or ""
        if password:
            validate_password(password, self.instance)
        return password

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is None:
            if data.get("invite") and not data.get("email"):
                self.add_error("email", "An invitation needs the client's email address.")
            elif not data.get("invite") and not data.get("password") and "password" not in self.errors:
                self.add_error("password", "Choose a password for the new client, or send an invitation.")
        return data

    def save(self, commit: bool = True) -> Any:
        from .clients import save_client

        user = super().save(commit=False)
        user.password = self._stored_hash
        return save_client(
            user, password=self.cleaned_data["password"], accounts=self.cleaned_data["accounts"]
        )


class NotificationTargetForm(forms.ModelForm):
    """A notification target. The URL is shown redacted; leaving it as shown keeps the stored one."""

    url = forms.CharField(
        label="Email address or Apprise URL",
        max_length=2000,
        help_text="An email address (sent through the mail settings), or an Apprise URL: slack://..., "
        "tgram://..., discord://..., matrixs://..., json://host/path (a JSON webhook), ... "
        "Stored encrypted; tokens are never shown again (leave the shown form to keep them).",
        widget=forms.TextInput(attrs={"class": "font-monospace", "autocomplete": "off"}),
    )
    events = forms.MultipleChoiceField(
        choices=[],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What to send. Repeats of a failure for the same job are sent at most once an hour, "
        "then summed up.",
    )

    class Meta:
        model = NotificationTarget
        fields = ["name", "url", "events", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        events = self.fields["events"]
        assert isinstance(events, forms.MultipleChoiceField)
        events.choices = NotificationEvent.choices
        if self.instance.pk is not None:
            self.initial["url"] = self.instance.url_display
        self.parsed: ParsedTarget | None = None
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if self.instance.pk is not None and url == self.instance.url_display:
            return url  # unchanged: keep the stored URL and its secrets
        self.parsed = parse_target(url)
        return self.parsed.display

    def save(self, commit: bool = True) -> NotificationTarget:
        from jobs.notify.events import save_target

        target = super().save(commit=False)
        return save_target(target, self.parsed)
