"""`tt_xla.jit`: a drop-in for `jax.jit` that runs on the tt device.

The only module of tt_xla that imports jax. Per distinct (argument tree structure, shapes,
dtypes, weak types, static values, x64 setting) the function is exported once with
`jax.export` to StableHLO text, which the client parses, compiles and loads. Calls then upload
host arguments (tt_xla.Array arguments are used in place), launch once, and rebuild the output
pytree from tt_xla.Arrays.
"""
from __future__ import annotations

import functools
import inspect
import sys
import types

import numpy as np

import jax
from jax import tree_util

from .array import Array
from .client import client as _client

__all__ = ["jit", "Jitted", "Lowered"]

_PY_SCALARS = (bool, int, float, complex)
_canon_memo: dict = {}


def _canon(dtype, x64: bool) -> np.dtype:
    key = (dtype, x64)
    d = _canon_memo.get(key)
    if d is None:
        d = _canon_memo[key] = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    return d


def _leaf_sig(x, x64: bool):
    """(shape, dtype, weak_type) of an argument leaf as jax.jit would see it."""
    t = type(x)
    if t is Array:
        return (x._shape, _canon(x._dtype, x64), x._weak_type)
    if t is np.ndarray:
        return (x.shape, _canon(x.dtype, x64), False)
    if t in _PY_SCALARS or isinstance(x, np.generic):
        aval = jax.typeof(x)
        return (tuple(aval.shape), np.dtype(aval.dtype), bool(aval.weak_type))
    if isinstance(x, Array):
        return (x._shape, _canon(x._dtype, x64), x._weak_type)
    try:
        aval = jax.typeof(x)
    except TypeError:
        if hasattr(x, "__array__"):
            a = np.asarray(x)
            return (a.shape, _canon(a.dtype, x64), False)
        raise TypeError(f"tt_xla.jit: argument of type {type(x).__name__} is not a valid array "
                        "(mark it static with static_argnums/static_argnames)") from None
    return (tuple(aval.shape), np.dtype(aval.dtype), bool(aval.weak_type))


