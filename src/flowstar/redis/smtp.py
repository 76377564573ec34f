"""A ``Sender`` that e-mails notifications through SMTP (needs ``pip install 'flowstar[notify]'``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.message import EmailMessage

import structlog

from flowstar.redis.notifications import Notification

try:
    import aiosmtplib
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("SmtpSender needs aiosmtplib: pip install 'flowstar[notify]'") from exc

__all__ = ["SmtpSender"]

log = structlog.get_logger("flowstar.notifications.smtp")

AddressBook = Callable[[Notification], Sequence[str]]


class SmtpSender:
    """E-mails each notification to the addresses ``addresses(note)`` returns.

    Args:
        addresses: Maps a notification to e-mail addresses (look up the user, or the
            members of the group); an empty result sends nothing.
        from_address: The From address.
        hostname: SMTP server.
        port: SMTP port (None: the default for the TLS mode).
        username: Login, if the server needs one.
        password: Password for ``username``.
        use_tls: Connect with implicit TLS (port 465 style).
        start_tls: Upgrade with STARTTLS (None: if the server offers it).
        timeout: Seconds for each SMTP operation.
    """

    def __init__(
        self,
        addresses: AddressBook,
        *,
        from_address: str,
        hostname: str = "localhost",
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.addresses = addresses
        self.from_address = from_address
        self.hostname = hostname
        self.port = port
        self.username = username
        self.password = password
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.timeout = timeout

    def message(self, note: Notification, recipients: Sequence[str]) -> EmailMessage:
        """The e-mail for ``note``."""
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = ", ".join(recipients)
        email["Subject"] = note.message
        lines = [note.message, "", f"Workflow: {note.workflow_name}", f"Instance: {note.instance_id}"]
        if note.task_id:
            lines.append(f"Task: {note.task_id} ({note.step_name})")
        if note.due_at:
            lines.append(f"Due: {note.due_at.isoformat()}")
        if note.status:
            lines.append(f"Status: {note.status}")
        email.set_content("\n".join(lines) + "\n")
        return email

    async def send(self, note: Notification) -> None:
        """E-mail ``note``; SMTP errors propagate so the event is retried."""
        recipients = list(self.addresses(note))
        if not recipients:
            log.debug("no e-mail address for notification", audience=note.audience, recipient=note.recipient)
            return
        await aiosmtplib.send(
            self.message(note, recipients),
            sender=self.from_address,
            recipients=recipients,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )
