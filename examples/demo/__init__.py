"""The CPU demo: α-DPG against Dr. GRPO on a toy task, on a laptop, no GPU and no Lean.

    python -m examples.demo --config configs/demo_cpu.yaml

- :mod:`.tokenizer`: the character tokenizer;
- :mod:`.task`: the task (arithmetic "proofs" of a target number) and its base distribution;
- :mod:`.base_model`: fitting the tiny base model ``a``;
- :mod:`.config`: the demo's config (the sweep's settings beside a training config);
- :mod:`.sweep`: fit, train every run, evaluate them all;
- :mod:`.report`: names, plots and the closing table;
- :mod:`.__main__`: the command line.
"""
