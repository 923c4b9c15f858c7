"""Reading a command line (and its YAML ``--config`` files) so that every mistake is one ``error:`` line.

``parse_args(parser, argv)`` parses with a jsonargparse or a standard ``argparse.ArgumentParser`` and raises
``UsageError`` (see ``errors.guarded``: ``error: <text>``, exit 2) instead of printing a usage block:

* a ``--config`` file that is missing, unreadable, not valid YAML or not a mapping:
  ``flow.yaml: invalid YAML (line 3: mapping values are not allowed here)``;
* a key of that file that is no option: ``flow.yaml: unknown option 'bach_size' (did you mean batch_size?)``;
* a value of the wrong type: ``--batch-size 'abc': must be an integer`` (``flow.yaml: batch_size ...`` when the
  value came from the file);
* argparse's own errors (unknown arguments, a missing value, an invalid choice), reduced to one line.

The value checks that need more than a type (ranges, files, devices) live beside: ``errors.check_int`` and its
siblings, and here the checks of output files and folders and of a torch device string.

    parser = build_parser()
    args = parse_args(parser, argv)      # inside a main decorated with errors.guarded
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Sequence

from jsonargparse import DefaultHelpFormatter

from .errors import UsageError, check_output_dir, describe_os_error

__all__ = ["ParagraphHelpFormatter", "parse_args", "check_generator", "check_input_file", "check_output_file",
           "check_output_folder", "check_device"]


PRINT_CONFIG = "--print-config"  # jsonargparse's --print_config, dashed like every other option


class ParagraphHelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's help (types and defaults shown) with the description's paragraphs and examples kept as
    written, instead of being run together into one block; types named as in code (``Path``, not
    ``<class 'Path'>``), and lines broken only at spaces, so that a path or a name such as ``demo64`` is
    never cut at its hyphen."""

    def _get_type_str(self, action: argparse.Action) -> str | None:
        text = super()._get_type_str(action)
        return re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text) if text else text

    def _split_lines(self, text: str, width: int) -> list[str]:
        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False) or [""]

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        """The description at the options' width: prose paragraphs and ``* `` bullets rewrapped, indented lines
        (examples, commands) kept as written."""
        def wrap(words: str, first: str = "", rest: str = "") -> list[str]:
            return textwrap.wrap(" ".join(words.split()), width, initial_indent=indent + first,
                                 subsequent_indent=indent + rest, break_on_hyphens=False, break_long_words=False)

        out: list[str] = []
        for paragraph in textwrap.dedent(text).strip("\n").split("\n\n"):
            lines = paragraph.splitlines()
            if all(line.startswith((" ", "\t")) for line in lines if line.strip()):
                out += [indent + line for line in lines]  # an example: as written
            elif lines and lines[0].startswith("* "):
                items: list[str] = []
                for line in lines:
                    if line.startswith("* ") or not items:
                        items.append(line[2:] if line.startswith("* ") else line)
                    else:
                        items[-1] += " " + line.strip()
                for item in items:
                    out += wrap(item, "* ", "  ")
            else:
                out += wrap(paragraph)
            out.append("")
        return "\n".join(out).rstrip("\n")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``) with ``parser``; any mistake raises ``UsageError`` (one line).

    ``--help`` and jsonargparse's ``--print-config`` still print and exit 0 as usual.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    configs = _read_config_files(parser, argv)

    def one_line_errors(reporting: argparse.ArgumentParser):
        def error(message: str, ex: BaseException | None = None) -> typing.NoReturn:
            raise UsageError(_one_line(reporting, message, argv, configs)) from None
        return error

    # Both argparse and jsonargparse report every parse error through self.error (a subcommand's through its own
    # parser's); an instance attribute shadows the method, which would print a usage block and exit.
    parsers = [parser, *_subcommand_parsers(parser)]
    for each in parsers:
        each.error = one_line_errors(each)  # type: ignore[method-assign]
    try:
        return parser.parse_args(argv)
    finally:
        for each in parsers:
            del each.error


def _subcommand_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of ``parser``'s subcommands (``python -m rls_lightning.cli.weights list``), nested ones too."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += [sub, *_subcommand_parsers(sub)]
    return found


# ---------------------------------------------------------------------- --config files

def _config_options(parser: argparse.ArgumentParser) -> list[str]:
    try:
        from jsonargparse import ActionConfigFile
    except ImportError:  # a plain argparse parser has no config files
        return []
    return [s for a in parser._actions if isinstance(a, ActionConfigFile) for s in a.option_strings]


def _config_dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions if set(a.option_strings) & set(_config_options(parser))}


