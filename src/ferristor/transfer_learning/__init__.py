"""Transfer learning on the chip (the paper's Fig. 6): a frozen 4-bit backbone, a classifier head
trained with the hybrid rule. Modules: ``images`` (data), ``pretrain`` (the backbone, LSQ 4-bit),
``features`` (extraction and cache), ``folds`` (tenfold CV with flip pairs), ``heads`` (offline and
on-chip heads), ``protocol`` (the five heads, hyperparameters chosen on training folds), ``ledger``,
``fig6`` (the pairs, the table), ``plot``. See docs/transfer-learning.md."""
