"""User mistakes are reported, not raised as tracebacks."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix: bad file, bad key, unknown name.

    ``problems`` holds one line per problem, each naming where (file, line, key path)
    and what to do. The CLI prints them and exits 1.
    """

    def __init__(self, summary: str, problems: Iterable[str] = ()) -> None:
        self.summary = summary
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        if not self.problems:
            return self.summary
        return "\n".join([self.summary, *(f"  - {p}" for p in self.problems)])
