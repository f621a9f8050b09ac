"""The shortcut in numba's typing of operators on scalars (stntool._jit) answers as numba's own template."""

import operator

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from stntool import _jit  # noqa: E402  (installs the shortcut)
from numba.core import types  # noqa: E402
from numba.core.registry import cpu_target  # noqa: E402
from numba.core.typing import npydecl  # noqa: E402

ARRAY = types.Array(types.float64, 2, "C")
CASES = [
    (types.int64, types.float64),
    (types.uint64, types.int64),
    (types.float32, types.int32),
    (types.boolean, types.boolean),
    (ARRAY, types.float64),
    (types.int64, types.Array(types.uint8, 1, "A")),
    (types.Optional(ARRAY), types.int64),
    (types.Optional(types.float64), types.int64),
    (types.UniTuple(types.int64, 2), types.int64),
    (ARRAY, ARRAY),
]


def template_of(op):
    """The template numba made for ``op`` from ``NumpyRulesArrayOperator`` (one subclass per operator)."""
    found = [npydecl.NumpyRulesArrayOperator]
    while found:
        cls = found.pop()
        if getattr(cls, "key", None) is op:
            return cls
        found.extend(cls.__subclasses__())
    raise LookupError(op)


def test_the_shortcut_is_installed_once():
    installed = npydecl.NumpyRulesArrayOperator.generic
    assert getattr(installed, "_scalars_skip", False)
    _jit._scalar_operators_skip_ufunc_search()  # again: not wrapped twice
    assert npydecl.NumpyRulesArrayOperator.generic is installed
    assert not getattr(installed.original, "_scalars_skip", False)


@pytest.mark.parametrize("op", [operator.add, operator.mul, operator.lt, operator.and_, operator.rshift,
                                operator.truediv])
@pytest.mark.parametrize("args", CASES, ids=str)
def test_same_answer_as_numbas_template(op, args):
    cls = template_of(op)
    template = cls(cpu_target.typing_context)
    original = npydecl.NumpyRulesArrayOperator.generic.original

    def answer(generic):
        try:
            return ("sig", generic(template, args, {}))
        except Exception as e:  # noqa: BLE001 - the same failure counts as the same answer
            return ("error", type(e))

    assert answer(cls.generic) == answer(original)


def test_kernels_still_type_array_and_scalar_operators():
    @numba.njit
    def f(a, x, k):
        b = a * x + 1.0          # array operators
        b += a                   # in place
        m = (a > x) & (a < 2 * x)
        return b, m, (k >> 1) + (k & 3) < x, -a

    a = np.arange(6.0).reshape(2, 3)
    b, m, s, n = f(a, 2.5, 7)
    assert np.array_equal(b, a * 2.5 + 1.0 + a)
    assert np.array_equal(m, (a > 2.5) & (a < 5.0))
    assert s == ((7 >> 1) + (7 & 3) < 2.5)
    assert np.array_equal(n, -a)


def test_numba_describes_the_template_by_its_own_name_and_this_files_lines():
    import inspect

    generic = npydecl.NumpyRulesArrayOperator.generic
    assert generic.__qualname__ == "NumpyRulesArrayOperator.generic"
    assert inspect.getsourcefile(generic).endswith("_jit.py")
    lines, start = inspect.getsourcelines(generic)
    assert "def arrays_only" in lines[0]
