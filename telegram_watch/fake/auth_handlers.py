"""Handlers for the connection handshake and login: ``help.getConfig`` and ``auth.*``.

Separate because these are the only requests answered before an account is known
(``auth=False``) and the only ones that bind or drop the connection's auth key.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from telethon.tl import functions, types
from telethon.tl.types import auth as t_auth

from . import tl
from .dispatch import current_key, handles
from .faults import RpcFault
from .model import FakeUser
from .world import SERVER_IP, SERVER_PORT, FakeTelegram


@handles(functions.help.GetConfigRequest, auth=False)
def _get_config(world: FakeTelegram, viewer: FakeUser | None, req: Any) -> Any:
    now = tl.when(world.now())
    assert now is not None
    options = [types.DcOption(id=i, ip_address=f"149.154.167.{50 + i}", port=SERVER_PORT) for i in range(1, 6)]
    options[1] = types.DcOption(id=2, ip_address=SERVER_IP, port=SERVER_PORT)
    return types.Config(
        date=now,
        expires=now + dt.timedelta(hours=1),
        test_mode=False,
        this_dc=tl.DC_ID,
        dc_options=options,
        dc_txt_domain_name="_fake.invalid",
        chat_size_max=200,
        megagroup_size_max=200_000,
        forwarded_count_max=100,
        online_update_period_ms=210_000,
        offline_blur_timeout_ms=5_000,
        offline_idle_timeout_ms=30_000,
        online_cloud_timeout_ms=300_000,
        notify_cloud_delay_ms=30_000,
        notify_default_delay_ms=1_500,
        push_chat_period_ms=60_000,
        push_chat_limit=2,
        edit_time_limit=172_800,
        revoke_time_limit=2_147_483_647,
        revoke_pm_time_limit=2_147_483_647,
        rating_e_decay=2_419_200,
        stickers_recent_limit=200,
        channels_read_media_period=604_800,
        call_receive_timeout_ms=20_000,
        call_ring_timeout_ms=90_000,
        call_connect_timeout_ms=30_000,
        call_packet_timeout_ms=10_000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=4096,
        webfile_dc_id=4,
    )


@handles(functions.auth.SendCodeRequest, auth=False)
def _send_code(world: FakeTelegram, viewer: FakeUser | None, req: Any) -> Any:
    if not any(u.phone == req.phone_number.lstrip("+") for u in world.users.values()):
        raise RpcFault("PHONE_NUMBER_INVALID")
    return t_auth.SentCode(type=t_auth.SentCodeTypeApp(length=5), phone_code_hash=os.urandom(8).hex())


@handles(functions.auth.SignInRequest, auth=False)
def _sign_in(world: FakeTelegram, viewer: FakeUser | None, req: Any) -> Any:
    account = next((u for u in world.users.values() if u.phone == req.phone_number.lstrip("+")), None)
    if account is None:
        raise RpcFault("PHONE_NUMBER_INVALID")
    if req.phone_code != account.login_code:
        raise RpcFault("PHONE_CODE_INVALID")
    key = current_key.get()
    if key is not None:
        world.authorize(account, key)
    return t_auth.Authorization(user=tl.user(world, account, account))


@handles(functions.auth.LogOutRequest)
def _log_out(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    key = current_key.get()
    if key is not None:
        world.auth_keys.pop(key, None)
    return t_auth.LoggedOut()


@handles(functions.auth.ExportAuthorizationRequest)
def _export_auth(world: FakeTelegram, viewer: FakeUser, req: Any) -> Any:
    if req.dc_id == tl.DC_ID:
        raise RpcFault("DC_ID_INVALID")
    token = os.urandom(32)
    export_id = int.from_bytes(os.urandom(7), "little")
    world.exported[export_id] = (token, viewer.id)
    return t_auth.ExportedAuthorization(id=export_id, bytes=token)


@handles(functions.auth.ImportAuthorizationRequest, auth=False)
def _import_auth(world: FakeTelegram, viewer: FakeUser | None, req: Any) -> Any:
    token, account_id = world.exported.pop(req.id, (b"", 0))
    key = current_key.get()
    if token != req.bytes or key is None:
        raise RpcFault("AUTH_BYTES_INVALID")
    account = world.users[account_id]
    world.authorize(account, key)
    return t_auth.Authorization(user=tl.user(world, account, account))
