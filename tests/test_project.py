import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    assert text.index("```bash") < text.index("\n## ")  # the commands come first
    commands = _readme_commands()
    assert len(commands) == 2
    assert "pytest" in commands[1] and "pip install" in commands[0]
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci_lines == [commands[1]]


def test_first_readme_command_runs_after_its_install():
    install, program = _readme_commands()[0].rsplit("&& .venv/bin/python ", 1)
    assert "pip install -e ." in install
    result = subprocess.run([sys.executable, *shlex.split(program)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_auto_precision_reads_the_cpu_flags(tmp_path):
    from rls_lightning.cli.common import cpu_has_native_bf16, resolve_precision

    with_bf16, without = tmp_path / "with", tmp_path / "without"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\nbugs\t: avx512_bf16_is_not_a_flag_here\n")
    assert cpu_has_native_bf16(with_bf16) and not cpu_has_native_bf16(without)
    assert not cpu_has_native_bf16(tmp_path / "absent")
    assert resolve_precision("32-true", "cpu") == "32-true"  # an explicit choice is kept
