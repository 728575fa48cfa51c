"""`tt_xla.jit`: a drop-in for `jax.jit` that runs on the tt device.

The only module of tt_xla that imports jax. Per distinct (argument tree structure, shapes,
dtypes, weak types, static values, x64 setting) the function is exported once with
`jax.export` to StableHLO text, which the client parses, compiles and loads. Calls then upload
host arguments (tt_xla.Array arguments are used in place), launch once, and rebuild the output
pytree from tt_xla.Arrays.
"""
from __future__ import annotations

import dataclasses

import functools
import inspect
import sys
import types

import numpy as np

import jax
from jax import tree_util

from .array import Array
from .client import client as _client
from .compiler.options import compiler_options as _compiler_options

__all__ = ["jit", "Jitted", "Lowered"]

_PY_SCALARS = (bool, int, float, complex)
_MISS = object()  # Jitted._call_fast: not a fast-path hit

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
    __slots__ = ("exported", "text", "exe", "kept", "in_meta", "out_tree", "out_meta", "donated",
                 "single_out")


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
                 donate_argnames=(), compiler_options=None):
        if not callable(fun):
            raise TypeError(f"tt_xla.jit expects a callable, got {fun!r}")
        self._fun = fun
        self._options = _compiler_options(compiler_options)  # refused here, not at the first call
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
        # Calls whose arguments are all positional arrays (tt_xla.Array or numpy): keyed by their
        # own shapes and dtypes, they skip the pytree flattening and jax's dtype canonicalization
        # (the slow key below is a function of this one). Off when arguments can be static.
        self._fast: dict = {}
        self._fast_ok = not (snums or snames)

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

    def _fast_key(self, args):
        """The fast-path key of positional `args`, or None when one is not an array."""
        key = [jax.config.jax_enable_x64]
        for x in args:
            t = type(x)
            if t is Array:
                key += (x._shape, x._dtype, x._weak_type)
            elif t is np.ndarray:
                key += (x.shape, x.dtype, None)
            else:
                return None
        return tuple(key)

    def _prepare(self, args, kwargs):
        if self._fast_ok and not kwargs:
            fkey = self._fast_key(args)
            if fkey is not None:
                hit = self._fast.get(fkey)
                if hit is None:
                    entry, _ = self._prepare_slow(args, kwargs)
                    self._fast[fkey] = hit = (entry, self._plan(entry, args))
                return hit[0], args  # arrays are pytree leaves: the leaves are the arguments
        return self._prepare_slow(args, kwargs)

    @staticmethod
    def _plan(entry: _Entry, args) -> tuple:
        """How each kept argument of a fast-path call is bound, decided once for its key:
        (position, dtype, how) with how 0 = a tt_xla.Array's buffer in place, 1 = the numpy array
        itself, 2 = converted to dtype."""
        plan = []
        for i, (dtype, _) in zip(entry.kept, entry.in_meta):
            x = args[i]
            same = (x._dtype if type(x) is Array else x.dtype) == dtype
            plan.append((i, dtype, (0 if type(x) is Array else 1) if same else 2))
        return tuple(plan)

    def _call_fast(self, args):
        """A cache hit whose arguments are all arrays: the steady-state call path."""
        fkey = self._fast_key(args)
        hit = self._fast.get(fkey) if fkey is not None else None
        if hit is None or hit[0].exe is None or hit[0].exe.is_deleted():
            return _MISS  # (a deleted executable is loaded again by the slow path)
        entry, plan = hit
        bufs = []
        for i, dtype, how in plan:
            x = args[i]
            if how == 0:
                b = x._buf
                bufs.append(b if b is not None else x._live_buffer())  # (raises when deleted)
            else:
                bufs.append(x if how == 1 else np.asarray(x, dtype=dtype))
        return self._finish(entry, args, bufs)

    def _finish(self, entry: _Entry, leaves, bufs):
        exe = entry.exe
        rt = exe._rt
        outs = exe.raw.run(bufs)
        new = Array._new
        arrays = [new(b, shape, dtype, rt, weak) for b, (shape, dtype, weak) in zip(outs, entry.out_meta)]
        for i in entry.donated:
            x = leaves[i]
            if isinstance(x, Array):
                x.delete()
        if entry.single_out:
            return arrays[0]
        return tree_util.tree_unflatten(entry.out_tree, arrays)

    def _prepare_slow(self, args, kwargs):
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
        e.single_out = exported.out_tree == tree_util.tree_structure(0)
        return e

    def _load(self, e: _Entry) -> None:
        if e.exe is not None and not e.exe.is_deleted():
            return
        options = self._options
        if isinstance(options.weight_format, tuple):  # by flat argument leaf: to the program's (kept) inputs
            pos = {leaf: k for k, leaf in enumerate(e.kept)}
            options = dataclasses.replace(options, weight_format=tuple(
                (pos[i], f) for i, f in options.weight_format if i in pos))
        exe = _client().compile(e.text, filename=getattr(self._fun, "__name__", "<module>"),
                                compiler_options=options)
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
        if self._fast_ok and not kwargs:
            out = self._call_fast(args)
            if out is not _MISS:
                return out
        entry, leaves = self._prepare(args, kwargs)
        if entry.exe is None or entry.exe.is_deleted():
            if any(isinstance(x, jax.core.Tracer) for x in leaves):
                return self._fun(*args, **kwargs)  # called under a jax transformation: inline
            self._load(entry)
        # Device arrays are bound in place, numpy arrays of the right dtype without a copy for
        # the call (executable.run); everything else is converted once on the host.
        bufs = []
        for i, (dtype, shape) in zip(entry.kept, entry.in_meta):
            x = leaves[i]
            t = type(x)
            if t is Array and x._dtype == dtype:
                b = x._buf
                bufs.append(b if b is not None else x._live_buffer())  # (raises when deleted)
            elif t is np.ndarray and x.dtype == dtype:
                bufs.append(x)
            elif isinstance(x, jax.core.Tracer):
                return self._fun(*args, **kwargs)
            elif isinstance(x, Array) and x._dtype == dtype:
                bufs.append(x._live_buffer())
            else:
                bufs.append(np.asarray(x, dtype=dtype))
        return self._finish(entry, leaves, bufs)

    def profile(self, *args, **kwargs):
        """Calls the function once on these arguments and reports where the modeled device time
        went, per kernel: `str(report)` is the table, `report.trace` the Perfetto trace JSON,
        `report.result` the call's result (tt_xla/profile.py)."""
        from .profile import profile_run
        exe = self.lower(*args, **kwargs).compile()
        return profile_run(exe, lambda: self(*args, **kwargs))

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
        self._fast.clear()

    def __repr__(self):
        return f"<tt_xla.jit({getattr(self._fun, '__qualname__', self._fun)!r})>"


def jit(fun=None, *, static_argnums=(), static_argnames=(), donate_argnums=(), donate_argnames=(),
        compiler_options=None):
    """Like `jax.jit(fun, static_argnums=..., static_argnames=..., donate_argnums=...,
    compiler_options=...)`; compiler_options: `{"optimization_level": 0|1|2, "weight_format": ...}`
    (a per-argument weight_format is keyed by the index of the argument's leaf among all the
    arguments' flattened leaves, as jax.tree_util.tree_leaves((args...)) lists them)."""
    kw = dict(static_argnums=static_argnums, static_argnames=static_argnames,
              donate_argnums=donate_argnums, donate_argnames=donate_argnames,
              compiler_options=compiler_options)
    if fun is None:
        return functools.partial(jit, **kw)
    return Jitted(fun, **kw)


class _CallableModule(types.ModuleType):
    """`import tt_xla.jit` rebinds the package attribute `tt_xla.jit` to this module; keep
    `tt_xla.jit(f)` working anyway."""

    def __call__(self, *args, **kwargs):
        return jit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
