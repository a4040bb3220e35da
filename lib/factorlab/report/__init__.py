"""Chapter logic: one module per chapter turns run records into the chapter's frames, tables,
verdicts and every glued value (DESIGN.md, "Notebooks"). Notebooks only ask for these, draw
and glue. Shared helpers: :mod:`factorlab.report.provenance` (the provenance box)."""
