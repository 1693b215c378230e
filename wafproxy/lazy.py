"""``lazy``: functools.cached_property for objects made per request.

CPython 3.11's cached_property takes a lock on every first access (removed in 3.12), which costs
more than most of the values it guards; a request's derived values (header map, cookies, ...)
are each computed on first access, so that lock was paid several times per request. These
values are pure functions of a frozen object: two threads computing one at the same time get
equal results, and either may be kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class lazy(Generic[T]):
    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> lazy[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | lazy[T]:
        if instance is None:
            return self
        value = instance.__dict__[self._name] = self._compute(instance)
        return value
