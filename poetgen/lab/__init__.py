"""The RNN-vs-LSTM lab: side-by-side training runs (``compare``), their curves and confusion
matrices (``plots``) and the Markdown / HTML report (``report``)."""
