"""What a RUN step executes: its argv, and any file it needs, as BuildKit builds them.

Shell form runs through the stage's SHELL (`/bin/sh -c` by default); exec form runs as written.
Here-documents: a RUN whose whole command is one heredoc (`RUN <<EOF`) runs the document's body as
the script (tabs stripped for `<<-`); a body starting with `#!` is instead provided as an
executable file under `/dev/pipes/` and run directly, so `RUN <<EOF` + `#!/usr/bin/env python3`
works. Otherwise (`RUN python3 <<EOF`, several heredocs) the documents are appended to the command
line with their terminators and the shell reads them as here-documents, so quoting (`<<'EOF'`) and
variable expansion are the shell's, exactly as in BuildKit.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from stackup.build.dockerfile.instructions import Run
from stackup.build.dockerfile.parser import parse_heredoc
from stackup.build.imageconfig import DEFAULT_SHELL
from stackup.errors import DockerfileError

PIPES_DIR = "/dev/pipes"


@dataclass(frozen=True)
class RunScript:
    """`argv` to execute; `files` maps absolute paths to contents the executor must provide
    (read-only, mode 0755) for the duration of the step."""

    argv: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()


def run_script(run: Run, shell: tuple[str, ...] = DEFAULT_SHELL, path: str = "Dockerfile") -> RunScript:
    args = run.command
    files: tuple[tuple[str, str], ...] = ()
    if run.heredocs:
        if len(args) != 1 or not run.prepend_shell:
            raise DockerfileError(f"parsing produced an invalid run command: {list(args)}", path=path,
                                  line=run.line, column=run.column)
        if parse_heredoc(args[0]) is not None:
            doc = run.heredocs[0]
            data = doc.body()
            if data.startswith("#!"):
                target = posixpath.join(PIPES_DIR, doc.name)
                files = ((target, data),)
                args = (target,)
            else:
                args = (data,)
        else:
            args = (args[0] + "".join(f"\n{doc.content}{doc.name}" for doc in run.heredocs),)
    if run.prepend_shell:
        args = (*(shell or DEFAULT_SHELL), *args)
    return RunScript(tuple(args), files)
