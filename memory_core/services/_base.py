"""What every service has: the tenant handle it belongs to and the shared context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memory_core.backends.base import Backend

if TYPE_CHECKING:
    from memory_core.context import Context
    from memory_core.memory import Memory

__all__ = ["Service"]


class Service:
    """A part of the engine bound to one tenant handle.

    ``self._m`` is the handle (siblings are reached through it, e.g.
    ``self._m.profiles.get(ref)``), ``self._ctx`` the shared context.
    """

    __slots__ = ("_ctx", "_m")

    def __init__(self, memory: Memory) -> None:
        self._m = memory
        self._ctx: Context = memory._ctx

    @property
    def _tenant(self) -> str:
        """The handle's tenant, checked to exist (cached after the first check)."""
        return self._ctx.tenants.require(self._m.name)

    @property
    def _backend(self) -> Backend:
        return self._ctx.backend

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of tenant {self._m.name!r}>"
