"""One served engine inside one Triton model instance: the engine, loaded once and never
changed, and this instance's execution contexts on it, one per optimization profile (created
when a request first needs that profile). A context belongs to one thread at a time; Triton's
Python backend calls an instance's execute on one thread, so the instance owns its contexts.

check() judges a request's shapes alone with ductile's own message (the profile ranges, dims
that must agree between inputs); run() executes a feed, usually several requests concatenated.
"""
from .._lib import Error
from ..engine import load_engine
from .signature import io_names


class EngineRunner:
    def __init__(self, engine, threads=0):
        self.engine = engine if hasattr(engine, "io_tensor_names") else load_engine(engine)
        self.threads = threads
        self.outputs = io_names(self.engine)[1]
        self._contexts = {}

    def context(self, profile):
        ctx = self._contexts.get(profile)
        if ctx is None:
            ctx = self.engine.create_execution_context()
            ctx.set_optimization_profile(profile)
            if self.threads:
                ctx.set_threads(self.threads)
            self._contexts[profile] = ctx
        return ctx

    def profile_for(self, shapes):
        """The first profile whose ranges hold {input: shape}; raises ductile.Error with the
        library's message (profile 0's; every profile's when the engine has several)."""
        messages = []
        for p in range(self.engine.num_optimization_profiles):
            ctx = self.context(p)
            try:
                for name, shape in shapes.items():
                    ctx.set_input_shape(name, shape)
                # The shape pass: catches dims that must agree between inputs.
                for name in self.outputs:
                    try:
                        ctx.get_tensor_shape(name)
                    except Error as e:
                        if e.status != "DUCTILE_ERR_STATE":  # known only after execute: fine
                            raise
                return p
            except Error as e:
                messages.append(e)
        if len(messages) == 1:
            raise messages[0]
        raise Error("; ".join(f"profile {p}: {e}" for p, e in enumerate(messages)),
                    messages[0].status)

    def check(self, feeds):
        return self.profile_for({n: a.shape for n, a in feeds.items()})

    def run(self, feeds):
        """{output: array} for {input: array}; raises ductile.Error."""
        return self.context(self.check(feeds)).run(feeds)
