"""Machine code only for functions that can be called: a kernel's helpers are linked, not built.

Numba compiles each function a kernel calls into a code library of its own, and finishes every
library the same way: it links in the libraries of the functions it calls, optimises the module and
emits machine code for it. For a helper without a Python wrapper (an ``overload`` implementation, a
``jit_device`` or ``jit_scalar`` helper, numba's own implementation of ``min``) that machine code
is never run: callers link the helper's optimised IR into their own module and compile that.
stntool's kernels are layers of such helpers (entry kernel, row loop, edge pixels, span loops,
scalar maths), so each layer's code was optimised and compiled once for every layer above it: about
a quarter of a kernel family's first compile.

While a stntool kernel compiles (:func:`compiling`), a library whose Python wrapper is missing when
numba asks for it is marked *link-only*: it gets numba's per-function optimisation as before, and
its callees are linked into it, but it is neither optimised as a module nor compiled to machine
code on its own. The kernel that links it optimises and compiles all of its code once, as a whole.
The kernel's machine code therefore differs a little from numba's layer-by-layer result (LLVM sees
each helper once instead of once per layer), never its results: kernels are compiled without
fast-math, so every optimisation keeps IEEE semantics, and the golden-output tests run in this
mode. Warm speed was measured against numba's behaviour: see benchmarks/results/compile.md.
Libraries compiled outside a stntool kernel, and every library with a Python wrapper, are handled
as numba handles them.

On-disk caching of a link-only helper stores its linked IR (bitcode) instead of object code plus
IR, and loading it gives a link-only library again; the cache key records whether link-only mode
was on (:func:`stamp`), so caches written with ``STNTOOL_LINK_ONLY=0`` (numba's behaviour) and
without it never mix. The other libraries of stntool's kernels are stored as numba stores them (machine
code, and their IR for callers to link) plus the names their IR defines, so loading a kernel no longer parses
its IR (about 20 ms a kernel, a third of what a warm ``stntool warp`` spends loading kernels); the IR
is parsed if a later compile links the kernel in.

A helper's environment pointer (numba's per-function ``Environment``, used only to raise
exceptions that carry Python objects) is set once a caller's module that contains it is loaded.

Uses numba's code-library internals (``numba.core.codegen``); :func:`install` does nothing when
they are not the ones this module was written for, or when ``STNTOOL_LINK_ONLY=0``.
"""

from __future__ import annotations

import contextlib
import os
import threading

#: Serialisation kind of a link-only library in numba's cache files.
KIND = "stntool-link-only-bitcode"
#: Serialisation kind of a stntool kernel's library (compiled in :func:`compiling`; not link-only): numba's
#: ``"object"`` (machine code, and IR for callers to link) plus the names the IR defines, so a load need not
#: parse the IR (about 20 ms a kernel) until a caller links it. Other functions' libraries (a user's own
#: cached functions) keep numba's form, which a process without stntool reads.
OBJECT_KIND = "stntool-object-code"

_state = threading.local()
_installed = False


def enabled() -> bool:
    """Whether link-only mode is requested (``STNTOOL_LINK_ONLY`` is not ``0``)."""
    return os.environ.get("STNTOOL_LINK_ONLY", "1").strip() != "0"


def stamp() -> str:
    """Part of every stntool cache key: caches written in and out of link-only mode never mix."""
    return "link-only" if _installed else "numba"


@contextlib.contextmanager
def compiling():
    """Mark the current thread as compiling a stntool kernel (nested calls are fine)."""
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


def _active() -> bool:
    return getattr(_state, "depth", 0) > 0


def wrap_compile(dispatcher):
    """Make ``dispatcher`` (a stntool kernel) compile in link-only mode: its ``compile`` runs inside
    :func:`compiling`, and so do the helpers numba compiles while typing it."""
    compile_ = dispatcher.compile

    def compile(sig):
        with compiling():
            return compile_(sig)

    compile.__doc__ = compile_.__doc__
    dispatcher.compile = compile
    return dispatcher


def _defines(module, name) -> bool:
    try:
        return not module.get_function(name).is_declaration
    except NameError:
        return False


def _deferred(library) -> bool:
    """A link-only library not finalised (yet): its machine code is left to the kernels that link it."""
    return getattr(library, "_link_only", False) and not library._finalized