def _config_values(argv: list[str], options: list[str]) -> list[str]:
    values = []
    for i, arg in enumerate(argv):
        if arg in options and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif "=" in arg and arg.split("=", 1)[0] in options:
            values.append(arg.split("=", 1)[1])
    return values


def _is_inline(value: str) -> bool:
    # jsonargparse also takes the YAML text itself (--config '{lr: 0.01}'); a path never looks like that
    return value.lstrip().startswith("{") or "\n" in value


def _read_config_files(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, dict]:
    """Every ``--config`` file named in ``argv``, read and checked before jsonargparse sees it (its messages name
    ``"<unicode string>"`` instead of the file): ``{file name: mapping}``."""
    import yaml

    options = _config_options(parser)
    known = _option_keys(parser)
    configs = {}
    for value in _config_values(argv, options):
        if _is_inline(value):
            continue
        path = Path(value)
        if path.is_dir():
            raise UsageError(f"--config {value}: a folder, not a YAML file")
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise UsageError(f"--config {value}: no such file") from None
        except UnicodeDecodeError:
            raise UsageError(f"{value}: not a text file (expected YAML)") from None
        except OSError as err:
            raise UsageError(f"--config {value}: cannot be read ({describe_os_error(err).split(': ')[-1]})") \
                from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise UsageError(f"{value}: invalid YAML ({where}{problem})") from None
        if data is None:
            raise UsageError(f"{value}: empty; expected lines of option: value (see --print-config)")
        if not isinstance(data, dict):
            raise UsageError(f"{value}: expected lines of option: value, found a {type(data).__name__} "
                             "(see --print-config)")
        for key in data:
            if _normalise(str(key)) not in known:
                guess = difflib.get_close_matches(_normalise(str(key)), sorted(known), n=1)
                hint = f"did you mean {guess[0]}?" if guess else f"options: {', '.join(sorted(known))}"
                raise UsageError(f"{value}: unknown option {key!r} ({hint})")
        configs[value] = {_normalise(str(k)): v for k, v in data.items()}
    return configs


def _normalise(key: str) -> str:
    return key.replace("-", "_")


def _option_keys(parser: argparse.ArgumentParser) -> set[str]:
    """The keys a config file may set: every option's destination, not help, config or print_config."""
    skipped = {"help", "print_config", *(_normalise(s.lstrip("-")) for s in _config_options(parser))}
    return {a.dest for a in parser._actions if a.dest not in skipped and a.dest != argparse.SUPPRESS}


# ---------------------------------------------------------------------- argparse / jsonargparse messages

