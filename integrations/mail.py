"""Mail delivery: due outbox messages become e-mails (text + HTML + an iMIP invitation, RFC 6047)
sent over SMTP; with no mail server configured they are KEPT for the admin to read in the outbox.

Several workers may run this at once. A worker first *claims* one message in a short transaction
(PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the writer's BEGIN IMMEDIATE) by counting the attempt
and moving `next_attempt_at` a lease ahead, and commits. It talks to the SMTP server with no
transaction open (an IMMEDIATE transaction held across the network would stall every booking on
SQLite), then marks the message SENT in its own transaction right after the server accepted it.
Each attempt therefore sends at most once, and no two workers hold the same message. The one window
left: the process dies after the server accepted the message and before SENT is committed. Then it
is sent again once the lease expires, with the same Message-ID and the same UID and SEQUENCE, which
calendars treat as the same update. Closing that window needs a transactional mail server."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.models import OutboxMessage, OutboxStatus
from portal.services.notifications import IMAGE_CID, Sender

log = logging.getLogger("portal.mail")

LEASE = timedelta(minutes=10)  # far longer than one SMTP conversation with its timeouts
FIRST_RETRY = timedelta(minutes=1)  # then doubling, up to
LONGEST_RETRY = timedelta(hours=1)


@dataclass
class DeliveryCounts:
    sent: int = 0
    kept: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.kept + self.retrying + self.failed


class MailSettings(Protocol):
    """The part of portal.config.Settings this module reads."""

    base_url: str
    mail_server: str
    mail_port: int
    mail_username: str
    mail_password: str
    mail_use_tls: bool
    mail_from: str
    mail_timeout: int
    mail_max_attempts: int


class PermanentFailure(Exception):
    """The server refused this message for good (a 5xx for the recipient or the content)."""


class TemporaryFailure(Exception):
    """The server refused this message for now (a 4xx): try it again later."""


class ConnectionTrouble(TemporaryFailure):
    """The server could not be reached or talked to; later messages would fare no better."""


def deliver_due(
    session: Session, settings: MailSettings, now: datetime, *, limit: int = 200
) -> DeliveryCounts:
    """Deliver (or keep) queued messages whose time has come. Idempotent and safe to run in several
    workers at once. It commits on `session` itself: pass a session with no transaction open."""
    if session.in_transaction():
        raise RuntimeError(
            "deliver_due commits as it goes: pass a session with no transaction open"
        )
    counts = DeliveryCounts()
    if not settings.mail_server:
        counts.kept = _keep_due(session, now)
        return counts
    with SmtpConnection(settings) as smtp:
        for _ in range(limit):
            claim = _claim_next(session, settings, now)
            if claim is None:
                break
            if claim.email is None:  # could not even be built: counted as failed for good
                counts.failed += 1
                continue
            try:
                smtp.send(claim.email, to_address=claim.to_address)
            except PermanentFailure as exc:
                _record_failure(session, claim, now, str(exc), settings, final=True)
                counts.failed += 1
            except TemporaryFailure as exc:
                gave_up = _record_failure(session, claim, now, str(exc), settings)
                counts.failed += gave_up
                counts.retrying += not gave_up
                if isinstance(exc, ConnectionTrouble):
                    break  # the rest stay due for the next run
            else:
                _mark_sent(session, claim, now)
                counts.sent += 1
    if counts.total:
        log.info("mail delivery: %s", counts)
    return counts


def _keep_due(session: Session, now: datetime) -> int:
    with session.begin():
        result = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.QUEUED,
                OutboxMessage.next_attempt_at <= now,
            )
            .values(status=OutboxStatus.KEPT)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claim:
    message_id: int
    attempt: int  # the attempts count this worker set; its later updates check it still holds
    to_address: str
    email: EmailMessage | None


def _claim_next(session: Session, settings: MailSettings, now: datetime) -> Claim | None:
    """Take the next due message for this worker: count the attempt and lease it, committed.
    The e-mail is built inside, so nothing is read from the database while the SMTP server talks."""
    with session.begin():
        message = session.scalar(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.QUEUED,
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if message is None:
            return None
        message.attempts += 1
        try:
            email: EmailMessage | None = build_email(message, settings)
        except ValueError as exc:  # e.g. an address or header the e-mail format cannot carry
            message.status = OutboxStatus.FAILED
            message.next_attempt_at = now
            message.last_error = f"could not build the e-mail: {exc}"[:2000]
            log.warning("outbox message %s cannot be sent: %s", message.id, exc)
            email = None
        else:
            message.next_attempt_at = now + LEASE
        return Claim(message.id, message.attempts, message.to_address, email)


def _still_ours(claim: Claim) -> Any:
    return (
        (OutboxMessage.id == claim.message_id)
        & (OutboxMessage.status == OutboxStatus.QUEUED)
        & (OutboxMessage.attempts == claim.attempt)
    )


def _mark_sent(session: Session, claim: Claim, now: datetime) -> None:
    with session.begin():
        result = session.execute(
            update(OutboxMessage)
            .where(_still_ours(claim))
            .values(status=OutboxStatus.SENT, sent_at=now, next_attempt_at=now)
        )
    if not result.rowcount:  # type: ignore[attr-defined]
        log.warning("outbox message %s was sent but its claim had expired", claim.message_id)


def _record_failure(
    session: Session,
    claim: Claim,
    now: datetime,
    error: str,
    settings: MailSettings,
    *,
    final: bool = False,
) -> bool:
    """Schedule the next attempt with backoff, or give up; True when it gave up."""
    final = final or claim.attempt >= settings.mail_max_attempts
    values: dict[str, Any] = {"last_error": error[:2000]}
    if final:
        values.update(status=OutboxStatus.FAILED, next_attempt_at=now)
    else:
        values["next_attempt_at"] = now + retry_delay(claim.attempt)
    with session.begin():
        session.execute(update(OutboxMessage).where(_still_ours(claim)).values(**values))
    log.warning(
        "outbox message %s attempt %s failed%s: %s",
        claim.message_id,
        claim.attempt,
        " for good" if final else "",
        error,
    )
    return final


def retry_delay(attempt: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the attempt that failed, at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempt - 1, 0), LONGEST_RETRY)


def sender_address(settings: MailSettings) -> str:
    """The envelope sender: the address part of FOYER_MAIL_FROM."""
    return parseaddr(settings.mail_from)[1] or Sender.address


def build_email(message: OutboxMessage, settings: MailSettings) -> EmailMessage:
    """multipart/mixed [ multipart/alternative [text, HTML, text/calendar; method=...],
    invite.ics ]: the layout calendar clients recognise (the text/calendar part is what Outlook,
    Gmail and Apple Mail act on; the attachment serves clients that only import files)."""
    sender = Sender.from_settings(settings.base_url, settings.mail_from)
    email = EmailMessage(policy=SMTP)
    email["From"] = formataddr((sender.name, sender.address))
    email["To"] = formataddr((message.to_name, message.to_address))
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at)
    # Stable across attempts, so a rare second delivery is recognisably the same message.
    email["Message-ID"] = f"<outbox-{message.id}-{message.created_at:%Y%m%d%H%M%S}@{sender.host}>"
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    email.set_content(message.text_body)
    if message.html_body:
        email.add_alternative(message.html_body, subtype="html")
    if message.attachment_data and message.attachment_type and message.html_body:
        # multipart/related around the HTML part: the image shows inline (cid:) in every client
        maintype, _, subtype = message.attachment_type.partition("/")
        html_part = email.get_body(("html",))
        assert html_part is not None
        html_part.add_related(
            message.attachment_data,
            maintype=maintype,
            subtype=subtype,
            cid=f"<{IMAGE_CID}>",
            filename=message.attachment_name or "image",
            disposition="inline",
        )
    if message.ics_body:
        method = message.ics_method or "REQUEST"
        ics = message.ics_body.encode("utf-8")
        # base64 keeps the exact bytes: CRLF endings and 75-octet folding survive transport.
        email.add_alternative(
            ics,
            maintype="text",
            subtype="calendar",
            cte="base64",
            params={"method": method, "charset": "utf-8"},
        )
        email.add_attachment(
            ics, maintype="application", subtype="ics", filename="invite.ics", cte="base64"
        )
    return email


class SmtpConnection:
    """One SMTP session for a run, opened on the first message: STARTTLS and login when
    configured, a timeout on every network operation."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp = smtplib.SMTP(s.mail_server, s.mail_port, timeout=s.mail_timeout)
        try:
            smtp.ehlo()
            if s.mail_use_tls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.mail_username:
                smtp.login(s.mail_username, s.mail_password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, email: EmailMessage, *, to_address: str) -> None:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(
                email, from_addr=sender_address(self.settings), to_addrs=[to_address]
            )
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            self._after_refusal()
            text = "recipient refused: " + "; ".join(
                f"{address} {code} {_decode(reply)}"
                for address, (code, reply) in exc.recipients.items()
            )
            if codes and all(code >= 500 for code in codes):
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except smtplib.SMTPDataError as exc:
            self._after_refusal()
            text = f"message refused: {exc.smtp_code} {_decode(exc.smtp_error)}"
            if exc.smtp_code >= 500:
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Unreachable, TLS or login trouble, a disconnect, a refused sender: not this
            # message's fault, and the connection is no longer usable.
            self._drop()
            raise ConnectionTrouble(f"{type(exc).__name__}: {_describe(exc)}") from exc

    def _after_refusal(self) -> None:
        """The server refused one message; the session goes on after a reset."""
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_decode(exc.smtp_error)}"
    return str(exc) or type(exc).__name__
