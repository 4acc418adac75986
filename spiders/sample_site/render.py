"""HTML for the sample site, shaped like t.me's web preview so the real parser can read it.

The class names, nesting and attribute forms follow the live pages kept in ``../shared/corpus``
(2026 ``/s/NAME`` pages, older post widgets and fragments): ``tgme_channel_info`` header with
``counter_value``/``counter_type`` counters, ``div.tgme_widget_message_wrap >
div.tgme_widget_message[data-post]``, ``tgme_widget_message_text``, footer with views, signature,
"edited" and ``time[datetime]``, the ``tme_messages_more`` link with ``data-before`` and so on.
Decoration that a parser never reads (SVG icons, CSS, scripts) is left out.

``base`` is the site's own origin (``http://127.0.0.1:PORT``): where t.me pages write
``https://t.me/...`` or a CDN address, this site writes an address on itself, so every link the
crawler may follow stays on loopback.
"""

# Markup lines stay whole so they can be compared with the real pages by eye.
# ruff: noqa: E501

from __future__ import annotations

import zlib
from collections.abc import Iterable
from html import escape
from urllib.parse import quote

from spiders.sample_site.content import Channel, ChannelKind, Media, MediaKind, Message, Span, Text, World

ONCLICK = "return confirm('Open this link?\\n\\n'+this.href);"
NOT_SUPPORTED = "This media is not supported in your browser"


def esc(s: str) -> str:
    return escape(s, quote=True)


def compact(n: int) -> str:
    """t.me's short counter form: 419, 2.49K, 23.4K, 826K, 8.67M (three significant digits)."""
    if n < 1000:
        return str(n)
    for div, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1000, "K")):
        if n >= div:
            value = n / div
            decimals = 2 if value < 10 else 1 if value < 100 else 0
            factor = 10**decimals
            text = f"{int(value * factor + 1e-9) / factor:.{decimals}f}"
            return (text.rstrip("0").rstrip(".") if "." in text else text) + suffix
    raise AssertionError("unreachable")


def spaced(n: int) -> str:
    """The profile page's exact form: 11 286 994."""
    return f"{n:,}".replace(",", " ")