def _describe_type(hint: Any) -> str:
    """``int | None`` -> 'an integer or null'."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(h) for h in typing.get_args(hint))
    names = {int: "an integer", float: "a finite number", bool: "true or false", str: "a text", type(None): "null"}
    if hint in names:
        return names[hint]
    if isinstance(hint, type) and issubclass(hint, os.PathLike):
        return "a path"
    return f"a {getattr(hint, '__name__', hint)}"


def _action(parser: argparse.ArgumentParser, dest: str) -> argparse.Action | None:
    return next((a for a in parser._actions if a.dest == dest), None)


def _flag(parser: argparse.ArgumentParser, dest: str) -> str:
    action = _action(parser, dest)
    return action.option_strings[-1] if action is not None and action.option_strings else dest


def _given_on_command_line(flag: str, argv: list[str]) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


def _one_line(parser: argparse.ArgumentParser, message: str, argv: list[str], configs: dict[str, dict]) -> str:
    """argparse's and jsonargparse's messages as one line that names the option, the value and what is allowed."""
    typed = re.match(r'Parser key "([\w.]+)"', message)
    if typed:  # jsonargparse: 'Parser key "lr":\n  Expected a <class 'float'>. Got value: nan' (or a Union's list)
        dest = typed.group(1)
        if dest in _config_dests(parser):  # inline YAML text that does not parse (files were read above)
            return f"{_flag(parser, dest)}: invalid YAML ({' '.join(message.split(':', 1)[1].split())})"
        value = re.search(r"(?:Got value|Given value): (.*)", message)
        action = _action(parser, dest)
        hint = getattr(action, "_typehint", None)
        allowed = _describe_type(hint) if hint is not None else "another value"
        shown = value.group(1).strip() if value else ""
        flag = _flag(parser, dest)
        source = next((name for name, data in configs.items() if dest in data), None)
        if source is not None and not _given_on_command_line(flag, argv):
            return f"{source}: {dest} {shown!r}: must be {allowed}"
        return f"{flag} {shown!r}: must be {allowed}"
    invalid = re.match(r"argument ([^:]+): invalid (\w+) value: '(.*)'$", message, re.S)
    if invalid:  # argparse: "argument --limit: invalid int value: 'x'"
        flag, kind, value = invalid.groups()
        allowed = {"int": "an integer", "float": "a finite number"}.get(kind, f"a {kind}")
        return f"{flag.split('/')[-1]} {value!r}: must be {allowed}"
    choice = re.match(r"argument ([^:]+): invalid choice: '(.*)' \(choose from (.*)\)$", message, re.S)
    if choice:
        flag, value, choices = choice.groups()
        return f"{flag.split('/')[-1]} {value!r}: must be one of {choices.replace(chr(39), '')}"
    unknown = re.match(r"unrecognized arguments: (.*)", message, re.S)
    if unknown:
        first = unknown.group(1).split()[0].split("=")[0]
        flags = [s for a in parser._actions for s in a.option_strings]
        guess = difflib.get_close_matches(first, flags, n=1)
        return f"unknown option {unknown.group(1)} ({'did you mean ' + guess[0] + '?' if guess else 'see --help'})"
    required = re.match(r"the following arguments are required: (.*)", message, re.S)
    if required:  # jsonargparse names the destination ("data"), argparse the flag
        names = [_flag(parser, _normalise(n.strip())) if not n.strip().startswith("-") else n.strip()
                 for n in required.group(1).split(",")]
        return f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} required (see --help)"
    if message.startswith("Problems parsing config") and configs:
        message = message.replace('"<unicode string>"', next(iter(configs)))
    text = " ".join(message.replace("argument ", "", 1).split())
    return text


# ---------------------------------------------------------------------- files and devices

def _first_existing(path: Path) -> Path:
    return next(p for p in [path, *path.parents] if p.exists() or p == p.parent)


def check_input_file(option: str, path: Path | None, *, required: bool = True) -> None:
    """An existing, readable file (not a folder)."""
    if path is None:
        if required:
            raise UsageError(f"{option} is required")
        return
    if not path.exists():
        raise UsageError(f"{option} {path}: no such file")
    if path.is_dir():
        raise UsageError(f"{option} {path}: a folder, not a file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{option} {path}: cannot be read (permission denied)")


def check_generator(value: str | Path, missing_demo_hint: str) -> Path:
    """``--generator``: a registry name resolved to its cached file, or a checkpoint that exists; the default (the
    demo model) missing from this checkout is said as such, with ``missing_demo_hint`` (what to pass instead)."""
    from rls_lightning.paths import DEMO_GENERATOR
    from rls_lightning.weights import resolve_generator

    if Path(value) == DEMO_GENERATOR and not DEMO_GENERATOR.is_file():
        raise UsageError(f"{DEMO_GENERATOR}: the embedded demo generator is not in this checkout; {missing_demo_hint}")
    path = resolve_generator(value)
    check_input_file("--generator", path)
    return path


def check_output_file(option: str, path: Path, *, not_equal: dict[str, Path | None] | None = None) -> None:
    """A file we may create or replace: not a folder, not one of the inputs in ``not_equal``, in a folder that
    exists or can be created and is writable (so that hours of work are not lost to a typo at the end)."""
    for other_option, other in (not_equal or {}).items():
        if other is not None and path.resolve() == other.resolve():
            raise UsageError(f"{option} {path}: must differ from {other_option} (inputs are never overwritten)")
    if path.is_dir():
        raise UsageError(f"{option} {path}: a folder; give the file to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: exists and is not writable")
    _check_creatable(option, path, path.parent)


def check_output_folder(option: str, folder: Path, *, not_equal: dict[str, Path | None] | None = None) -> None:
    """``errors.check_output_dir`` that also names a file standing where a parent folder would have to be."""
    _check_creatable(option, folder, folder)
    check_output_dir(option, folder, not_equal=not_equal or {})


def _check_creatable(option: str, path: Path, folder: Path) -> None:
    existing = _first_existing(folder.absolute())
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, so no folder can be made there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")


DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(option: str, value: str) -> None:
    """A torch device string this machine has: cpu, cuda, cuda:N (N below the GPU count) or mps."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise UsageError(f"{option} {value!r}: must be one of cpu, cuda, cuda:N, mps")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"{option} {value}: no CUDA GPU is visible on this machine (use cpu)")
        if device.index is not None and device.index >= count:
            raise UsageError(f"{option} {value}: only {count} GPU(s) visible (cuda:0 to cuda:{count - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{option} {value}: MPS is not available on this machine (use cpu)")
