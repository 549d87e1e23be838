"""The identity source: the expiry of the TLS certificate in the tenant's identity file.

tbot renews the identity file long before it expires; when renewal stops (tbot crashed, its join
token was deleted, the bot lost its role) the certificate runs out and tctl starts failing. The
expiry, exported, lets an alert fire while there is still time to act.

Only the certificate blocks are read (exporter.tctl.identity); the file is never logged. A file that
group or others may read is a leaked credential waiting to happen: that is logged as a warning,
once per mode seen, naming the path and the mode only.
"""

from __future__ import annotations

import logging

import anyio

from exporter.core.errors import SourceError
from exporter.core.keys import PublishKey
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.tctl.identity import IdentityError, group_or_other_readable, read_expiry
from exporter.tctl.identity_families import identity_families

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0


class IdentitySource(Source):
    kind = "identity"

    def __init__(self, hub: Hub, tenant: TenantState) -> None:
        # Re-read as often as tctl uses the identity: a renewal shows at the next inventory.
        super().__init__(tenant.name, tenant.config.inventory.interval, TIMEOUT_SECONDS)
        self.hub = hub
        self.tenant = tenant
        self.path = tenant.config.inventory.identity_file
        self._warned_mode: int | None = None

    @property
    def key(self) -> PublishKey:
        return PublishKey("identity", self.tenant.name)

    async def refresh(self) -> None:
        try:
            expiry, mode = await anyio.to_thread.run_sync(read_expiry, self.path)
        except FileNotFoundError:
            raise SourceError("auth", f"identity file {str(self.path)!r} does not exist") from None
        except OSError as exc:
            message = f"cannot read identity file {str(self.path)!r}: {exc.strerror}"
            raise SourceError("auth", message) from None
        except IdentityError as exc:
            raise SourceError("parse", f"identity file {str(self.path)!r}: {exc}") from None
        self._check_mode(mode)
        self.hub.publish(self.key, identity_families(self.tenant.name, expiry))

    def _check_mode(self, mode: int) -> None:
        if group_or_other_readable(mode) and mode != self._warned_mode:
            log.warning(
                "identity file %r is readable by group or others (mode %04o): it is a "
                "credential; tbot writes it 0600",
                str(self.path),
                mode,
            )
        self._warned_mode = mode if group_or_other_readable(mode) else None
