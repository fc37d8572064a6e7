"""``zulip``: a stream message through Zulip's REST API, as notification-controller posts it.

``address`` is the Zulip server (its path is replaced by ``/api/v1/messages``),
``channel`` is ``<stream>/<topic>``, and the bot's e-mail and API key are the
secret keys ``username`` and ``password`` (HTTP basic auth). The body is a
form, ``type=stream``, ``to``, ``topic`` and ``content``: Flux's Markdown post
(a ``Flux Status`` heading, the object, the message, the metadata as a list).
Zulip cuts content over its ``max_message_length`` (10,000 characters by
default) itself, marked ``[message truncated]``, rather than refusing it
(https://zulip.com/api/send-message), so nothing is cut here.
"""

from __future__ import annotations

from urllib.parse import urlencode

from yarl import URL

from fluxwatch.notify.errors import NotifyConfigError
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider, is_error, metadata_items

MESSAGES_PATH = "/api/v1/messages"
FORM = "application/x-www-form-urlencoded"


def markdown_post(event: Event) -> str:
    obj = event.involved_object
    emoji = "⚠️" if is_error(event) else "ℹ️"  # noqa: RUF001 - Flux's own emoji
    metadata = "".join(f"* `{key}`: {value}\n" for key, value in metadata_items(event))
    return (
        f"## Flux Status\n\n{emoji} {obj.kind}/{obj.namespace}/{obj.name}\n\n"
        f"{event.message}\n\nMetadata:\n{metadata}"
    )


class Zulip(Provider):
    type = "zulip"
    needs_channel = True

    def _check(self) -> None:
        super()._check()
        name = f"provider {self.settings.name!r} (type zulip)"
        stream, _, topic = self.settings.channel.partition("/")
        if not stream or not topic:
            raise NotifyConfigError(
                f"{name}: channel must be <stream>/<topic>, got {self.settings.channel!r}"
            )
        if not (self.settings.username and self.settings.password):
            raise NotifyConfigError(
                f"{name} needs the bot's e-mail and API key: set secret keys username and password"
            )
        self.stream, self.topic = stream, topic

    async def post(self, event: Event) -> None:
        form = {"type": "stream", "to": self.stream, "topic": self.topic}
        form["content"] = markdown_post(event)
        # Sorted by key, as Go's url.Values.Encode writes it.
        body = urlencode(sorted(form.items())).encode()
        url = str(URL(self.address).with_path(MESSAGES_PATH))
        headers = {"Content-Type": FORM, **self.auth_headers(bearer=False), **self.settings.headers}
        await self.transport.request(
            "POST", url, endpoint=self.settings.endpoint, body=body, headers=headers
        )
