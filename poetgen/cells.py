"""Hand-written RNN, LSTM and GRU layers, written from the gate equations.

They are drop-in twins of ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (batch_first): the same parameter
names and shapes (``weight_ih_l0``, ``bias_hh_l1_reverse`` ...), the same gate order (LSTM: input,
forget, cell, output; GRU: reset, update, new), so a state_dict moves freely between the two and
the tests can check that outputs and gradients agree. They are slower (a Python loop over time
steps, though the input projections of all steps are one matrix product); their point is to be read.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# Each step gets ``xw = W_ih x + b_ih`` already computed: the input projections of all time steps
# are one matrix product per layer (``_run``), so the loop over time does only the recurrent part.


def rnn_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh)"""
    return torch.tanh(xw + h @ w_hh.T + b_hh)


def lstm_step(xw: Tensor, state: tuple[Tensor, Tensor], w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
    """i, f, o = σ(·); g = tanh(·) of W_ih x + b_ih + W_hh h + b_hh; c' = f*c + i*g; h' = o*tanh(c').
    Returns (h', c')."""
    h, c = state
    i, f, g, o = (xw + h @ w_hh.T + b_hh).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # the cell state must be carried
    h = torch.sigmoid(o) * torch.tanh(c)  # the hidden state, not the output gate, is returned
    return h, c


def gru_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """r, z = σ(·); n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h' = (1-z)*n + z*h"""
    xr, xz, xn = xw.chunk(3, dim=-1)
    hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h


class CustomRNN(nn.Module):
    """A stack of hand-written recurrent layers with ``nn.RNN``'s interface (batch_first=True).

    ``forward(x, hx, lengths)``: when ``lengths`` is given, each sequence's state stops changing
    after its last real step, so ``h_n`` is the state at the true end (what packing gives).
    """

    def __init__(
        self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
        dropout: float = 0.0, bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.dropout, self.bidirectional = num_layers, dropout, bidirectional
        gates = GATES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            size_in = input_size if layer == 0 else hidden_size * dirs
            for suffix in ["", "_reverse"][:dirs]:
                self.register_parameter(f"weight_ih_l{layer}{suffix}", nn.Parameter(torch.empty(gates, size_in)))
                self.register_parameter(f"weight_hh_l{layer}{suffix}", nn.Parameter(torch.empty(gates, hidden_size)))
                self.register_parameter(f"bias_ih_l{layer}{suffix}", nn.Parameter(torch.empty(gates)))
                self.register_parameter(f"bias_hh_l{layer}{suffix}", nn.Parameter(torch.empty(gates)))
        bound = 1 / math.sqrt(hidden_size)  # torch's own initialisation, so both start alike
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        extra = f", dropout={self.dropout}" if self.dropout else ""
        extra += ", bidirectional=True" if self.bidirectional else ""
        return (f"mode={self.mode.upper()}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, batch_first=True{extra}, hand-written")

    def forward(
        self, x: Tensor, hx: Tensor | tuple[Tensor, Tensor] | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        batch, steps, _ = x.shape
        dirs = 2 if self.bidirectional else 1
        if hx is None:
            zeros = x.new_zeros(self.num_layers * dirs, batch, self.hidden_size)
            hx = (zeros, zeros.clone()) if self.mode == "lstm" else zeros
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long)
        lengths = lengths.to(x.device)
        # alive[b, t] is True while step t is inside sequence b: padded steps keep the old state.
        alive = torch.arange(steps, device=x.device)[None, :] < lengths[:, None]
        h_all, c_all = (hx if self.mode == "lstm" else (hx, None))
        finals_h, finals_c = [], []
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(["", "_reverse"][:dirs]):
                k = layer * dirs + d
                state = (h_all[k], c_all[k]) if self.mode == "lstm" else h_all[k]
                seq = x if d == 0 else _reverse_padded(x, lengths)
                out, state = self._run(seq, state, alive, suffix, layer)
                outputs.append(out if d == 0 else _reverse_padded(out, lengths))
                finals_h.append(state[0] if self.mode == "lstm" else state)
                if self.mode == "lstm":
                    finals_c.append(state[1])
            x = torch.cat(outputs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        h_n = torch.stack(finals_h)
        return x, ((h_n, torch.stack(finals_c)) if self.mode == "lstm" else h_n)

    def _run(self, seq: Tensor, state, alive: Tensor, suffix: str, layer: int):
        w_ih, w_hh, b_ih, b_hh = (getattr(self, f"{name}_l{layer}{suffix}")
                                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        step = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}[self.mode]
        xw = torch.addmm(b_ih, seq.reshape(-1, seq.shape[-1]), w_ih.T).view(*seq.shape[:2], -1)  # (B, T, gates)
        outs = []
        # unbind, not xw[:, t]: its backward stacks the T gradients once, where T slices would each
        # add a zero-padded (B, T, gates) gradient
        for t, xw_t in enumerate(xw.unbind(1)):
            new = step(xw_t, state, w_hh, b_hh)
            keep = alive[:, t, None]
            if self.mode == "lstm":
                state = (torch.where(keep, new[0], state[0]), torch.where(keep, new[1], state[1]))
                outs.append(state[0] * keep)
            else:
                state = torch.where(keep, new, state)
                outs.append(state * keep)
        return torch.stack(outs, dim=1), state


def _reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence within its own length, leaving padding where it is."""
    steps = x.shape[1]
    t = torch.arange(steps, device=x.device)[None, :]
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return x.gather(1, idx[:, :, None].expand_as(x))