def _make_class(cg, ll):
    class LinkOnlyLibrary(cg.JITCodeLibrary):
        """numba's JIT code library, plus the link-only state described in the module docstring."""

        _link_only = False
        _lazy_bitcode = None

        def get_pointer_to_function(self, name):
            # numba asks for a function's Python wrapper right after lowering it; a helper has none.
            if _deferred(self):
                return 0
            if not self._finalized and _active() and not _defines(self._final_module, name):
                self._link_only = True
                return 0
            return super().get_pointer_to_function(name)

        def add_linking_library(self, library):
            if _deferred(library):
                if hasattr(self, "_reload_init"):
                    self._reload_init.update(library._all_reload_init())
                self._linking_libraries.append(library)
                return
            super().add_linking_library(library)

        def _all_reload_init(self):
            found = set(getattr(self, "_reload_init", ()))
            for library in self._linking_libraries:
                if _deferred(library):
                    found |= library._all_reload_init()
                else:
                    found |= set(getattr(library, "_reload_init", ()))
            return found

        def _get_module_for_linking(self):
            if self._lazy_bitcode is not None:  # loaded from the cache: its IR is parsed when first needed
                self._shared_module = ll.parse_bitcode(self._lazy_bitcode)
                self._lazy_bitcode = None
            if not _deferred(self):
                return super()._get_module_for_linking()
            if self._shared_module is None:
                # the callees are linked in, as numba's finalize does; the module is not optimised
                # on its own: the kernel that links it optimises all of its code once, as a whole
                seen = set()
                for library in self._linking_libraries:
                    if library not in seen:
                        seen.add(library)
                        self._final_module.link_in(library._get_module_for_linking(), preserve=True)
                mod = self._final_module.clone()
                for fn in mod.functions:  # as numba does: one definition per caller, inlinable, droppable
                    if not fn.is_declaration and fn.linkage == ll.Linkage.external:
                        fn.linkage = "linkonce_odr"
                self._shared_module = mod
            return self._shared_module

        def finalize(self):
            if _deferred(self) and self._shared_module is not None:
                # linked already (or loaded so): optimise, then emit the machine code
                self._optimize_final_module()
                self._final_module.verify()
                self._finalize_final_module()
                return
            super().finalize()

        @property
        def has_dynamic_globals(self):
            # numba's cache asks before saving; it finalizes the library to find out
            if _deferred(self):
                return any(gv.name.startswith("numba.dynamic.globals")
                           for gv in self._get_module_for_linking().global_variables)
            return super().has_dynamic_globals

        def _finalize_final_module(self):
            super()._finalize_final_module()
            _set_pending_envs(self._codegen)

        def serialize_using_object_code(self):
            if _deferred(self):
                return (self.name, KIND, self._get_module_for_linking().as_bitcode())
            name, kind, data = super().serialize_using_object_code()
            if kind != "object" or not _active():  # others' functions keep numba's form: numba alone reads them
                return name, kind, data
            mod = self._get_module_for_linking()
            symbols = sorted(gv.name for gs in (mod.functions, mod.global_variables) for gv in gs
                             if not gv.is_declaration)
            return name, OBJECT_KIND, (*data, symbols)

        @classmethod
        def _unserialize(cls, codegen, state):
            name, kind, data = state
            if kind == OBJECT_KIND:  # numba's "object" load, with the IR's symbols listed and the IR itself lazy
                object_code, bitcode, symbols = data
                self = codegen.create_library(name)
                self.enable_object_caching()
                self._set_compiled_object(object_code)
                self._lazy_bitcode = bitcode
                self._finalize_final_module()
                known = getattr(codegen._engine, "_defined_symbols", None)
                if isinstance(known, set):
                    known.update(symbols)
                else:  # numba's engine keeps them elsewhere: as numba's load does
                    codegen._engine._load_defined_symbols(self._get_module_for_linking())
                return self
            if kind != KIND:
                return super()._unserialize(codegen, state)
            self = codegen.create_library(name)
            # linked when it was saved; callers link their own copy, so that finalising this library
            # (optimising drops its functions: they are all linkonce_odr) leaves theirs whole
            self._shared_module = ll.parse_bitcode(data)
            self._final_module = self._shared_module.clone()
            self._link_only = True
            return self

    return LinkOnlyLibrary


_pending_envs: dict = {}


def _set_pending_envs(codegen):
    engine = codegen._engine
    for name in [n for n in _pending_envs if engine.get_global_value_address(n)]:
        _ORIGINAL_SET_ENV(codegen, name, _pending_envs.pop(name))


_ORIGINAL_SET_ENV = None


def _set_env(self, env_name, env):
    """numba's ``set_env``, which writes through the global's address: a link-only helper's global
    is not loaded yet, so it is set when a caller's module is (:func:`_set_pending_envs`)."""
    if self._engine.get_global_value_address(env_name) == 0:
        _pending_envs[env_name] = env
        return
    _ORIGINAL_SET_ENV(self, env_name, env)


def install() -> bool:
    """Install link-only libraries into numba's CPU code generator (once); True when active."""
    global _installed, _ORIGINAL_SET_ENV
    if _installed:
        return True
    if not enabled():
        return False
    try:
        import llvmlite.binding as ll
        from numba.core import codegen as cg
    except ImportError:
        return False
    codegen_cls = getattr(cg, "JITCPUCodegen", None)
    library_cls = getattr(cg, "JITCodeLibrary", None)
    needed = ("_get_module_for_linking", "has_dynamic_globals", "add_linking_library", "serialize_using_object_code",
              "_unserialize", "_finalize_final_module", "_optimize_final_module", "finalize", "get_pointer_to_function")
    if (codegen_cls is None or library_cls is None or getattr(codegen_cls, "_library_class", None) is not library_cls
            or not all(hasattr(library_cls, n) for n in needed) or not hasattr(codegen_cls, "set_env")):
        return False  # someone else's code generator, or numba internals this module does not know
    _ORIGINAL_SET_ENV = codegen_cls.set_env
    codegen_cls._library_class = _make_class(cg, ll)
    codegen_cls.set_env = _set_env
    _installed = True
    return True
