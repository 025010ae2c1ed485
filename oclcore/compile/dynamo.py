"""Teaching dynamo that an OclTensor is a tensor.

Dynamo traces a tensor subclass as a tensor only when the subclass keeps
torch's own ``__torch_dispatch__`` or can be flattened into inner tensors
(``__tensor_flatten__``). An OclTensor is neither: it is a wrapper whose data
lives in an OpenCL buffer, so dynamo would treat it as an opaque object and
trace into our dispatch code. This module makes dynamo's variable builder
wrap OclTensors like plain tensors (fake tensors on device "ocl"), which is
what they are to every op. AOTAutograd then asks the runtime tangents to
match the traced type: OclTensor.__coerce_same_metadata_as_tangent__ answers.
It also keeps dynamo's frame hook out of OclTensor.__torch_dispatch__ and all it
calls: after a graph break (an LSTM, a print) eager ops run inside the compiled
function, and dynamo would compile the dispatcher itself, once per op signature
until its recompile limit. These are the places oclcore reaches into dynamo's
internals."""

from ..torch.tensor import OclTensor

_installed = False


def install():
    """Makes dynamo wrap OclTensors as tensors (idempotent)."""
    global _installed
    if _installed:
        return
    from torch._dynamo.variables import builder

    wrap = builder.VariableBuilder._wrap

    def _wrap(self, value):
        if type(value) is OclTensor:
            return self.wrap_tensor(value)
        return wrap(self, value)

    builder.VariableBuilder._wrap = _wrap
    from torch._dynamo.eval_frame import FrameAction, FrameExecStrategy, set_code_exec_strategy

    set_code_exec_strategy(OclTensor.__torch_dispatch__.__func__.__code__,
                           FrameExecStrategy(FrameAction.SKIP, FrameAction.SKIP))
    _installed = True
