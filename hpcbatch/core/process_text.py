"""What reaches a job's processes: ``Ref::`` substitution and the checks on process text."""

from __future__ import annotations

from hpcbatch.core.model import JobSpec
from hpcbatch.errors import ValidationError


def substitute(command: tuple[str, ...], parameters: dict[str, str]) -> tuple[str, ...]:
    """AWS ``Ref::name`` placeholders: a whole argument naming a known parameter is replaced."""
    out = []
    for arg in command:
        if arg.startswith("Ref::") and arg[5:] in parameters:
            out.append(parameters[arg[5:]])
        else:
            out.append(arg)
    return tuple(out)


def check_process_text(spec: JobSpec) -> None:
    """What reaches a process (its arguments once ``Ref::`` parameters are substituted, its
    environment, its user) holds no NUL, and the user is never empty: the API refuses both in
    every field it takes, and this holds for any other path, such as a definition stored before
    those rules."""
    nul = "must not contain a NUL character"
    for index, argument in enumerate(spec.command):
        if "\x00" in argument:
            raise ValidationError(f"command[{index}]", f"{nul} (after Ref:: substitution)")
    for name, value in spec.environment:
        if "\x00" in name or "\x00" in value:
            raise ValidationError("environment", f"{nul} in a name or value ({name!r})")
    if spec.user is not None and (not spec.user or "\x00" in spec.user):
        raise ValidationError(
            "containerProperties.user", "must not be empty or contain a NUL character"
        )
