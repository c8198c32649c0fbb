"""A real SMTP server on loopback that keeps what it receives, for e-mail tests.

    # the `smtp_sink` fixture (tests/conftest.py) starts and stops an SmtpSink
    def test_it_mails(smtp_sink, settings):
        smtp_sink.configure(settings)          # Django's SMTP backend -> the sink
        ...
        [message] = smtp_sink.wait_for(1)
        assert message["To"] == "ops@example.test"

For a worker process, pass `smtp_sink.env()` to `celery_worker(env=worker_env(**...))`.
Messages are `email.message.EmailMessage` objects (`.get_content()`, headers by name).
"""

from __future__ import annotations

import socket
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """Collects every message delivered to 127.0.0.1:`port`, with its SMTP envelope."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TO)
        self._raw: list[bytes] = []
        self._parsed: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller = None

    # aiosmtpd handler hook
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        # Kept raw and parsed when read: the sink answers as fast as a real mail server,
        # so a benchmark measures the sender, not Python's e-mail parser.
        with self._lock:
            self._raw.append(envelope.original_content)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message received so far, parsed."""
        with self._lock:
            parser = BytesParser(policy=policy.default)
            self._parsed.extend(parser.parsebytes(raw) for raw in self._raw[len(self._parsed) :])
            return list(self._parsed)

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self._lock:
            self._raw.clear()
            self._parsed.clear()
            self.envelopes.clear()

    def recipients(self) -> list[str]:
        with self._lock:
            return [rcpt for _, rcpts in self.envelopes for rcpt in rcpts]

    def wait_for(self, count: int, *, timeout: float = 30) -> list[EmailMessage]:
        """Wait until at least `count` messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                arrived = len(self._raw)
            if arrived >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} e-mail(s) at the SMTP sink within {timeout}s, got {len(self._raw)}"
        )

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (a Celery worker) to send its mail here."""
        return {"EMAIL_HOST": self.host, "EMAIL_PORT": str(self.port), "EMAIL_USE_TLS": "0"}

    def configure(self, settings) -> None:
        """Point Django's SMTP backend at the sink (pass pytest-django's `settings`)."""
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = self.host
        settings.EMAIL_PORT = self.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 10