def file_size(n: int) -> str:
    """Document sizes as t.me writes them: 730 B, 48.3 KB, 2.1 MB."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def duration(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def media_url(base: str, media_id: str, ext: str, variant: str = "file") -> str:
    return f"{base}/media/{variant}/{quote(media_id)}.{ext}"


def emoji_url(base: str, char: str) -> str:
    return f"{base}/img/emoji/40/{char.encode().hex().upper()}.png"


# --------------------------------------------------------------------------------------------------
# message text


def _span_html(span: Span, base: str) -> str:
    if span.kind == "text":
        return esc(span.text)
    if span.kind == "bold":
        return f"<b>{esc(span.text)}</b>"
    if span.kind == "italic":
        return f"<i>{esc(span.text)}</i>"
    if span.kind == "br":
        return "<br/>"
    if span.kind == "link":
        return f'<a href="{esc(span.href)}" target="_blank" rel="noopener" onclick="{ONCLICK}">{esc(span.text)}</a>'
    if span.kind == "mention":
        return f'<a href="{base}/{esc(span.text)}" target="_blank">@{esc(span.text)}</a>'
    if span.kind == "hashtag":
        return f'<a href="?q={quote("#" + span.text)}">#{esc(span.text)}</a>'
    if span.kind == "emoji":
        return f'<i class="emoji" style="background-image:url(\'{emoji_url(base, span.text)}\')"><b>{esc(span.text)}</b></i>'
    raise ValueError(f"unknown span kind {span.kind!r}")


def text_html(text: Text, base: str) -> str:
    """The inner HTML of ``tgme_widget_message_text`` for this text."""
    return "".join(_span_html(s, base) for s in text.spans)


# --------------------------------------------------------------------------------------------------
# media


def _not_supported(label: str, href: str, tag: str = "span") -> str:
    link = (
        f'<a href="{href}" class="message_media_view_in_telegram">'
        if tag == "a"
        else ('<span class="message_media_view_in_telegram">')
    )
    return (
        '<div class="message_media_not_supported_wrap">\n  <div class="message_media_not_supported">\n'
        f'    <div class="message_media_not_supported_label">{esc(label)}</div>\n'
        f"    {link}VIEW IN TELEGRAM</{tag}>\n  </div>\n</div>"
    )


def _photo(m: Media, base: str, href: str, grouped_style: str = "") -> str:
    url = media_url(base, m.media_id, "jpg")
    ratio = m.height / m.width * 100 if m.width else 100
    if grouped_style:
        return (
            f'<a class="tgme_widget_message_photo_wrap grouped_media_wrap blured js-message_photo" '
            f'style="{grouped_style}background-image:url(\'{url}\')" data-ratio="{m.width / m.height:.4g}" '
            f'href="{href}?single">\n  <div class="grouped_media_helper" style="top:0;bottom:0;left:0px;right:0px;">\n'
            '    <div class="tgme_widget_message_photo grouped_media" style="top:0;bottom:0;left:0px;right:0px;"></div>\n'
            "  </div>\n</a>"
        )
    return (
        f'<a class="tgme_widget_message_photo_wrap {zlib.crc32(m.media_id.encode())}" href="{href}" '
        f"style=\"width:{m.width}px;background-image:url('{url}')\">\n"
        f'  <div class="tgme_widget_message_photo" style="padding-top:{ratio:.4f}%"></div>\n</a>'
    )


def _video(m: Media, base: str, href: str, grouped_style: str = "") -> str:
    thumb = media_url(base, m.media_id, "jpg", "thumb")
    gif = m.kind is MediaKind.GIF
    classes = "tgme_widget_message_video_player"
    if grouped_style:
        classes += " grouped_media_wrap blured"
    if m.too_big:
        classes += " not_supported"
    style = f' style="{grouped_style}"' if grouped_style else ""
    target = f"{href}?single" if grouped_style else href
    video = ""
    if not m.too_big:
        attrs = " autoplay loop muted playsinline" if gif else ""
        video = (
            f'\n  <video src="{media_url(base, m.media_id, "mp4")}" class="tgme_widget_message_video js-message_video" '
            f'width="100%" height="100%"{attrs}></video>\n'
        )
    wrap_style = (
        "left:0;right:0;top:0;bottom:0;"
        if grouped_style
        else (f"width:{m.width}px;padding-top:{m.height / m.width * 100:.4f}%")
    )
    wrap_class = "tgme_widget_message_video_wrap" + (" grouped_media js-message_video_wrap" if grouped_style else "")
    label = "Media is too big" if m.too_big else NOT_SUPPORTED
    time = (
        "" if gif else f'<time class="message_video_duration js-message_video_duration">{duration(m.duration)}</time>\n'
    )
    return (
        f'<a class="{classes} js-message_video_player"{style} href="{target}">'
        f'<i class="tgme_widget_message_video_thumb" style="background-image:url(\'{thumb}\')"></i>\n'
        f'<div class="{wrap_class}" style="{wrap_style}">{video}</div>\n'
        f'<div class="message_video_play js-message_video_play"></div>\n{time}'
        f"{_not_supported(label, href)}</a>"
    )


def _grouped(msg: Message, base: str, href_base: str) -> str:
    width = 453
    items = []
    top = 0
    for m in msg.media:
        h = 200
        style = f"left:0px;top:{top}px;width:{width}px;height:{h}px;margin-right:0px;margin-bottom:2px;"
        href = f"{href_base}/{m.item_id}"
        items.append(_photo(m, base, href, style) if m.kind is MediaKind.PHOTO else _video(m, base, href, style))
        top += h + 2
    return (
        '<div class="tgme_widget_message_grouped_wrap js-message_grouped_wrap" data-margin-w="2" data-margin-h="2" '
        f'style="width:{width}px;">\n  <div class="tgme_widget_message_grouped js-message_grouped" '
        f'style="padding-top:{top / width * 100:.3f}%">\n    <div class="tgme_widget_message_grouped_layer '
        f'js-message_grouped_layer" style="width:{width}px;height:{top}px">\n'
        + "".join(items)
        + "\n    </div>\n  </div>\n</div>"
    )


def _round_video(m: Media, base: str, href: str) -> str:
    return (
        '<div class="tgme_widget_message_roundvideo_player js-message_roundvideo_player">\n'
        '  <div class="tgme_widget_message_roundvideo_wrap">\n'
        f'    <i class="tgme_widget_message_roundvideo_thumb" style="background-image:url(\'{media_url(base, m.media_id, "jpg", "thumb")}\')"></i>\n'
        f'    <video class="tgme_widget_message_roundvideo js-message_roundvideo" src="{media_url(base, m.media_id, "mp4")}" '
        'width="100%" height="100%" preload muted autoplay loop playsinline></video>\n'
        '    <div class="tgme_widget_message_roundvideo_border"></div>\n  </div>\n'
        f"  {_not_supported(NOT_SUPPORTED, href, 'a')}\n"
        '  <div class="tgme_widget_message_roundvideo_play js-message_roundvideo_play"></div>\n'
        f'  <time class="tgme_widget_message_roundvideo_duration js-message_roundvideo_duration">{duration(m.duration)}</time>\n'
        "</div>"
    )


def _voice(m: Media, base: str, href: str) -> str:
    bars = "".join(f'<s style="height:{20 + (i * 37) % 80}%;"></s>' for i in range(24))
    return (
        f'<a class="tgme_widget_message_voice_player js-message_voice_player" href="{href}">\n'
        f'  <audio class="tgme_widget_message_voice js-message_voice" src="{media_url(base, m.media_id, "ogg")}" '
        'data-ogg="" width="100%" data-waveform=""></audio>\n'
        '  <div class="tgme_widget_message_voice_play accent_bghover"></div>\n'
        '  <div class="tgme_widget_message_voice_wrap">\n'
        '    <div class="tgme_widget_message_voice_progress_wrap js-message_voice_progress_wrap">\n'
        f'      <div class="tgme_widget_message_voice_progress_bg"><div class="bar">{bars}</div></div>\n'
        "    </div>\n"
        f'    <time class="tgme_widget_message_voice_duration js-message_voice_duration">{duration(m.duration)}</time>\n'
        "  </div>\n</a>"
    )


def _document(m: Media, href: str) -> str:
    return (
        f'<a class="tgme_widget_message_document_wrap" href="{href}">\n'
        '  <div class="tgme_widget_message_document_icon accent_bg"></div>\n'
        '  <div class="tgme_widget_message_document">\n'
        f'    <div class="tgme_widget_message_document_title accent_color" dir="auto">{esc(m.title)}</div>\n'
        f'    <div class="tgme_widget_message_document_extra" dir="auto">{file_size(m.size_bytes)}</div>\n'
        "  </div>\n</a>"
    )


def _sticker(m: Media, base: str) -> str:
    return (
        '<div class="tgme_widget_message_sticker_wrap media_supported_cont">\n'
        '  <div class="tgme_widget_message_tgsticker_wrap">\n'
        f'    <picture class="tgme_widget_message_tgsticker js-tgsticker_image" style="width:{m.width}px;">\n'
        '      <div style="padding-top:100%"></div>\n'
        f'      <source type="application/x-tgsticker" srcset="{media_url(base, m.media_id, "tgs")}">\n'
        f'      <source type="image/webp" srcset="{media_url(base, m.media_id, "webp")}">\n'
        "    </picture>\n  </div>\n</div>"
    )


def _poll(msg: Message, href: str) -> str:
    assert msg.poll is not None
    poll = msg.poll
    top = max(o.percent for o in poll.options) or 1
    options = "".join(
        '\n    <div class="tgme_widget_message_poll_option">\n'
        f'      <div class="tgme_widget_message_poll_option_percent">{o.percent}%</div>\n'
        '      <div class="tgme_widget_message_poll_option_value">\n'
        f'        <div class="tgme_widget_message_poll_option_text">{esc(o.text)}</div>\n'
        f'        <div class="tgme_widget_message_poll_option_bar accent_bg" style="width:{o.percent / top * 100:.4g}%"></div>\n'
        "      </div>\n    </div>"
        for o in poll.options
    )
    kind = "Anonymous Poll" if poll.anonymous else "Poll"
    return (
        '<div class="tgme_widget_message_poll js-poll">\n'
        f'  <div class="tgme_widget_message_poll_question">{esc(poll.question)}</div>\n'
        f'  <div class="tgme_widget_message_poll_type">{kind}</div>\n'
        f'  <a class="tgme_widget_message_poll_options" href="{href}">{options}\n  </a>\n</div>'
    )


def _location(msg: Message, base: str) -> str:
    assert msg.location is not None
    loc = msg.location
    q = f"{loc.latitude},{loc.longitude}"
    return (
        f'<a class="tgme_widget_message_location_wrap" href="https://maps.google.com/maps?q={q}&amp;ll={q}&amp;z=16">\n'
        f'  <div class="tgme_widget_message_location" style="background-image:url(\'{media_url(base, loc.media_id, "png")}\')"></div>\n'
        '  <div class="tgme_widget_message_location_point"></div>\n</a>'
    )


def _link_preview(msg: Message, base: str) -> str:
    assert msg.link_preview is not None
    lp = msg.link_preview
    image = ""
    if lp.image_id:
        image = (
            f'\n  <i class="link_preview_image" style="background-image:url(\'{media_url(base, lp.image_id, "jpg")}\');'
            'padding-top:52.5%"></i>'
        )
    return (
        f'<a class="tgme_widget_message_link_preview" href="{esc(lp.url)}">\n'
        f'  <div class="link_preview_site_name accent_color" dir="auto">{esc(lp.site_name)}</div>{image}\n'
        f'  <div class="link_preview_title" dir="auto">{esc(lp.title)}</div>\n'
        f'  <div class="link_preview_description" dir="auto">{esc(lp.description)}</div>\n</a>'
    )


# --------------------------------------------------------------------------------------------------
# one message


def _avatar(ch: Channel, base: str, cls: str) -> str:
    initial = esc(ch.title[:1])
    return f'<i class="{cls} bgcolor2" data-content="{initial}"><img src="{media_url(base, ch.avatar_id, "jpg")}"></i>'


def _footer(ch: Channel, msg: Message, href: str) -> str:
    parts = []
    if msg.poll is not None:
        parts.append(
            f'<span class="tgme_widget_message_voters">{compact(msg.poll.voters)}</span><span class="copyonly"> voters</span>'
        )
    if msg.views is not None:
        noun = "view" if msg.views == 1 else "views"
        parts.append(
            f'<span class="tgme_widget_message_views">{compact(msg.views)}</span><span class="copyonly"> {noun}</span>'
        )
    meta = ""
    if msg.author:
        meta += f'<span class="tgme_widget_message_from_author" dir="auto">{esc(msg.author)}</span>,&nbsp;'
    if msg.edited:
        meta += "edited &nbsp;"
    iso = msg.date.isoformat()
    meta += f'<a class="tgme_widget_message_date" href="{href}"><time datetime="{iso}" class="time">{msg.date:%H:%M}</time></a>'
    parts.append(f'<span class="tgme_widget_message_meta">{meta}</span>')
    return (
        '<div class="tgme_widget_message_footer compact js-message_footer">\n'
        '  <div class="tgme_widget_message_info short js-message_info">\n'
        f"    {''.join(parts)}\n  </div>\n</div>"
    )


def _reactions(msg: Message, base: str) -> str:
    if not msg.reactions:
        return ""
    spans = "".join(
        f'<span class="tgme_reaction">{_span_html(Span("emoji", e), base)}{compact(n)}</span>' for e, n in msg.reactions
    )
    return f'<div class="tgme_widget_message_reactions js-message_reactions">{spans}</div>'


def _media_block(ch: Channel, msg: Message, base: str, href: str) -> str:
    if msg.grouped:
        return _grouped(msg, base, f"{base}/{ch.username}")
    out = []
    for m in msg.media:
        if m.kind is MediaKind.PHOTO:
            out.append(_photo(m, base, href))
        elif m.kind in (MediaKind.VIDEO, MediaKind.GIF):
            out.append(_video(m, base, href))
        elif m.kind is MediaKind.ROUND_VIDEO:
            out.append(_round_video(m, base, href))
        elif m.kind is MediaKind.VOICE:
            out.append(_voice(m, base, href))
        elif m.kind is MediaKind.DOCUMENT:
            out.append(_document(m, href))
        elif m.kind is MediaKind.STICKER:
            out.append(_sticker(m, base))
        else:
            out.append(_not_supported(NOT_SUPPORTED, href, "a"))
    if msg.poll is not None:
        out.append(_poll(msg, href))
    if msg.location is not None:
        out.append(_location(msg, base))
    return "".join(out)


def render_message(ch: Channel, msg: Message, base: str) -> str:
    """One ``div.tgme_widget_message_wrap`` exactly as the channel page carries it."""
    name = ch.username
    href = f"{base}/{name}/{msg.id}"
    extra = ""
    if msg.service is not None:
        extra = " service_message"
    elif msg.media_kinds == (MediaKind.ROUND_VIDEO,):
        extra = " roundvideo_media no_bubble"
    elif msg.media_kinds == (MediaKind.STICKER,):
        extra = " sticker_media no_bubble"
    author = (
        f'<a class="tgme_widget_message_owner_name" href="{base}/{name}"><span dir="auto">{esc(ch.title)}</span></a>'
    )
    if msg.via_bot:
        author += (
            f'&nbsp;via&nbsp;<a class="tgme_widget_message_via_bot" href="{base}/{msg.via_bot}">@{msg.via_bot}</a>'
        )
    head = f'<div class="tgme_widget_message_author accent_color">{author}</div>\n'
    if msg.forwarded_from is not None:
        fw = msg.forwarded_from
        if fw.username:
            target = f"{base}/{fw.username}" + (f"/{fw.post_id}" if fw.post_id else "")
            who = f'<a class="tgme_widget_message_forwarded_from_name" href="{target}"><span dir="auto">{esc(fw.name)}</span></a>'
        else:
            who = f'<span class="tgme_widget_message_forwarded_from_name"><span dir="auto">{esc(fw.name)}</span></span>'
        head += f'<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from&nbsp;{who}</div>\n'
    if msg.reply_to is not None:
        quoted = world_snippet(ch, msg.reply_to)
        head += (
            f'<a class="tgme_widget_message_reply" href="{base}/{name}/{msg.reply_to}">'
            f'<div class="tgme_widget_message_author accent_color"><span class="tgme_widget_message_author_name" dir="auto">{esc(ch.title)}</span></div>'
            f'<div class="tgme_widget_message_text" dir="auto">{esc(quoted)}</div></a>\n'
        )
    if msg.service is not None:
        body = f'<div class="tgme_widget_message_text js-message_text" dir="auto">{text_html(msg.text, base)}</div>\n'
    else:
        text = (
            f'<div class="tgme_widget_message_text js-message_text" dir="auto">{text_html(msg.text, base)}</div>'
            if msg.text
            else ""
        )
        media = _media_block(ch, msg, base, href)
        if msg.media_kinds == (MediaKind.STICKER,):
            body = f"{_not_supported(NOT_SUPPORTED, href, 'a')}\n{media}\n"
        else:
            body = (
                f'<div class="media_supported_cont">{media}{text}</div>'
                '<div class="media_not_supported_cont">'
                f"{_not_supported('Please open Telegram to view this post', href, 'a')}</div>\n"
            )
        if msg.link_preview is not None:
            body += _link_preview(msg, base) + "\n"
        body += _reactions(msg, base)
    return (
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
        f'<div class="tgme_widget_message text_not_supported_wrap{extra} js-widget_message" data-post="{name}/{msg.id}">\n'
        f'  <div class="tgme_widget_message_user"><a href="{base}/{name}">{_avatar(ch, base, "tgme_widget_message_user_photo")}</a></div>\n'
        '  <div class="tgme_widget_message_bubble">\n    <i class="tgme_widget_message_bubble_tail"></i>\n'
        f"{head}{body}{_footer(ch, msg, href)}\n  </div>\n</div></div>"
    )


def world_snippet(ch: Channel, msg_id: int) -> str:
    """The short text a reply header quotes (t.me shows the start of the replied-to post)."""
    target = ch.message(msg_id)
    if target is None:
        return "Deleted message"
    plain = target.text.plain.replace("\n", " ")
    return plain[:80] or "Photo"


# --------------------------------------------------------------------------------------------------
# pages


def _head(title: str, og_title: str, description: str, image: str, extra: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html>\n  <head>\n    <meta charset="utf-8">\n'
        f"    <title>{esc(title)}</title>\n"
        f'    <meta property="og:title" content="{esc(og_title)}">\n'
        f'    <meta property="og:image" content="{esc(image)}">\n'
        '    <meta property="og:site_name" content="Telegram">\n'
        f'    <meta property="og:description" content="{esc(description)}">\n'
        f"{extra}  </head>\n"
    )


def render_channel_page(
    world: World, ch: Channel, messages: Iterable[Message], base: str, before: int | None, after: int | None
) -> str:
    """A ``/s/NAME`` page: header with channel info, the messages, the "load more" link(s).

    ``before`` is the id for the older-page link (None on the oldest page); ``after`` the id for the
    newer-page link t.me puts at the bottom of pages below the newest (None on the newest).
    """
    name = ch.username
    avatar = media_url(base, ch.avatar_id, "jpg")
    links = ""
    if before is not None:
        links += f'    <link rel="prev" href="/s/{name}?before={before}">\n'
    if after is not None:
        links += f'    <link rel="next" href="/s/{name}?after={after}">\n'
    head = _head(f"{ch.title} – Telegram", ch.title, ch.description, avatar, links)
    counters = "".join(
        f'<div class="tgme_channel_info_counter"><span class="counter_value">{compact(v)}</span> '
        f'<span class="counter_type">{k[:-1] if v == 1 else k}</span></div>'
        for k, v in ch.counters.items()
    )
    labels = '<i class="verified-icon"> ✔</i>' if ch.verified else ""
    description = f'<div class="tgme_channel_info_description">{esc(ch.description)}</div>' if ch.description else ""
    subs = ch.subscribers
    header = (
        '<header class="tgme_header search_collapsed">\n  <div class="tgme_container">\n'
        f'    <div class="tgme_header_search"><form class="tgme_header_search_form" action="/s/{name}">'
        '<input class="tgme_header_search_form_input js-header_search" placeholder="Search" name="q" value="" /></form></div>\n'
        '    <div class="tgme_header_right_column">\n      <section class="tgme_right_column">\n'
        '        <div class="tgme_channel_info">\n          <div class="tgme_channel_info_header">\n'
        f"            {_avatar(ch, base, 'tgme_page_photo_image')}\n"
        '            <div class="tgme_channel_info_header_title_wrap">\n'
        f'              <div class="tgme_channel_info_header_title"><span dir="auto">{esc(ch.title)}</span></div>\n'
        f'              <div class="tgme_channel_info_header_labels">{labels}</div>\n            </div>\n'
        f'            <div class="tgme_channel_info_header_username"><a href="{base}/{name}">@{name}</a></div>\n'
        "          </div>\n"
        f'          <div class="tgme_channel_info_counters">{counters}</div>\n'
        f"          {description}\n"
        "        </div>\n      </section>\n    </div>\n"
        f'    <div class="tgme_header_info"><a class="tgme_header_link" href="{base}/{name}">'
        f'<div class="tgme_header_title_wrap"><div class="tgme_header_title"><span dir="auto">{esc(ch.title)}</span></div></div>'
        f'<div class="tgme_header_counter">{compact(subs)} {"subscriber" if subs == 1 else "subscribers"}</div></a></div>\n'
        "  </div>\n</header>\n"
    )
    more = ""
    if before is not None:
        more = (
            '<div class="tgme_widget_message_centered js-messages_more_wrap">'
            f'<a href="/s/{name}?before={before}" class="tme_messages_more js-messages_more" data-before="{before}"></a></div>'
        )
    newer = ""
    if after is not None:
        newer = (
            '<div class="tgme_widget_message_centered js-messages_more_wrap">'
            f'<a href="/s/{name}?after={after}" class="tme_messages_more js-messages_more" data-after="{after}"></a></div>'
        )
    body = "".join(render_message(ch, m, base) for m in messages)
    return (
        f'{head}  <body class="widget_frame_base tgme_webpreview emoji_image thin_box_shadow tme_mode no_transitions">\n'
        f'{header}<main class="tgme_main" data-url="/{name}">\n  <div class="tgme_container">\n'
        f'    <section class="tgme_channel_history js-message_history">\n      {more}{body}{newer}\n'
        "    </section>\n  </div>\n</main>\n  </body>\n</html>\n"
    )


def _page_shell(head: str, inner: str) -> str:
    return (
        f'{head}  <body class="no_transition">\n    <div class="tgme_page_wrap">\n      <div class="tgme_body_wrap">\n'
        f'        <div class="tgme_page">\n{inner}\n        </div>\n      </div>\n    </div>\n  </body>\n</html>\n'
    )


#: the notice ``/NAME`` of a ``ChannelKind.BLOCKED`` channel shows (t.me's wording)
BLOCKED_NOTICE = "This channel can't be displayed because it violated Telegram's Terms of Service."


def render_profile(ch: Channel, base: str) -> str:
    """``/NAME`` for a known channel: title, counter, description, action button; a "Preview
    channel" link only when the channel has a web preview, a privacy note for a private one, and
    Telegram's block notice instead of the description for a blocked one."""
    name = ch.username
    avatar = media_url(base, ch.avatar_id, "jpg")
    head = _head(f"Telegram: View @{name}", ch.title, ch.description, avatar)
    verified = '<i class="verified-icon"> ✔</i>' if ch.verified else ""
    noun = "subscriber" if ch.subscribers == 1 else "subscribers"
    description = (
        f'<div class="tgme_page_description" dir="auto">{esc(ch.description)}</div>\n' if ch.description else ""
    )
    context = ""
    if ch.has_preview:
        context = f'<div class="tgme_page_context_link_wrap"><a class="tgme_page_context_link" href="/s/{name}">Preview channel</a></div>\n'
    if ch.kind is ChannelKind.BLOCKED:
        # t.me keeps the title and shows the block notice where the description was
        description = f'<div class="tgme_page_description" dir="auto">{esc(BLOCKED_NOTICE)}</div>\n'
    if ch.kind is ChannelKind.PRIVATE:
        action, additional = (
            "Join Channel",
            (
                f"This channel is private. If you have <strong>Telegram</strong>, you can ask to join "
                f'<strong dir="auto">{esc(ch.title)}</strong>.'
            ),
        )
    else:
        action, additional = (
            "View in Telegram",
            (
                f"If you have <strong>Telegram</strong>, you can view and join <br><strong>{esc(ch.title)}</strong> right away."
            ),
        )
    inner = (
        f'<div class="tgme_page_photo">\n  <a href="tg://resolve?domain={name}"><img class="tgme_page_photo_image" src="{avatar}"></a>\n</div>\n'
        f'<div class="tgme_page_title" dir="auto">\n  <span dir="auto">{esc(ch.title)}</span>{verified}\n</div>\n'
        f'<div class="tgme_page_extra">{spaced(ch.subscribers)} {noun}</div>\n{description}'
        f'<div class="tgme_page_action">\n  <a class="tgme_action_button_new shine" href="tg://resolve?domain={name}">{action}</a>\n</div>\n'
        f'{context}<div class="tgme_page_additional">\n  {additional}\n</div>'
    )
    return _page_shell(head, inner)


