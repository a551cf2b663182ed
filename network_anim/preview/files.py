"""A preview on disk: one folder per contact holding each channel's file and routing.txt,
the router's reasons for that contact and the order the channels would be used in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from network_anim.app import App
from network_anim.config.calendar import describe_local
from network_anim.preview.artefacts import artefacts
from network_anim.preview.render import SEND, ContactPreview, Preview

ROUTING = "routing.txt"
_FIXED = ("email.html", "email.eml", "sms.txt", "letter.pdf", "post.html", "flash.html", ROUTING)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
LINKS_NOTE = (
    "Links: signed by the real composer with a throwaway key, for a preview-... "
    "occurrence: the portal refuses them (404) and records no open, click, read or "
    "unsubscribe."
)


@dataclass(frozen=True, slots=True)
class Written:
    preview: ContactPreview
    folder: Path
    files: tuple[str, ...]
    notes: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """What ``--json`` says of this contact."""
        routing = self.preview.routing
        return {
            "contact": self.preview.external_id,
            "name": self.preview.name,
            "in_audience": self.preview.in_audience,
            "folder": str(self.folder),
            "files": list(self.files),
            "channels": [
                {
                    "channel": c.channel,
                    "role": c.role,
                    "reason": c.reason,
                    "cost": round(c.cost, 4),
                    "not_before": c.not_before.isoformat() if c.not_before else None,
                }
                for c in self.preview.channels
            ],
            "excluded": [{"channel": ch, "reason": why} for ch, why in routing.excluded],
            "unreachable": routing.unreachable,
            "notes": list(self.notes),
        }


def write_preview(app: App, preview: Preview, out: Path) -> list[Written]:
    """Each contact's files under ``out/<contact id>/``; the files of an earlier preview
    in that folder are replaced, so none of them tells of a routing that changed."""
    written = []
    for contact in preview.contacts:
        folder = out / folder_name(contact.external_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name in (*_FIXED, *(f"{channel}.txt" for channel in app.definitions)):
            (folder / name).unlink(missing_ok=True)
        made = artefacts(app, contact, preview.at)
        for artefact in made.files:
            (folder / artefact.name).write_bytes(artefact.data)
        files = (*(a.name for a in made.files), ROUTING)
        notes = (*contact.notes, *made.notes)
        text = routing_text(app, preview, contact, files, notes)
        (folder / ROUTING).write_text(text, encoding="utf-8")
        written.append(Written(contact, folder, files, notes))
    return written


def folder_name(external_id: str) -> str:
    name = _UNSAFE.sub("_", external_id)
    return f"_{name}" if name in {"", ".", ".."} else name


def routing_text(
    app: App,
    preview: Preview,
    contact: ContactPreview,
    files: tuple[str, ...],
    notes: tuple[str, ...],
) -> str:
    person, company = contact.contact, contact.company
    audience = preview.source.audience.name
    lines = [
        f"Preview of {preview.source.label}",
        f"For: {contact.external_id} {contact.name}, {person.level}, {company.name}",
        f"Profile: email {person.email or '-'} ({person.email_kind}), "
        f"mobile {person.mobile or '-'}, web access {'yes' if person.web_access else 'no'}, "
        f"{person.timezone}, language {person.language}",
        f"Audience: {audience} "
        + ("(in it)" if contact.in_audience else "(NOT in it: a real send would skip them)"),
        f"Planned at: {describe_local(preview.at, person.timezone)} (engine clock)",
        "",
    ]
    routing = contact.routing
    if routing.unreachable:
        lines += [f"Unreachable: {routing.unreachable}: nothing would be sent.", ""]
    else:
        currency = {name: d.cost.currency for name, d in app.definitions.items()}
        lines.append("Channels, in the order they would be used:")
        for number, channel in enumerate(contact.channels, 1):
            role = "sent" if channel.role == SEND else "fallback"
            cost = f"{channel.cost:.3f} {currency.get(channel.channel, '')}".rstrip()
            lines.append(f"  {number}. {channel.channel} ({role}): {channel.reason}; cost {cost}")
        lines.append("")
    if routing.excluded:
        lines.append("Refused by the router:")
        lines += [f"  {channel}: {why}" for channel, why in routing.excluded]
        lines.append("")
    lines.append(f"Files: {', '.join(files)}")
    if notes:
        lines.append("Notes:")
        lines += [f"  - {note}" for note in notes]
    lines += [LINKS_NOTE, ""]
    return "\n".join(lines)
