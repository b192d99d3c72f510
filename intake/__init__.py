"""helpdesk-intake: `intake.core` is what every channel shares, `intake.shell` the application.

`voice` and `mail` import the core; the shell imports them. Importing this package (which
every import of `intake.core.*` does first) must therefore not load the shell, or a core
import from `voice` would load `voice` again half-way. `create_app` (for
`gunicorn 'intake:create_app()'`) is loaded the first time it is asked for (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from intake.shell.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        # Deferred on purpose, see the module docstring: the core must import without the shell.
        from intake.shell.app import create_app

        return create_app
    raise AttributeError(f"module 'intake' has no attribute {name!r}")
