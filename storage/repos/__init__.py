"""Repositories: intention-revealing methods over the collections declared in ``storage.schema``."""

from __future__ import annotations

from storage.repos.channels import ChannelRepo
from storage.repos.checkpoints import CheckpointRepo
from storage.repos.errors import ErrorRepo
from storage.repos.media import MediaRepo
from storage.repos.messages import MessageRepo
from storage.repos.runs import RunRepo

__all__ = ["ChannelRepo", "CheckpointRepo", "ErrorRepo", "MediaRepo", "MessageRepo", "RunRepo"]
