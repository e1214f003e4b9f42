"""What can go wrong with a knowledge base, as exceptions that name the fix.

Every error here is an infrastructure or input-file problem, never a model's bad query: the tool functions
in `tools.py` turn bad queries into messages instead. All of them pickle (they cross Ray workers).
"""
from __future__ import annotations

BUILD_COMMAND = "medgym kb build"


class KBError(Exception):
    """Base class: a knowledge base that cannot be built or used."""


class EngineMissing(KBError):
    """The search engine's package is not installed; the message says what to install."""


class KBNotBuilt(KBError):
    """No knowledge base exists at the path; the message names the command that builds one."""


class KBCorrupt(KBError):
    """A knowledge base exists but cannot be read; the message names the command that rebuilds it."""


class PassageNotFound(KBError, KeyError):
    """`KnowledgeBase.get` was given an id that no passage has."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CorpusError(KBError):
    """A corpus file is malformed; carries `path` and, where known, `line`."""

    def __init__(self, message: str, path: str = "", line: int | None = None):
        self.message, self.path, self.line = message, str(path), line
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.path:
            return self.message
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"

    def __reduce__(self):
        return (CorpusError, (self.message, self.path, self.line))
