"""A small gated recurrent module standing in for the library's cells in trainer tests."""

import torch
from torch import nn


class StandInGated(nn.Module):
    """h_t = (1 − s) h_{t−1} + s tanh(LN(W_x x_t + W_h h_{t−1})), s = σ(w x_t + b); ŷ = W_out h."""

    def __init__(self, D=3, H=8, *, generator=None):
        super().__init__()
        self.wx = nn.Parameter(torch.randn(H, D, generator=generator) / D ** 0.5)
        self.wh = nn.Parameter(torch.randn(H, H, generator=generator) / H ** 0.5)
        self.ws = nn.Parameter(torch.zeros(H, D))
        self.bs = nn.Parameter(torch.full((H,), -2.0))
        self.ln = nn.LayerNorm(H)
        self.out = nn.Linear(H, 1)
        with torch.no_grad():
            self.out.weight.copy_(torch.randn(1, H, generator=generator) / H ** 0.5)
            self.out.bias.zero_()

    def forward(self, x, return_terms=False):
        h = x.new_zeros(x.shape[0], self.wh.shape[0])
        hs, ds, rs = [], [], []
        for t in range(x.shape[1]):
            s = torch.sigmoid(x[:, t] @ self.ws.T + self.bs)
            g = torch.tanh(self.ln(x[:, t] @ self.wx.T + h @ self.wh.T))
            h = (1 - s) * h + s * g
            hs.append(h)
            ds.append(1 - s)
            rs.append(s * (1 - g * g) * torch.diagonal(self.wh))  # LN's Jacobian left out
        hseq = torch.stack(hs, 1)
        yhat = self.out(hseq)
        if not return_terms:
            return yhat
        return {"yhat": yhat, "state": hseq, "d": torch.stack(ds, 1), "r": torch.stack(rs, 1),
                "readout": self.out.weight}


def standin_builder(D, H, s, generator):
    """Builder with the experiment's signature (the gate value s is ignored)."""
    return StandInGated(D, H, generator=generator)
