/* The eager first step of a request's coroutine (driver.py), for the optional native
 * build (setup.py).
 *
 * first_step(context, coro) -> (finished, value): run one step of `coro` inside
 * `context`, as `context.run(coro.send, None)` does. PyIter_Send reports a finished
 * coroutine by its return code instead of raising StopIteration. Most requests
 * finish in their first step, and in mypyc-compiled code every exception that is
 * caught first gets a traceback frame built for it: about 4,000 instructions per
 * request saved. Other exceptions propagate unchanged.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *
first_step(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *value = NULL;
    PySendResult sent;

    if (nargs != 2 || !PyContext_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "first_step(context: Context, coro)");
        return NULL;
    }
    if (PyContext_Enter(args[0]) < 0) {
        return NULL;
    }
    sent = PyIter_Send(args[1], Py_None, &value);
    if (PyContext_Exit(args[0]) < 0) {
        Py_XDECREF(value);
        return NULL;
    }
    if (sent == PYGEN_ERROR) {
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, sent == PYGEN_RETURN ? Py_True : Py_False, value);
    Py_DECREF(value);
    return result;
}

static PyMethodDef methods[] = {
    {"first_step", (PyCFunction)(void (*)(void))first_step, METH_FASTCALL,
     "first_step(context, coro) -> (finished, value)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "covetd.engine._first_step", NULL, 0, methods,
};

PyMODINIT_FUNC
PyInit__first_step(void)
{
    return PyModule_Create(&module);
}
