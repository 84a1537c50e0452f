"""RUN argv construction, heredocs included, as BuildKit does it."""

from __future__ import annotations

from stackup.build.dockerfile import parse_instructions, parse_text
from stackup.build.dockerfile.instructions import Run
from stackup.build.runscript import run_script


def run(text: str) -> Run:
    instr = parse_instructions(parse_text("FROM scratch\n" + text)).stages[0][1][0]
    assert isinstance(instr, Run)
    return instr


def test_shell_and_exec_forms() -> None:
    assert run_script(run("RUN echo $HOME\n")).argv == ("/bin/sh", "-c", "echo $HOME")
    assert run_script(run("RUN echo hi\n"), ("/bin/bash", "-eu", "-c")).argv == ("/bin/bash", "-eu", "-c",
                                                                                  "echo hi")
    assert run_script(run('RUN ["/bin/echo", "$HOME"]\n')).argv == ("/bin/echo", "$HOME")


def test_lone_heredoc_is_the_script() -> None:
    script = run_script(run("RUN <<-EOF\n\techo a\n\techo b\n\tEOF\n"))
    assert script.argv == ("/bin/sh", "-c", "echo a\necho b\n")


def test_shebang_heredoc_becomes_a_file() -> None:
    script = run_script(run("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"))
    assert script.argv == ("/bin/sh", "-c", "/dev/pipes/EOF")
    assert script.files == (("/dev/pipes/EOF", "#!/usr/bin/env python3\nprint(1)\n"),)


def test_heredocs_fed_to_a_command_keep_shell_semantics() -> None:
    script = run_script(run("RUN cat <<'A' > /a && cat <<B > /b\n$x\nA\n$y\nB\n"))
    assert script.argv == ("/bin/sh", "-c", "cat <<'A' > /a && cat <<B > /b\n$x\nA\n$y\nB")
