"""`COPY --chmod` values: octal (`0755`) or chmod(1)'s symbolic notation (`u+x`, `u=rwX,go=rX`).

An octal value is one mode for every entry. A symbolic value is a change applied to each
entry's own (source) mode, as the Dockerfile frontend applies it since symbolic modes left the
labs channel: clauses separated by `,`, each `[ugoa]*` then one or more `[-+=]` operations with
permission letters `rwxXst` or a copy from `u`, `g` or `o`. No `who` means `a` (the builder's
umask is 0). `X` is execute for a directory or for an entry with any execute bit already set;
Linux's chmod honours it with every operator and so does this.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ModeChange = Callable[[int, bool], int]
"""(current mode bits, is a directory) -> new mode bits (the low 12 bits)."""

_OCTAL = re.compile(r"^[0-7]{1,4}$")
_CLAUSE = re.compile(r"^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$")
_OPS = re.compile(r"([-+=])([ugo]|[rwxXst]*)")
_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007}
"""The bits each `who` letter governs (with its special bit: setuid, setgid, sticky)."""


class ModeError(ValueError):
    pass


def parse_chmod(text: str) -> ModeChange:
    """The change `text` describes; raises `ModeError` for anything chmod(1) would refuse."""
    if _OCTAL.match(text):
        mode = int(text, 8)
        return lambda _current, _is_dir: mode
    clauses = []
    for clause in text.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ModeError(f"invalid chmod value {text!r}: use octal (0755) or symbolic (u+x, go=rX)")
        clauses.append((match.group(1), _OPS.findall(match.group(2))))

    def change(current: int, is_dir: bool) -> int:
        mode = current & 0o7777
        for who, ops in clauses:
            mask = 0
            for letter in who.replace("a", "ugo") or "ugo":
                mask |= _WHO[letter]
            for op, perms in ops:
                bits = _bits(perms, mode, is_dir) & mask
                if op == "+":
                    mode |= bits
                elif op == "-":
                    mode &= ~bits
                else:
                    mode = (mode & ~(mask & ~_special_kept(mask, is_dir))) | bits
        return mode

    return change


def _bits(perms: str, mode: int, is_dir: bool) -> int:
    """The permission bits `perms` names, in every `who` position (the caller masks them)."""
    if perms in ("u", "g", "o"):  # copy another class's rwx to every class
        shift = {"u": 6, "g": 3, "o": 0}[perms]
        rwx = (mode >> shift) & 0o7
        return rwx << 6 | rwx << 3 | rwx
    bits = 0
    for letter in perms:
        if letter == "r":
            bits |= 0o444
        elif letter == "w":
            bits |= 0o222
        elif letter == "x" or (letter == "X" and (is_dir or mode & 0o111)):
            bits |= 0o111
        elif letter == "s":
            bits |= 0o6000
        elif letter == "t":
            bits |= 0o1000
    return bits


def _special_kept(mask: int, is_dir: bool) -> int:
    """`=` on a directory keeps its setuid/setgid bits, as GNU chmod does; on files it clears."""
    return mask & 0o6000 if is_dir else 0
