"""File names on pages: shown with \\xNN for bytes that are not UTF-8, carried exactly.

A name that is not UTF-8 is a str with lone surrogates (destinations.names); printed as it is,
it would make the whole page fail to encode. Every name a page shows or sends back goes
through one of these filters.
"""

from urllib.parse import quote

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from destinations import names

register = template.Library()


@register.filter(name="shown")
def shown(value: str) -> str:
    """The name as text (attributes, titles): undecodable bytes as \\xNN."""
    return names.display(str(value))


@register.filter(name="name_html")
def name_html(value: str) -> SafeString:
    """The name as HTML, its undecodable bytes marked, so that `caf\\xe9.txt` (Latin-1) and a
    name with those ten characters look different."""
    value = str(value)
    if names.is_text(value):
        return mark_safe(escape(value))  # noqa: S308 - escaped
    out = []
    for raw, text in names.raw_bytes(value):
        if raw:
            out.append(f'<span class="raw-byte" title="a byte that is not UTF-8">{escape(text)}</span>')
        else:
            out.append(escape(names.display(text)))
    return mark_safe("".join(out))  # noqa: S308 - every piece escaped


@register.filter(name="path_query")
def path_query(value: str, key: str = "path") -> str:
    """`path=<text>` or, for a name that is not UTF-8, `path_b64=<base64url>`, URL-encoded."""
    param, carried = names.query(str(value), key)
    return f"{param}={quote(carried, safe='/')}"


@register.filter(name="b64_suffix")
def b64_suffix(value: str) -> str:
    """'' for a name carried as text, '_b64' for one carried as base64url (form field names)."""
    return "" if names.is_text(str(value)) else "_b64"


@register.filter(name="carried")
def carried(value: str) -> str:
    """The form value that carries the name: its text, or its base64url form."""
    return names.query(str(value))[1]
