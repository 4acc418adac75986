"""A shell export withholds media whose authorization has expired (#16 follow-up).

``CaseAccess.media_grant`` (the API's rule) only counts unexpired authorizations; the shell rule
used to check revocation alone, so an expired warrant's media still left in a shell bundle.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path

from crawler.evidence.export import DirectoryMediaSource, Exporter
from crawler.evidence.ledger import Ledger
from crawler.evidence.signing import load_public_key
from crawler.evidence.verify_bundle import verify_bundle
from crawler.ingest import Ingest
from storage.client import Store
from tests.test_ledger_flow import _case_with_media, keys, ledger  # noqa: F401  (fixtures)


async def test_media_under_an_expired_authorization_is_withheld_from_a_shell_export(
    store: Store,
    ingest: Ingest,
    ledger: Ledger,  # noqa: F811
    keys: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    png, grant_id = await _case_with_media(ingest, ledger, tmp_path / "media")
    sha = hashlib.sha256(png).hexdigest()
    public = load_public_key((keys / "evidence-ed25519.pub.pem").read_bytes())
    exporter = Exporter(ledger, public, signer=ledger.signer, media=DirectoryMediaSource(tmp_path / "media"))

    valid = await exporter.export("C-9", tmp_path / "valid.zip", actor="officer", role="investigator")
    with zipfile.ZipFile(tmp_path / "valid.zip") as zf:
        assert valid.withheld == 0 and zf.read(f"captures/media/{sha}") == png

    # the warrant's validity ends (the stored end of validity, as time passing would leave it)
    done = await store["authorizations"].update_one({"_id": grant_id}, {"$set": {"valid_until": time.time() - 1}})
    assert done.modified_count == 1
    expired = await exporter.export("C-9", tmp_path / "expired.zip", actor="officer", role="investigator")
    assert expired.withheld == 1 and verify_bundle(tmp_path / "expired.zip").ok
    with zipfile.ZipFile(tmp_path / "expired.zip") as zf:
        assert f"captures/media/{sha}" not in zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    withheld = [f for f in manifest["files"] if f["path"] is None]
    assert [f["sha256"] for f in withheld] == [sha] and "expired" in withheld[0]["withheld"]
