"""What the autograd engine will do with a custom Function's input gradients, and torch's in-place check
for inputs the hybrid layers keep outside ``save_for_backward``.

The layers' backward hands a parameter's gradient to the layer (``HybridModule._record_gradient``):
kept as factors for ``HybridSGD``, applied at the next ``opt.step()``. That is accumulation into
the parameter, so it may happen only when the engine accumulates: in ``loss.backward()``, not in
``torch.autograd.grad(loss, x)`` (input saliency, adversarial examples) nor in
``loss.backward(inputs=[x])``, where torch leaves every other parameter's ``.grad`` alone.
``ctx.needs_input_grad`` cannot tell: it says only whether the input required grad at forward.
"""
from __future__ import annotations

import torch

_will_execute = getattr(torch._C, "_will_engine_execute_node", None)


def grad_use(ctx, index: int, node_index: int | None = None) -> str | None:
    """What the current backward pass does with input ``index``'s gradient: ``"record"`` — the engine
    runs its node (for a leaf parameter its ``AccumulateGrad``: a plain ``.backward()``, or
    ``backward(inputs=…)`` listing it), so the layer keeps it for the optimizer; ``"return"`` —
    ``torch.autograd.grad`` asks for it (torch refuses the question for a leaf it captures, and that
    refusal is the answer): returned, not kept; None — nobody wants it (``torch.autograd.grad(loss,
    x)``, ``backward(inputs=[x])``, or the input needs no gradient).

    ``ctx.next_functions[index][0]`` is that node and ``torch._C._will_engine_execute_node`` asks the
    running graph task whether it executes it (what ``torch.autograd.graph.register_multi_grad_hook``
    uses): one call into torch, no allocation. ``ctx.next_functions`` lists the tensor inputs only:
    where a non-tensor input (a module, None) comes before input ``index``, ``node_index`` gives its
    place among them. Without that private function (a torch that lacks it) every wanted gradient is
    recorded, the behaviour before this check."""
    if not ctx.needs_input_grad[index]:
        return None
    if _will_execute is None:
        return "record"
    node = ctx.next_functions[index if node_index is None else node_index][0]
    if node is None:
        return None
    try:
        return "record" if _will_execute(node) else None
    except RuntimeError:  # a leaf captured by torch.autograd.grad(…, inputs=[param])
        return "return"


def check_unmodified(x: torch.Tensor, version: int, what: str) -> None:
    """Raise torch's error if ``x`` — an input a layer's backward reads through a view that torch's
    saved-tensor check does not see (a numpy view, a reshape) — was modified in place after forward
    recorded its ``x._version``: the gradient would otherwise be computed from the new values."""
    now = x._version
    if now != version:
        made_by = f", which is output 0 of {x.grad_fn.name()}," if x.grad_fn is not None else ""
        raise RuntimeError(
            "one of the variables needed for gradient computation has been modified by an inplace operation: "
            f"[{x.type()} {list(x.shape)}]{made_by} is at version {now}; expected version {version} instead "
            f"(the input of {what}). Hint: make the in-place change out of place (h = h + f(h), not h += f(h)), "
            "or pass a copy (x.clone()) to the layer.")


def refuse_create_graph(what: str) -> None:
    """Refuse a backward pass asked with ``create_graph=True`` (a gradient penalty, a double backward, a
    Hessian-vector product) through ``what``: inside a custom Function's backward grad mode is on exactly
    then. The hybrid layers compute their gradients outside autograd (numpy kernels, the factors the rule
    keeps), so the gradient they return has no graph: the penalty's part through their weights would be
    silently dropped (∂‖∂L/∂x‖²/∂W = 0). Cheap (one call into torch) and the same in every mode."""
    if torch.is_grad_enabled():
        from ..errors import ConfigError
        raise ConfigError("create_graph", True, reason=(
            f"second-order gradients through {what} are not supported (in any mode, fp included): its backward "
            "computes the gradients outside autograd, so a gradient penalty, double backward or Hessian-vector "
            "product through it would silently lose its part. Differentiate through it once (create_graph=False), "
            "or compute the penalty on a float model (torch.nn layers, e.g. the model before ferristor.convert)"))


def _dynamo_is_compiling() -> bool:  # torch 2.1–2.2: torch.compiler has no is_compiling yet
    return torch._dynamo.is_compiling()


def _find_is_compiling(compiler=torch.compiler):
    return getattr(compiler, "is_compiling", None) or _dynamo_is_compiling


# Whether torch.compile is tracing this call (checked in every hybrid forward: ~60 ns).
is_compiling = _find_is_compiling()

_EAGER: dict = {}


def outside_compile(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` eagerly inside ``torch.compile``, for the hybrid layers' forward and
    ferristor's losses, which call it where ``is_compiling()``: their passes are numba
    kernels and numpy views, which Dynamo cannot put in a graph (it would break the graph there
    anyway), and a kernel's first call compiles it in numba's Python compiler, which fails under
    Dynamo's tracing (``KeyError: 'parfor_index…'``: ``torch.compile`` of a hybrid model on a machine
    without numba's cache). The rest of the model compiles."""
    eager = _EAGER.get(fn)
    if eager is None:
        eager = _EAGER[fn] = torch.compiler.disable(fn)
    return eager(*args, **kwargs)