def render_not_found(username: str) -> str:
    """``/NAME`` for a username nobody holds: t.me's generic "Contact @NAME" form, no title."""
    name = esc(username)
    head = _head(f"Telegram: Contact @{username}", f"Telegram: Contact @{username}", "", "/img/t_logo_2x.png")
    inner = (
        '<div class="tgme_page_icon">\n  <i class="tgme_icon_user"></i>\n</div>\n'
        '<div class="tgme_page_description">\n  If you have <strong>Telegram</strong>, you can contact '
        f'<a class="tgme_username_link" href="tg://resolve?domain={name}">@{name}</a> right away.\n</div>\n'
        f'<div class="tgme_page_action">\n  <a class="tgme_action_button_new" href="tg://resolve?domain={name}">Send Message</a>\n</div>'
    )
    return _page_shell(head, inner)


def render_post_page(world: World, ch: Channel, msg: Message | None, msg_id: int, base: str) -> str:
    """``/NAME/ID``: the single post in its widget (or t.me's "Post not found" widget)."""
    if msg is None:
        head = _head("Telegram Widget", "Telegram Widget", "", "")
        return (
            f'{head}  <body class="widget_frame_base">\n    <div class="tgme_widget_message_error">'
            "Post not found</div>\n  </body>\n</html>\n"
        )
    head = _head(f"{ch.title} – Telegram", ch.title, msg.text.plain, media_url(base, ch.avatar_id, "jpg"))
    return (
        f'{head}  <body class="widget_frame_base tgme_widget">\n    <div class="tgme_widget_message_wrap_outer">'
        f"{render_message(ch, msg, base)}</div>\n  </body>\n</html>\n"
    )


def render_index(world: World, base: str) -> str:
    """The site's own front page (t.me has none): links to every username, for people, not parsers."""
    rows = "".join(
        f'<li><a href="/{c.username}">@{c.username}</a> ({c.kind.value}, {len(c.messages)} posts)'
        + (f' — <a href="/s/{c.username}">preview</a>' if c.has_preview else "")
        + "</li>\n"
        for c in world.channels.values()
    )
    missing = "".join(f'<li><a href="/{n}">@{n}</a> (does not exist)</li>\n' for n in world.missing)
    head = _head("tgwatch sample site", "tgwatch sample site", "Synthetic t.me-style pages", "")
    return (
        f"{head}  <body>\n    <h1>tgwatch sample site</h1>\n"
        f"    <p>seed {world.seed}, generation {world.generation}</p>\n    <ul>\n{rows}{missing}    </ul>\n  </body>\n</html>\n"
    )
