"""`develop.watch` rules as matchers: which host path a rule covers, and whether a change counts.

A changed path counts for a rule when it lies under the rule's `path` and nothing leaves it out.
What leaves a path out, in the order `--explain` reports it:
1. version-control and editor scratch files (`.git/`, vim swap files and `4913`, emacs `.#x`
   and `#x#`, JetBrains `___jb_tmp___`, `x~`, ...): never a change a user made on purpose;
2. the rule's `ignore` patterns (`.dockerignore` syntax, relative to the rule's `path`);
3. the build context's `.dockerignore` (relative to the context) for paths inside the context,
   as the Compose Specification says it applies implicitly;
4. the rule's `include` patterns, when given: only paths they match count.
The `.dockerignore` matcher is `stackup.build.ignore.IgnoreMatcher`, so a watch ignores exactly
what the builder leaves out of the context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from stackup.build.ignore import IgnoreMatcher
from stackup.errors import UsageError
from stackup.spec.models import Project, Service, WatchAction, WatchRule

SCRATCH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), label) for pattern, label in (
        (r"^\..*\.sw[a-p]$", "vim swap file"),
        (r"^4913$", "vim write test file"),
        (r"~$", "editor backup file"),
        (r"^\.#", "emacs lock file"),
        (r"^#.*#$", "emacs auto-save file"),
        (r"___jb_(tmp|old|bak)___$", "JetBrains temporary file"),
        (r"\.kate-swp$", "kate swap file"),
        (r"^\.goutputstream-", "gedit temporary file"),
        (r"^\.DS_Store$", "Finder metadata"),
    )
)  # fmt: skip
"""Basename patterns of scratch files editors write next to the file being edited."""

VCS_DIRS = frozenset({".git", ".hg", ".svn"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a rule says about one host path: whether it counts and what decided."""

    counts: bool
    reason: str
    container_path: str | None = None


@dataclass(frozen=True)
class RuleMatcher:
    """One `develop.watch` entry of one service, ready to test paths against."""

    service: str
    index: int
    rule: WatchRule
    root: Path
    ignore: IgnoreMatcher
    include: IgnoreMatcher | None
    context: Path | None
    context_ignore: IgnoreMatcher

    @property
    def action(self) -> WatchAction:
        return self.rule.action

    @property
    def label(self) -> str:
        return f"services.{self.service}.develop.watch[{self.index}]"

    def covers(self, path: Path) -> bool:
        return path == self.root or path.is_relative_to(self.root)

    def container_path(self, path: Path) -> str | None:
        """Where `path` lands in the container (None for a rule without `target`)."""
        if self.rule.target is None:
            return None
        relative = path.relative_to(self.root).as_posix()
        target = PurePosixPath(self.rule.target)
        return str(target if relative == "." else target / relative)

    def decide(self, path: Path) -> Verdict:
        """Whether a change at `path` (under `root`) counts for this rule, and why."""
        relative = path.relative_to(self.root).as_posix()
        if relative != ".":
            for part in relative.split("/"):
                if part in VCS_DIRS:
                    return Verdict(False, f"ignored: inside {part}/ (version control)")
            name = path.name
            for pattern, label in SCRATCH:
                if pattern.search(name):
                    return Verdict(False, f"ignored: {label} ({pattern.pattern})")
            decision = self.ignore.explain(relative)
            if decision.ignored and decision.pattern is not None:
                where = f"{self.label}.ignore[{decision.pattern.line - 1}]"
                return Verdict(False, f"ignored by {decision.pattern.text!r} ({where})")
        if self.context is not None and path != self.context and path.is_relative_to(self.context):
            decision = self.context_ignore.explain(path.relative_to(self.context).as_posix())
            if decision.ignored and decision.pattern is not None:
                where = f"{decision.pattern.source}:{decision.pattern.line}"
                return Verdict(False, f"ignored by {decision.pattern.text!r} ({where})")
        if self.include is not None and relative != ".":
            decision = self.include.explain(relative)
            if not decision.ignored:
                patterns = ", ".join(repr(p.text) for p in self.include.patterns)
                return Verdict(False, f"not included: matches none of {patterns} ({self.label}.include)")
        return Verdict(True, f"{self.action} ({self.label})", self.container_path(path))

    def prunes(self, directory: Path) -> bool:
        """True if nothing under `directory` can count (so a walker need not enter it): the
        directory is ignored and no `!` pattern could bring back something beneath it."""
        verdict = self.decide(directory)
        if verdict.counts or verdict.reason.startswith("not included"):
            return False
        if directory != self.root and VCS_DIRS.intersection(directory.relative_to(self.root).parts):
            return True  # decided before any pattern: no `!` brings it back
        return not (self.ignore.has_exclusions or self.context_ignore.has_exclusions)


def _patterns(lines: Sequence[str], source: str) -> IgnoreMatcher:
    return IgnoreMatcher.from_lines(lines, source=source)


def matchers_for(service_name: str, service: Service) -> list[RuleMatcher]:
    """The rules of one service (none without `develop.watch`)."""
    if service.develop is None:
        return []
    context: Path | None = None
    context_ignore = IgnoreMatcher(())
    if service.build is not None and "://" not in service.build.context:
        context = Path(service.build.context)
        dockerfile = context / (service.build.dockerfile or "Dockerfile")
        context_ignore = IgnoreMatcher.for_context(context, dockerfile)
    out: list[RuleMatcher] = []
    for index, rule in enumerate(service.develop.watch):
        label = f"services.{service_name}.develop.watch[{index}]"
        syncing = rule.action in (WatchAction.SYNC, WatchAction.SYNC_RESTART, WatchAction.SYNC_EXEC)
        if syncing and not rule.target:
            raise UsageError(f"{label}: action {rule.action} needs a target (the path in the container)")
        if rule.action is WatchAction.SYNC_EXEC and (rule.exec is None or not rule.exec.command):
            raise UsageError(f"{label}: action sync+exec needs exec.command")
        if rule.action is WatchAction.REBUILD and service.build is None:
            raise UsageError(f"{label}: action rebuild needs a build section to rebuild from")
        out.append(RuleMatcher(
            service=service_name, index=index, rule=rule, root=Path(rule.path),
            ignore=_patterns(rule.ignore, f"{label}.ignore"),
            include=_patterns(rule.include, f"{label}.include") if rule.include else None,
            context=context, context_ignore=context_ignore,
        ))  # fmt: skip
    return out


def project_matchers(project: Project, services: Iterable[str] = ()) -> list[RuleMatcher]:
    """Every rule of the named services (all services when none are named)."""
    wanted = list(services) or sorted(project.services)
    unknown = [s for s in wanted if s not in project.services]
    if unknown:
        raise UsageError(f"no such service: {', '.join(unknown)}")
    return [m for name in wanted for m in matchers_for(name, project.services[name])]


def explain(matchers: Sequence[RuleMatcher], path: Path) -> list[str]:
    """`stackup watch --explain PATH`: one line per rule whose `path` covers it."""
    lines: list[str] = []
    for matcher in matchers:
        if not matcher.covers(path):
            continue
        verdict = matcher.decide(path)
        line = f"{matcher.label} (path {matcher.root}, action {matcher.action}): {verdict.reason}"
        if verdict.counts and verdict.container_path:
            line += f" -> {matcher.service}:{verdict.container_path}"
        lines.append(line)
    if not lines:
        lines.append(f"{path}: no develop.watch rule covers it")
    return lines
