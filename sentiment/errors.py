"""The one family of refusals a person may see: a bad value, file or checkpoint, or a trainer already busy.

The UI, the API and the CLIs catch `USER_ERRORS` and show the sentence; anything else is a bug, logged with its
traceback. An OSError (a disk full, a folder not writable) is the machine's answer to the person's request, so it is
shown as it is.
"""
from __future__ import annotations


class UserError(Exception):
    """A refusal with a message meant for the person who asked."""


USER_ERRORS = (UserError, OSError)
