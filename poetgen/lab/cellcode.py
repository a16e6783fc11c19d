"""The report's section on the hand-written cells: each cell's equations and the code that
computes them (read from ``cells.py`` itself, so the report shows what ran)."""

from __future__ import annotations

import inspect

from poetgen.lab.blocks import Block, Code, Details, Heading, Para

EQUATIONS = {
    "lstm": ("i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)      input gate\n"
             "f_t = σ(W_if x_t + b_if + W_hf h_{t−1} + b_hf)      forget gate\n"
             "g_t = tanh(W_ig x_t + b_ig + W_hg h_{t−1} + b_hg)   candidate\n"
             "o_t = σ(W_io x_t + b_io + W_ho h_{t−1} + b_ho)      output gate\n"
             "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t                     cell state: carried, not recomputed\n"
             "h_t = o_t ⊙ tanh(c_t)                               hidden state (what the next layer reads)"),
    "gru": ("r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)      reset gate\n"
            "z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)      update gate\n"
            "n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))\n"
            "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}"),
    "rnn": "h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)",
}
WHY = {
    "lstm": "Through c_t the gradient from step t to step t−1 is multiplied by f_t (plus terms through the gates), "
            "not by a squashed matrix product: with f_t near 1 it survives many steps.",
    "gru": "z_t plays the forget gate's part: with z_t near 1, h_t ≈ h_{t−1} and the gradient passes through "
           "unchanged.",
    "rnn": "Every step multiplies the gradient by W_hh and by tanh′ ≤ 1: over many steps it shrinks geometrically "
           "unless W_hh is large, and then tanh saturates.",
}


def cell_blocks(models: list[str]) -> list[Block]:
    """Equations and code of each hand-written cell in ``models`` (``lstm``, ``gru``, ``rnn``)."""
    from poetgen import cells

    step = {"lstm": cells.lstm_step, "gru": cells.gru_step, "rnn": cells.rnn_step}
    shown = [m for m in ("lstm", "gru", "rnn") if m in models]
    if not shown:
        return []
    blocks: list[Block] = [
        Heading(2, "The hand-written cells"),
        Para("The `:custom` runs use these cells (`poetgen/cells.py`), not torch's kernels: the same parameters "
             "(names, shapes, gate order) as `nn.LSTM` / `nn.GRU`, so a state_dict moves between the two and the "
             "tests check that outputs and gradients agree. The input projections of all steps, W_i· x_t + b_i·, "
             "are one matrix product before the loop; each step below adds the recurrent part."),
    ]
    for m in shown:
        name = {"lstm": "LSTM", "gru": "GRU", "rnn": "tanh RNN"}[m]
        blocks += [Heading(3, name), Code(EQUATIONS[m]), Para(WHY[m]),
                   Details(f"The {name} step in poetgen/cells.py", [Code(inspect.getsource(step[m]).rstrip())])]
    return blocks
