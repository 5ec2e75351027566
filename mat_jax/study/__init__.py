"""Ablation studies: `sweep` expands a spec (base config x variants or a grid x seeds) into run directories and
launches them; `compare` reads finished runs back into one report (table, plots, a sample strip)."""
