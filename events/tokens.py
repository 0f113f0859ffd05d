"""The tokens table, over any EventStore's write transaction and reads: what is stored of each
API token (its SHA-256, never the secret), its scope, and when it was used or revoked."""

from __future__ import annotations

from dataclasses import replace

from events.store import TOKEN_ID_LENGTH, EventStore, TokenRecord, Transaction
from events.values import timestamp

TOKEN_COLUMNS = "digest, scope, label, created, last_used, revoked"
HEX_DIGITS = "0123456789abcdef"


class TokenStore(EventStore):
    """The token methods of the EventStore contract, written once for every backend."""

    async def add_token(self, digest: str, scope: str, label: str | None = None) -> None:
        def work(tx: Transaction) -> None:
            tx.execute(
                "INSERT INTO tokens (digest, scope, label, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING",
                (digest, scope, label, timestamp()),
            )

        await self.write_transaction(work)

    async def token_scope(self, digest: str) -> str | None:
        rows = await self.query(
            "SELECT scope FROM tokens WHERE digest = ? AND revoked IS NULL", (digest,)
        )
        return str(rows[0][0]) if rows else None

    async def tokens(self) -> list[TokenRecord]:
        rows = await self.query(f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created, digest")
        return [TokenRecord(*row) for row in rows]

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        if len(token_id) < TOKEN_ID_LENGTH or not set(token_id.lower()) <= set(HEX_DIGITS):
            return None

        def work(tx: Transaction) -> TokenRecord | None:
            rows = tx.fetch(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE digest LIKE ?", (f"{token_id.lower()}%",)
            )
            if len(rows) != 1:
                return None
            found = TokenRecord(*rows[0])
            if found.revoked is None:
                found = replace(found, revoked=timestamp())
                tx.execute(
                    "UPDATE tokens SET revoked = ? WHERE digest = ?", (found.revoked, found.digest)
                )
            return found

        return await self.write_transaction(work)

    async def token_used(self, digest: str, moment: str) -> None:
        def work(tx: Transaction) -> None:
            tx.execute("UPDATE tokens SET last_used = ? WHERE digest = ?", (moment, digest))

        await self.write_transaction(work)

    async def count_tokens(self) -> int:
        rows = await self.query("SELECT COUNT(*) FROM tokens")
        return int(rows[0][0])
