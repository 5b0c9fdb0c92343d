"""Per-instance LRU caches that, unlike ``functools.lru_cache`` on a bound method, create no
reference cycle: a dropped generator frees its (large) cached fields at once."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def cached(maxsize: int) -> Callable[[F], F]:
    """Cache a method's results per instance, keyed on its positional arguments."""

    def decorate(fn: F) -> F:
        attr = f"_cache_{fn.__name__}"

        @functools.wraps(fn)
        def wrapper(self, *args):
            cache = self.__dict__.get(attr)
            if cache is None:
                cache = self.__dict__[attr] = OrderedDict()
            if args in cache:
                cache.move_to_end(args)
                return cache[args]
            value = fn(self, *args)
            cache[args] = value
            if len(cache) > maxsize:
                cache.popitem(last=False)
            return value

        return wrapper  # type: ignore[return-value]

    return decorate
