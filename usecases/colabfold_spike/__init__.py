"""colabfold_spike: ColabFold (AlphaFold2) on the SARS-CoV-2 spike protein (pLDDT, pTM, time)."""
