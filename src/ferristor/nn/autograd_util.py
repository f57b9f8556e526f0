"""What the autograd engine will do with a custom Function's input gradients, and torch's in-place check
for inputs the hybrid layers keep outside ``save_for_backward``.

The layers' backward hands a parameter's gradient to the layer (``HybridModule._record_gradient``):
kept as factors for ``HybridSGD``, applied at the next ``opt.step()``. That is accumulation into
the parameter, so it may happen only when the engine accumulates: in ``loss.backward()``, not in
``torch.autograd.grad(loss, x)`` (input saliency, adversarial examples, gradient penalties) nor in
``loss.backward(inputs=[x])``, where torch leaves every other parameter's ``.grad`` alone.
``ctx.needs_input_grad`` cannot tell: it says only whether the input required grad at forward.
"""
from __future__ import annotations

import torch

_will_execute = getattr(torch._C, "_will_engine_execute_node", None)


def grad_will_accumulate(ctx, index: int, node_index: int | None = None) -> bool:
    """Whether the current backward pass runs input ``index``'s gradient node — for a leaf parameter its
    ``AccumulateGrad``, i.e. whether the engine will add this gradient to ``param.grad``.

    ``ctx.next_functions[index][0]`` is that node; ``torch._C._will_engine_execute_node`` asks the
    running graph task whether it executes it (what ``torch.autograd.graph.register_multi_grad_hook``
    uses): always, in a plain ``.backward()``; only for the listed tensors, with
    ``backward(inputs=…)``; never, in ``torch.autograd.grad``, which captures the gradients it returns
    instead of accumulating them (for a captured leaf torch raises, and the answer is False: see
    :func:`grad_is_captured`). One call into torch, no allocation. Without that private function (a
    torch that lacks it) the answer falls back to ``ctx.needs_input_grad[index]``, the behaviour
    before this check. ``ctx.next_functions`` lists the tensor inputs only: where a non-tensor input
    (a module, None) comes before input ``index``, ``node_index`` gives its place among them."""
    if not ctx.needs_input_grad[index]:
        return False
    if _will_execute is None:
        return True
    node = ctx.next_functions[index if node_index is None else node_index][0]
    if node is None:
        return False
    try:
        return bool(_will_execute(node))
    except RuntimeError:  # a leaf captured by torch.autograd.grad(…, inputs=[param]): not accumulated
        return False


def grad_is_captured(ctx, index: int, node_index: int | None = None) -> bool:
    """Whether ``torch.autograd.grad`` returns input ``index``'s gradient in the current backward pass
    (``torch.autograd.grad(loss, layer.weight)``): the gradient must then be returned, but not
    accumulated. Call it only where :func:`grad_will_accumulate` said False (torch refuses the
    question for a captured leaf; that refusal is the answer)."""
    if _will_execute is None or not ctx.needs_input_grad[index]:
        return False
    node = ctx.next_functions[index if node_index is None else node_index][0]
    if node is None:
        return False
    try:
        _will_execute(node)
    except RuntimeError:
        return True
    return False


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
