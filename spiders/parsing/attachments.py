"""Handlers for what a message carries besides its text: media, polls, places, link previews.

Kept apart from the bubble walk (``message.MessageBuilder``) because this is the part that grows
whenever t.me adds an attachment layout, while the walk itself rarely changes. The walk dispatches
here by class token; each handler reads one element and appends to the builder's ``media`` or sets
one of its ``fields``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from foundation.models import LinkPreview, Location, MediaKind, MediaRef, Poll, PollOption
from spiders.parsing.markup import (
    background_url,
    class_tokens,
    find_any_class,
    find_class,
    parse_duration,
    size_bytes,
    style_dims,
    visible_text,
)
from spiders.parsing.numbers import parse_count


class AttachmentHandlers:
    """Mixin for ``MessageBuilder``: one method per attachment element, named in its handler table."""

    page_url: str
    fields: dict[str, Any]
    media: list[MediaRef]
    notices: list[str]

    def photo(self, el: Any) -> None:
        classes = class_tokens(el)
        grouped = "grouped_media_wrap" in classes
        inner = find_class(el, "tgme_widget_message_photo")
        ratio_style = inner.get("style") if inner is not None else None
        width, height = (None, None) if grouped else style_dims(el.get("style"), ratio_style)
        locator: dict[str, Any] = {"post": el.get("href")}
        if len(classes) > 1 and classes[1].isdigit():
            locator["web_photo_id"] = classes[1]
        self.media.append(
            MediaRef(
                kind=MediaKind.PHOTO, url=background_url(el.get("style")), width=width, height=height, locator=locator
            )
        )

    def video(self, el: Any) -> None:
        video_el = None
        for node in el.iter("video"):
            video_el = node
            break
        thumb = find_class(el, "tgme_widget_message_video_thumb")
        wrap = find_class(el, "tgme_widget_message_video_wrap")
        duration_el = find_class(el, "message_video_duration")
        grouped = "grouped_media_wrap" in class_tokens(el)
        width, height = (None, None) if grouped or wrap is None else style_dims(wrap.get("style"), wrap.get("style"))
        duration = parse_duration(duration_el.text if duration_el is not None else None)
        is_gif = (
            video_el is not None
            and duration_el is None
            and video_el.get("autoplay") is not None
            and video_el.get("loop") is not None
        )
        self._player_notice(el)
        self.media.append(
            MediaRef(
                kind=MediaKind.GIF if is_gif else MediaKind.VIDEO,
                url=video_el.get("src") if video_el is not None else None,
                thumb_url=background_url(thumb.get("style")) if thumb is not None else None,
                width=width,
                height=height,
                duration=duration,
                locator={"post": el.get("href")},
            )
        )

    def roundvideo(self, el: Any) -> None:
        video_el = find_class(el, "tgme_widget_message_roundvideo")
        thumb = find_class(el, "tgme_widget_message_roundvideo_thumb")
        duration_el = find_class(el, "tgme_widget_message_roundvideo_duration")
        self._player_notice(el)
        self.media.append(
            MediaRef(
                kind=MediaKind.ROUND_VIDEO,
                url=video_el.get("src") if video_el is not None else None,
                thumb_url=background_url(thumb.get("style")) if thumb is not None else None,
                duration=parse_duration(duration_el.text if duration_el is not None else None),
            )
        )

    def voice(self, el: Any) -> None:
        audio = None
        for node in el.iter("audio"):
            audio = node
            break
        duration_el = find_class(el, "tgme_widget_message_voice_duration")
        self.media.append(
            MediaRef(
                kind=MediaKind.VOICE,
                url=audio.get("src") if audio is not None else None,
                duration=parse_duration(duration_el.text if duration_el is not None else None),
                mime="audio/ogg" if audio is not None and audio.get("data-ogg") is not None else None,
            )
        )

    def document(self, el: Any) -> None:
        title_el = find_class(el, "tgme_widget_message_document_title")
        extra_el = find_class(el, "tgme_widget_message_document_extra")
        icon = find_class(el, "tgme_widget_message_document_icon")
        thumb = find_class(el, "tgme_widget_message_document_thumb")
        title = visible_text(title_el) if title_el is not None else None
        title = " ".join(title.split()) if title else None
        extra = visible_text(extra_el) if extra_el is not None else None
        is_audio = icon is not None and "audio" in class_tokens(icon)
        # an audio file's extra line names its performer; a document's gives its size ("2.1 MB")
        performer = extra if is_audio and size_bytes(extra) is None else None
        size_text = None if performer is not None else extra
        self.media.append(
            MediaRef(
                kind=MediaKind.AUDIO if is_audio else MediaKind.DOCUMENT,
                title=title,
                performer=performer or None,
                file_name=title if title and "." in title and not is_audio else None,
                size_text=size_text,
                size=size_bytes(size_text),
                thumb_url=background_url(thumb.get("style")) if thumb is not None else None,
                locator={"post": el.get("href")},
            )
        )

    def sticker(self, el: Any) -> None:
        url = mime = None
        for node in el.iter():
            if not isinstance(node.tag, str):
                continue
            if node.tag == "source" and node.get("srcset"):
                url, mime = node.get("srcset"), node.get("type")
                break
            if node.tag == "video" and node.get("src"):
                url, mime = node.get("src"), "video/webm"
                break
            if "tgme_widget_message_sticker" in class_tokens(node):
                url = node.get("data-webp") or background_url(node.get("style"))
                mime = "image/webp"
                break
        emoji = None
        for node in el.iter():
            if isinstance(node.tag, str) and node.get("data-sticker-emoji"):
                emoji = node.get("data-sticker-emoji")
                break
        picture = find_any_class(el, "tgme_widget_message_tgsticker", "tgme_widget_message_sticker")
        width, _ = style_dims(picture.get("style") if picture is not None else None, None)
        self.media.append(MediaRef(kind=MediaKind.STICKER, url=url, mime=mime, emoji=emoji, width=width, height=width))

    def poll(self, el: Any) -> None:
        question_el = find_class(el, "tgme_widget_message_poll_question")
        type_el = find_class(el, "tgme_widget_message_poll_type")
        options = []
        for opt in el.iter():
            if "tgme_widget_message_poll_option" not in class_tokens(opt):
                continue
            text_el = find_class(opt, "tgme_widget_message_poll_option_text")
            pct_el = find_class(opt, "tgme_widget_message_poll_option_percent")
            pct = (pct_el.text or "").strip().rstrip("%") if pct_el is not None else ""
            options.append(
                PollOption(
                    text=visible_text(text_el) if text_el is not None else "",
                    percent=float(pct) if pct.replace(".", "", 1).isdigit() else None,
                )
            )
        self.fields["poll"] = Poll(
            question=visible_text(question_el) if question_el is not None else "",
            options=options,
            kind=visible_text(type_el) if type_el is not None else None,
            voters=self.fields.get("_voters"),
        )

    def voters(self, el: Any) -> None:
        voters = parse_count(el.text or "")
        self.fields["_voters"] = voters
        if "poll" in self.fields:
            self.fields["poll"] = self.fields["poll"].model_copy(update={"voters": voters})

    def location(self, el: Any) -> None:
        href = el.get("href") or ""
        lat = lon = None
        q = parse_qs(urlsplit(href).query).get("q", [""])[0]
        if "," in q:
            a, _, b = q.partition(",")
            try:
                lat, lon = float(a), float(b)
            except ValueError:
                lat = lon = None
        title_el = find_class(el, "tgme_widget_message_venue_title")
        addr_el = find_class(el, "tgme_widget_message_venue_address")
        self.fields["location"] = Location(
            latitude=lat,
            longitude=lon,
            title=visible_text(title_el) if title_el is not None else None,
            address=visible_text(addr_el) if addr_el is not None else None,
            url=href or None,
        )

    def venue(self, el: Any) -> None:  # venue text sits beside the map in some layouts
        title_el = find_class(el, "tgme_widget_message_venue_title")
        addr_el = find_class(el, "tgme_widget_message_venue_address")
        loc = self.fields.get("location") or Location()
        self.fields["location"] = loc.model_copy(
            update={
                "title": visible_text(title_el) if title_el is not None else loc.title,
                "address": visible_text(addr_el) if addr_el is not None else loc.address,
            }
        )

    def link_preview(self, el: Any) -> None:
        def part(cls: str) -> str | None:
            node = find_class(el, cls)
            return visible_text(node) or None if node is not None else None

        image = find_any_class(el, "link_preview_image", "link_preview_right_image")
        href = el.get("href")
        self.fields["link_preview"] = LinkPreview(
            url=urljoin(self.page_url, href) if href else None,
            site=part("link_preview_site_name"),
            title=part("link_preview_title"),
            description=part("link_preview_description"),
            image_url=background_url(image.get("style")) if image is not None else None,
        )

    def service_photo(self, el: Any) -> None:
        img = None
        for node in el.iter("img"):
            img = node
            break
        self.media.append(
            MediaRef(
                kind=MediaKind.PHOTO,
                url=img.get("src") if img is not None else background_url(el.get("style")),
                locator={"post": el.get("href"), "service": True},
            )
        )

    def _player_notice(self, el: Any) -> None:
        """A notice inside a player matters only when it is not the stock "not supported in your browser"."""
        label_el = find_class(el, "message_media_not_supported_label")
        if label_el is None:
            return
        label = visible_text(label_el)
        if label and "in your browser" not in label and label not in self.notices:
            self.notices.append(label)