def _dynamic_signature(fun, nargs, static_pos, dyn_kw_names):
    """A signature naming the dynamic arguments as `fun` does, so jax.export's debug info (arg
    locations like loc("x")) uses the user's parameter names."""
    P = inspect.Parameter
    try:
        params = [p for p in inspect.signature(fun).parameters.values()
                  if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [params[i].name if i < len(params) else f"args_{i}" for i in range(nargs)
             if i not in static_pos]
    out = [P(n, P.POSITIONAL_ONLY) for n in names]
    taken = set(names)
    out += [P(k, P.KEYWORD_ONLY) for k in dyn_kw_names if k not in taken]
    if len(set(p.name for p in out)) != len(out):
        return inspect.Signature([P("args", P.VAR_POSITIONAL), P("kwargs", P.VAR_KEYWORD)])
    return inspect.Signature(out)


def _norm_tuple(v) -> tuple:
    if v is None:
        return ()
    if isinstance(v, (int, str)):
        return (v,)
    return tuple(v)


class _Entry:
    __slots__ = ("exported", "text", "exe", "kept", "in_meta", "out_tree", "out_meta", "donated")


class Lowered:
    """What `wrapped.lower(*args)` returns."""

    def __init__(self, jitted: "Jitted", entry: _Entry):
        self._jitted, self._entry = jitted, entry

    def as_text(self) -> str:
        return self._entry.text

    @property
    def exported(self):
        return self._entry.exported

    def compile(self):
        self._jitted._load(self._entry)
        return self._entry.exe

    def kernels(self):
        return self.compile().kernels()


class Jitted:
    def __init__(self, fun, static_argnums=(), static_argnames=(), donate_argnums=(),
                 donate_argnames=()):
        if not callable(fun):
            raise TypeError(f"tt_xla.jit expects a callable, got {fun!r}")
        self._fun = fun
        functools.update_wrapper(self, fun)
        snums, snames = set(_norm_tuple(static_argnums)), set(_norm_tuple(static_argnames))
        dnums, dnames = set(_norm_tuple(donate_argnums)), set(_norm_tuple(donate_argnames))
        try:
            params = list(inspect.signature(fun).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for i, p in enumerate(positional):  # names <-> positions, as jax.jit resolves them
            if p.name in snames:
                snums.add(i)
            if i in snums and p.kind == p.POSITIONAL_OR_KEYWORD:
                snames.add(p.name)
            if p.name in dnames:
                dnums.add(i)
            if i in dnums and p.kind == p.POSITIONAL_OR_KEYWORD:
                dnames.add(p.name)
        if snums & dnums:
            raise ValueError(f"static_argnums {sorted(snums & dnums)} cannot be donated")
        self._static_nums = frozenset(snums)
        self._static_names = frozenset(snames)
        self._donate_nums = frozenset(dnums)
        self._donate_names = frozenset(dnames)
        self._has_negative = any(i < 0 for i in snums | dnums)
        # Thread-safe without a lock: entries are published with one atomic setdefault, so
        # threads racing on a new signature may each export it but all use the first entry. No
        # lock is held while jax traces `fun`, which may call this or another jitted function.
        self._cache: dict = {}

    # ------------------------------------------------------------------ cache key
    def _split(self, args, kwargs):
        n = len(args)
        snums, dnums = self._static_nums, self._donate_nums
        if self._has_negative:
            snums = frozenset(i % n if -n <= i < 0 else i for i in snums)
            dnums = frozenset(i % n if -n <= i < 0 else i for i in dnums)
        statics, dyn, dyn_pos = [], [], []
        for i, a in enumerate(args):
            if i in snums:
                statics.append((i, a))
            else:
                dyn.append(a)
                dyn_pos.append(i)
        skw, dkw = [], {}
        for k, v in kwargs.items():
            if k in self._static_names:
                skw.append((k, v))
            else:
                dkw[k] = v
        skw.sort(key=lambda kv: kv[0])
        return tuple(statics), tuple(skw), tuple(dyn), dkw, dyn_pos, dnums

    def _prepare(self, args, kwargs):
        statics, skw, dyn, dkw, dyn_pos, dnums = self._split(args, kwargs)
        leaves, treedef = tree_util.tree_flatten((dyn, dkw))
        x64 = bool(jax.config.jax_enable_x64)
        sig = tuple(_leaf_sig(x, x64) for x in leaves)
        key = (treedef, statics, skw, sig, x64, len(args))
        try:
            entry = self._cache.get(key)
        except TypeError as e:
            raise ValueError("Non-hashable static arguments are not supported: "
                             f"{[v for _, v in statics + skw]!r} ({e})") from None
        if entry is None:
            entry = self._export(args, statics, skw, treedef, sig, dyn_pos, dnums, dkw)
            entry = self._cache.setdefault(key, entry)
        return entry, leaves

    # ------------------------------------------------------------------ export / compile
    def _export(self, args, statics, skw, treedef, sig, dyn_pos, dnums, dkw) -> _Entry:
        structs = [jax.ShapeDtypeStruct(s, d, weak_type=w) for s, d, w in sig]
        dyn_structs, kw_structs = tree_util.tree_unflatten(treedef, structs)
        fun, nargs = self._fun, len(args)
        static_pos, static_kw = dict(statics), dict(skw)

        def bound(*dargs, **dkwargs):
            it = iter(dargs)
            full = [static_pos[i] if i in static_pos else next(it) for i in range(nargs)]
            return fun(*full, **dkwargs, **static_kw)

        name = getattr(fun, "__name__", "fun")
        bound.__name__ = bound.__qualname__ = name if name.isidentifier() else "fun"
        bound.__signature__ = _dynamic_signature(fun, nargs, static_pos, dyn_kw_names=sorted(dkw))
        exported = jax.export.export(jax.jit(bound))(*dyn_structs, **kw_structs)

        e = _Entry()
        e.exported = exported
        e.text = exported.mlir_module()
        e.exe = None
        e.kept = tuple(exported.module_kept_var_idx)
        e.in_meta = tuple((sig[i][1], sig[i][0]) for i in e.kept)
        e.out_tree = exported.out_tree
        e.out_meta = tuple((tuple(a.shape), np.dtype(a.dtype), bool(a.weak_type))
                           for a in exported.out_avals)
        # which flat leaves are donated (leaves of (dyn_args, dyn_kwargs), kwargs sorted)
        donated, offset = [], 0
        for pos, a in zip(dyn_pos, dyn_structs):
            n = len(tree_util.tree_leaves(a))
            if pos in dnums:
                donated.extend(range(offset, offset + n))
            offset += n
        for k in sorted(kw_structs):
            n = len(tree_util.tree_leaves(kw_structs[k]))
            if k in self._donate_names:
                donated.extend(range(offset, offset + n))
            offset += n
        e.donated = tuple(donated)
        return e

    def _load(self, e: _Entry) -> None:
        if e.exe is not None and not e.exe.is_deleted():
            return
        exe = _client().compile(e.text, filename=getattr(self._fun, "__name__", "<module>"))
        specs = exe.input_specs
        if len(specs) != len(e.kept):
            raise RuntimeError(f"compiled program takes {len(specs)} inputs, jax.export kept "
                               f"{len(e.kept)} arguments")
        for k, (s, (dtype, shape)) in enumerate(zip(specs, e.in_meta)):
            if tuple(s.shape) != tuple(shape) or np.dtype(s.dtype) != dtype:
                raise RuntimeError(f"compiled input {k} is {s}, expected {dtype}{list(shape)}")
        if len(exe.output_specs) != len(e.out_meta):
            raise RuntimeError("compiled program's outputs do not match jax's")
        e.exe = exe

    # ------------------------------------------------------------------ calls
    def __call__(self, *args, **kwargs):
        entry, leaves = self._prepare(args, kwargs)
        if entry.exe is None or entry.exe.is_deleted():
            if any(isinstance(x, jax.core.Tracer) for x in leaves):
                return self._fun(*args, **kwargs)  # called under a jax transformation: inline
            self._load(entry)
        exe = entry.exe
        rt = exe._rt
        bufs, temps = [], []
        try:
            for i, (dtype, shape) in zip(entry.kept, entry.in_meta):
                x = leaves[i]
                if isinstance(x, Array) and x._dtype == dtype:
                    bufs.append(x._live_buffer())
                    continue
                if isinstance(x, jax.core.Tracer):
                    return self._fun(*args, **kwargs)
                h = np.ascontiguousarray(np.asarray(x, dtype=dtype))
                buf = rt.alloc(h.nbytes)
                temps.append(buf)
                if h.nbytes:
                    buf.write(h)
                bufs.append(buf)
            outs = exe.raw.execute(bufs)
        finally:
            for b in temps:
                b.free()
        arrays = [Array(b, shape, dtype, rt, weak) for b, (shape, dtype, weak) in zip(outs, entry.out_meta)]
        for i in entry.donated:
            x = leaves[i]
            if isinstance(x, Array):
                x.delete()
        return tree_util.tree_unflatten(entry.out_tree, arrays)

    def lower(self, *args, **kwargs) -> Lowered:
        entry, _ = self._prepare(args, kwargs)
        return Lowered(self, entry)

    def kernels(self, *args, **kwargs):
        """The kernels (fusion groups) the program for these arguments launches."""
        return self.lower(*args, **kwargs).compile().kernels()

    def source(self, *args, **kwargs) -> str:
        """The generated C for these arguments."""
        return self.lower(*args, **kwargs).compile().source

    def _cache_size(self) -> int:
        return len(self._cache)

    def clear_cache(self) -> None:
        self._cache.clear()

    def __repr__(self):
        return f"<tt_xla.jit({getattr(self._fun, '__qualname__', self._fun)!r})>"


def jit(fun=None, *, static_argnums=(), static_argnames=(), donate_argnums=(), donate_argnames=()):
    """Like `jax.jit(fun, static_argnums=..., static_argnames=..., donate_argnums=...)`."""
    kw = dict(static_argnums=static_argnums, static_argnames=static_argnames,
              donate_argnums=donate_argnums, donate_argnames=donate_argnames)
    if fun is None:
        return functools.partial(jit, **kw)
    return Jitted(fun, **kw)


class _CallableModule(types.ModuleType):
    """`import tt_xla.jit` rebinds the package attribute `tt_xla.jit` to this module; keep
    `tt_xla.jit(f)` working anyway."""

    def __call__(self, *args, **kwargs):
        return jit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
