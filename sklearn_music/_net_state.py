"""Pickling of the estimators that own a skorch ``net_``: plain weights, rebuilt on load."""


class NetStateMixin:
    """``__getstate__``/``__setstate__`` of an estimator holding a skorch net in ``net_``.

    The state holds the net's weights as ``torch.save`` bytes and its history, no
    torch objects: both :mod:`pickle` and :func:`sklearn_music.persistence.save_model`
    use it, and the weights are moved to the CPU, so a model trained on a GPU loads
    on a machine without one. On load the net is rebuilt by ``_net_from_weights``
    (``torch.load(weights_only=True)`` from its checked parameters). Parameters
    added after a release are filled from ``_ADDED_PARAMS`` for older models.

    Put it before :class:`~sklearn.base.BaseEstimator` in the bases.
    """

    # parameter -> the value that keeps a model saved before it existed unchanged
    _ADDED_PARAMS: dict = {}

    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        if net is not None:
            from ._net import _net_to_state

            state["_net_weights"], state["_net_history"] = _net_to_state(net)
        return state

    def __setstate__(self, state):
        state = {**self._ADDED_PARAMS, **state}
        weights = state.pop("_net_weights", None)
        history = state.pop("_net_history", None)
        super().__setstate__(state)
        if weights is not None:
            self.net_ = self._net_from_weights(weights, history)
