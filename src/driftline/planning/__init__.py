"""Search planning: from the mission's particle cloud to search areas for real units.

Pure search theory, testable without services: Koopman's exponential detection function
(`detection`), the sweep-width table (`sweep_width`), Stone's optimal allocation of
effort (`allocation`), one non-overlapping oriented rectangle per unit (`areas`), the
patterns a unit flies or sails (`patterns`), the Bayesian update after an unsuccessful
search (`bayes`), the plan as a whole (`planner`) and its products (`products`).
docs/search-planning.md gives the theory and the validation figures.
"""
