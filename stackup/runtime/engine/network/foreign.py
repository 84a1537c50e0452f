"""Living next to another firewall that drops forwarded traffic (Docker's `FORWARD` policy DROP).

nftables evaluates every base chain on a hook; an `accept` in stackup's own table only ends that
table's evaluation, and a `drop` anywhere is final. Docker (through iptables-nft) leaves an
`ip filter` table whose `FORWARD` chain has policy drop, so with Docker installed our containers
could not reach the outside or receive published traffic routed from other interfaces. The fix
Docker documents for foreign traffic is the `DOCKER-USER` chain, which `FORWARD` jumps to first:
we put one accept per direction per stackup bridge there (or at the top of `FORWARD` when there is
no `DOCKER-USER`). Our own table still enforces isolation, because its drops stay final.

Every rule we add carries the comment `stackup:<our table>`, so each sync removes exactly our
previous rules (and nothing of another engine root's) in the same nft transaction that adds the
new ones, and `remove` leaves Docker's chains as they were.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from pydantic import BaseModel, ConfigDict

from stackup.errors import RuntimeFailure
from stackup.net import names

_USER_CHAIN = "DOCKER-USER"
_FORWARD = "FORWARD"


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("nft") or "/usr/sbin/nft"
    command = [binary, "-f", "-"] if script is not None else [binary, *args]
    return subprocess.run(command, input=script, capture_output=True, text=True, check=False)


class ForeignFilter(BaseModel):
    """Where a foreign drop-policy forward chain may live; Docker's place by default.

    Tests point `table` at a table of their own so they never touch a real Docker's rules.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str = "ip"
    table: str = "filter"

    def _listing(self) -> list[dict[str, Any]]:
        done = _nft("-j", "-a", "list", "table", self.family, self.table)
        if done.returncode != 0:
            return []  # no such table: nothing drops our traffic
        entries: list[dict[str, Any]] = json.loads(done.stdout).get("nftables", [])
        return entries

    def target_chain(self, listing: list[dict[str, Any]] | None = None) -> str | None:
        """The chain to put accepts in, or None when no drop-policy forward chain exists."""
        entries = self._listing() if listing is None else listing
        chains = {e["chain"]["name"]: e["chain"] for e in entries if "chain" in e}
        forward = chains.get(_FORWARD)
        if forward is None or forward.get("hook") != "forward" or forward.get("policy") != "drop":
            return None
        return _USER_CHAIN if _USER_CHAIN in chains else _FORWARD

    def _ours(self, entries: list[dict[str, Any]], marker: str) -> list[tuple[str, int]]:
        rules = (e["rule"] for e in entries if "rule" in e)
        return [(r["chain"], int(r["handle"])) for r in rules if r.get("comment") == marker]

    def sync(self, our_table: str, bridges: list[str]) -> None:
        """Make our accepts in the foreign chain exactly one pair per bridge (none if no bridges)."""
        script = self.script(our_table, bridges)
        if not script:
            return
        done = _nft(script=script)
        if done.returncode != 0:
            raise RuntimeFailure(
                f"cannot update {self.family} {self.table} for stackup: {done.stderr.strip()}"
            )

    def script(self, our_table: str, bridges: list[str]) -> str:
        """The nft commands `sync` runs ("" when there is nothing to change), for a caller that
        applies them in a transaction of its own."""
        entries = self._listing()
        marker = f"stackup:{our_table}"
        chain = self.target_chain(entries)
        lines = [
            f"delete rule {self.family} {self.table} {c} handle {h}" for c, h in self._ours(entries, marker)
        ]
        if chain is not None:
            for bridge in sorted(bridges):
                names.check_ifname(bridge)
                for direction in ("oifname", "iifname"):
                    lines.append(
                        f'insert rule {self.family} {self.table} {chain} {direction} "{bridge}" '
                        f'accept comment "{marker}"'
                    )
        return "\n".join(lines) + "\n" if lines else ""

    def remove(self, our_table: str) -> None:
        """Take our accepts out again (on engine teardown)."""
        self.sync(our_table, [])

    def ours(self, our_table: str) -> list[str]:
        """Descriptions of our rules present now, for `doctor`."""
        marker = f"stackup:{our_table}"
        return [f"{self.family} {self.table} {c} handle {h}" for c, h in self._ours(self._listing(), marker)]
