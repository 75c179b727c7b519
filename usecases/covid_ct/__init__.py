"""covid_ct: TV-UNet segmentation of COVID-19 lung infection on CT slices (Dice)."""
