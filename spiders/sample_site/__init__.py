"""An offline, synthetic t.me web-preview site: tgwatch's crawl target for tests, benchmarks and the demo.

The markup follows t.me's real ``/s/NAME`` pages closely (studied from ``../shared/corpus``), so the
same parser reads both; every address on a page points back at this site, never at Telegram.

What the site holds (``build_world(seed, generation, big_size)``; same arguments, same site):

* ``daily_brief`` — English, news-like, verified; ~64 posts over 4 pages: text with bold/italic,
  links, @mentions, #hashtags, emoji, photos, albums, videos, link previews, forwards (named and
  hidden), replies, via-bot, signatures, documents, voice notes, polls, GIFs, service messages.
* ``korea_now`` — the same mixture in Korean; ~47 posts.
* ``media_lab`` — every kind the web preview shows, twice: photo, photo album, mixed photo/video
  album, video, "Media is too big" video, round video, GIF (video with ``autoplay loop muted`` and
  no duration), voice, document, sticker (``.tgs`` + ``.webp`` sources), poll, location, link preview,
  "not supported in your browser" media, forwards, reply, via bot, and service messages
  ("Channel created", "Channel photo updated", "Channel name was changed to …", "Pinned message").
* ``big_feed`` — ``big_size`` posts (default 400) of the mixed kind, for benchmarks.
* ``quiet_room`` — public channel without web preview: ``/s/quiet_room`` redirects to ``/quiet_room``.
* ``closed_club`` — private: the profile page says so; ``/s/closed_club`` redirects to it.
* any channel can be made to answer as blocked by Telegram (``world.with_kind(NAME, ChannelKind.BLOCKED)``:
  ``/NAME`` shows the block notice, ``/s/NAME`` and ``/NAME/ID`` lead there), and single messages can
  be taken away (``world.without_message(NAME, ID)``): takedown re-checks' view of removal.
* ``no_such_channel`` (and any other unknown name) — ``/s/NAME`` redirects to ``/NAME``, which is
  t.me's "Contact @NAME" form without title or counters.

History: ids start at 1 ("Channel created"), some ids are skipped (deleted before any crawl), an
album occupies one id per item but is one post (``data-post`` = its first id; items link to
``/NAME/ID?single``). Pages hold 20 posts: ``/s/NAME`` the newest, ``?before=ID`` the 20 with
smaller ids plus a ``tme_messages_more`` link (``data-before``) unless it is the oldest page, and a
``data-after`` link at the bottom of every page but the newest, as t.me does.

Generation ``g > 1`` edits three posts per channel (text appended, "edited" mark), deletes two and
appends three to six new ones; ``world.changes[name]`` says exactly which. Views and dates of kept
posts do not change. Counters (views, subscribers) are rounded to three significant digits so the
short form ("12.3K") parses back to the exact ground-truth number.

Media are synthetic and generated lazily: JPEG/PNG/WEBP pictures (PIL gradients, shapes, noise,
caption), H.264 MP4 clips of 1–3 s (PyAV), Ogg/Opus voice notes, gzipped Lottie ``.tgs`` stickers.

Use::

    async with SampleSite.serve(build_world(), port=0) as site:
        site.base_url                       # http://127.0.0.1:PORT
        site.faults.rate_limit("/s/daily_brief", times=2, retry_after=3)
        site.set_world(build_world(generation=2))   # same address, next generation

or by hand: ``python -m spiders.sample_site --port 8080 --generation 2``.
"""

from __future__ import annotations

from spiders.sample_site.content import (
    BASE_TIME,
    PAGE_SIZE,
    Channel,
    ChannelChanges,
    ChannelKind,
    Forward,
    LinkPreview,
    Location,
    Media,
    MediaKind,
    Message,
    Poll,
    PollOption,
    Span,
    Text,
    World,
    build_world,
    iter_media,
)
from spiders.sample_site.server import Fault, FaultKind, Faults, Hit, SampleSite, truncate_html

__all__ = [
    "BASE_TIME",
    "PAGE_SIZE",
    "Channel",
    "ChannelChanges",
    "ChannelKind",
    "Fault",
    "FaultKind",
    "Faults",
    "Forward",
    "Hit",
    "LinkPreview",
    "Location",
    "Media",
    "MediaKind",
    "Message",
    "Poll",
    "PollOption",
    "SampleSite",
    "Span",
    "Text",
    "World",
    "build_world",
    "iter_media",
    "truncate_html",
]
